"""Pretrained networks as ordinary variants: an ImageNet backbone (fer_kaggle.pretrained) with
a new classifier on its pooled features.

The model takes the competition's pixels (0-255, any channels) at the size its arrays have:
grayscale is repeated to three channels, images other than `image_size` a side are resized to
it inside the model (bilinear), and the backbone's own normalization is inside it, so the
saved model carries everything `predict` needs. `train_bn=False` keeps the backbone's batch
norm in inference mode with its ImageNet statistics, as fine-tuning on small batches wants.
The same model serves both recipes: fine-tuning trains it like any other network; the linear
probe (`recipe=probe`, fer_kaggle.probe) fits only its classifier on the backbone's features.
"""

import keras
from keras import layers

from fer_kaggle.models.registry import register_model

DEFAULT_SIDES = {"lite0": 224, "lite1": 240, "lite2": 260}
GRAY_TO_RGB, TO_SIDE = "gray_to_rgb", "to_backbone_size"  # the layers before the backbone, last one last


@register_model("efficientnet_lite0", backbone="lite0", image_size=224)
@register_model("efficientnet_lite1", backbone="lite1", image_size=240)
@register_model("efficientnet_lite2", backbone="lite2", image_size=260)
def pretrained(input_shape, num_classes, backbone="lite0", image_size=224, dropout=0.2, train_bn=False):
    """`backbone`: lite0-2 (the PyPI wheels), hub:<keras-hub preset>, a preset directory or a
    .pth file (fer_kaggle.pretrained.sources); `image_size`: the side it sees."""
    from fer_kaggle.pretrained import sources

    net = sources.build(sources.resolve(backbone), image_size)
    if not train_bn:
        for layer in layers_within(net):
            if isinstance(layer, layers.BatchNormalization):
                layer.trainable = False
    inputs = keras.Input(shape=input_shape, name="pixels")
    x = layers.Concatenate(name=GRAY_TO_RGB)([inputs] * 3) if input_shape[-1] == 1 else inputs
    if input_shape[-1] not in (1, 3):
        raise ValueError(f"a pretrained network takes 1 or 3 channels, not {input_shape[-1]}")
    if tuple(input_shape[:2]) != (image_size, image_size):
        x = layers.Resizing(image_size, image_size, interpolation="bilinear", name=TO_SIDE)(x)
    x = net(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=f"pretrained_{net.name}")


def layers_within(model):
    """Every layer of `model`, those of the models nested in it included (a keras-hub backbone
    sits inside its wrapper)."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from layers_within(layer)


def backbone_of(model):
    """The backbone inside a model built by `pretrained` (its one nested model); None in a
    network with no nested model (one trained from scratch)."""
    return next((layer for layer in model.layers if isinstance(layer, keras.Model)), None)


def to_backbone(model):
    """Pixels as `model` takes them to what its backbone takes (three channels at its side): the
    layers before the backbone, as a model."""
    for name in (TO_SIDE, GRAY_TO_RGB):
        if name in {layer.name for layer in model.layers}:
            return keras.Model(model.inputs, model.get_layer(name).output)
    return keras.Model(model.inputs, model.inputs[0])


def features_model(model):
    """Pixels to the backbone's pooled features: the model without dropout and classifier."""
    return keras.Model(model.inputs, model.get_layer("head_dropout").input)
