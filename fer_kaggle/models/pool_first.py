"""Pool-first VGGs: three stages of two 3x3 convolutions, each stage pooling right after its
first convolution (so its second one, and the next stage's first, run at a quarter of the
pixels), widths growing fast (1, 4, 4 times the first), a small 2x2 stem, GELU, batch norm
without a learned scale, global max pooling and a scaled linear classifier. The layout of the
fastest published CIFAR-10 trainers (airbench) rebuilt in Keras: far more width per second of
training than a VGG that convolves at full resolution. Any image size: images above 64 pixels
a side are first halved by a strided stem."""

import keras
from keras import layers

from fer_kaggle.models.layers import model_input, strided_stem
from fer_kaggle.models.registry import register_model


def _conv_bn_gelu(x, filters, pool, bn_momentum):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    if pool:
        x = layers.MaxPooling2D()(x)
    x = layers.BatchNormalization(momentum=bn_momentum, scale=False)(x)
    return layers.Activation("gelu")(x)


@register_model("pool_first16", width=16)
@register_model("pool_first32", width=32)
@register_model("pool_first48", width=48)
@register_model("pool_first64", width=64)
def pool_first(input_shape, num_classes, width=64, growth=(1, 4, 4), stem_filters=24, logit_scale=1 / 9,
               bn_momentum=0.9, normalization="standardize"):
    """A 2x2 stem convolution (GELU), then one stage per entry of `growth`, `width` times it
    wide: conv, max-pool, BN, GELU, conv, BN, GELU; global max pooling; a linear layer without
    bias whose logits are multiplied by `logit_scale`, then softmax."""
    inputs, x = model_input(input_shape, normalization)
    x = strided_stem(x, stem_filters, "relu")
    x = layers.Conv2D(stem_filters, 2, padding="valid", name="stem")(x)
    x = layers.Activation("gelu")(x)
    for g in growth:
        if min(x.shape[1:3]) < 2:
            raise ValueError(f"images of {tuple(input_shape)} are too small for {len(growth)} pooled stages")
        x = _conv_bn_gelu(x, width * g, True, bn_momentum)
        x = _conv_bn_gelu(x, width * g, False, bn_momentum)
    x = layers.GlobalMaxPooling2D()(x)
    x = layers.Dense(num_classes, use_bias=False, dtype="float32", name="logits")(x)
    x = layers.Rescaling(logit_scale, dtype="float32")(x)
    return keras.Model(inputs, layers.Activation("softmax", dtype="float32", name="probabilities")(x), name="pool_first")
