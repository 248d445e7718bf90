"""Wide-shallow VGG-like networks with global average pooling: the most accuracy per second
measured at 48x48 on a 2-core CPU (BENCHMARKS.md has the fold-0 curves that chose them). Any
image size: images above 64 pixels a side are first halved by a strided stem."""

import keras
from keras import layers

from fer_kaggle.models.layers import classifier, conv_bn_act, model_input, strided_stem
from fer_kaggle.models.registry import register_model


def _squeeze_excite(x, ratio=4):
    channels = x.shape[-1]
    s = layers.GlobalAveragePooling2D(keepdims=True)(x)
    s = layers.Dense(max(4, channels // ratio), activation="relu")(s)
    s = layers.Dense(channels, activation="sigmoid")(s)
    return layers.Multiply()([x, s])


@register_model("vgg_fast16", width=16)
@register_model("vgg_fast24", width=24)
@register_model("vgg_fast32", width=32)
@register_model("vgg_fast48", width=48)
def vgg_gap(input_shape, num_classes, width=16, convs=(1, 2, 2, 2), widths=None, squeeze_excite=False, dropout=0.3,
            act="relu", normalization="standardize"):
    """Stages of 3x3 conv-BN-act at 48, 24, 12 and 6 pixels (for 48x48; max-pool between), widths doubling
    from `width` (or `widths`, one per stage); one conv at full resolution, where a conv costs the
    most; optional squeeze-excitation after each stage; global average pooling and dropout before
    the classifier."""
    widths = widths or [width * 2**stage for stage in range(len(convs))]
    if len(widths) != len(convs):
        raise ValueError(f"widths {tuple(widths)} and convs {tuple(convs)} must name the same stages")
    inputs, x = model_input(input_shape, normalization)
    x = strided_stem(x, widths[0], act)
    for stage, n_convs in enumerate(convs):
        if stage:
            x = layers.MaxPooling2D()(x)
        for _ in range(n_convs):
            x = conv_bn_act(x, widths[stage], 3, act)
        if squeeze_excite:
            x = _squeeze_excite(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, classifier(x, num_classes), name="vgg_gap")
