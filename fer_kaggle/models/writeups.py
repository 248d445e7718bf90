"""The architectures of the FER2013 competition write-ups this toolkit grew from."""

import keras
from keras import layers

from fer_kaggle.models.layers import activation, classifier, conv_bn_act, model_input
from fer_kaggle.models.registry import register_model


def _dense_block(x, units, act, dropout):
    x = layers.Dense(units, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = activation(act, dense=True)(x)
    return layers.Dropout(dropout)(x) if dropout else x


@register_model("vgg_ccp")
def vgg_ccp(input_shape, num_classes, filters=(64, 128, 256, 512), dense=(1024, 1024), dropout=0.5,
            act="prelu", normalization="standardize"):
    """VGG of conv-conv-pool blocks, zero padding, PReLU and batch norm (about 10M parameters)."""
    inputs, x = model_input(input_shape, normalization)
    for f in filters:
        for _ in range(2):
            x = layers.ZeroPadding2D(1)(x)
            x = conv_bn_act(x, f, 3, act, padding="valid")
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    for units in dense:
        x = _dense_block(x, units, act, dropout)
    return keras.Model(inputs, classifier(x, num_classes), name="vgg_ccp")


@register_model("conv5x5_4", filters=(64, 128, 256, 256), dense=256, dropout=0.4, act="leaky_relu")
@register_model("conv5x5_box3", filters=(64, 128, 256), dense=128, dropout=0.3, act="relu")
def conv5x5(input_shape, num_classes, filters=(64, 128, 256, 256), dense=256, dropout=0.4, act="leaky_relu",
            normalization="standardize"):
    """5x5 conv blocks with batch norm, max-pool and dropout, then a dense layer: conv5x5_4 is four
    blocks with LeakyReLU(0.2), dropout 0.4, dense 256 (about 3.3M); conv5x5_box3 three boxes (about 2.2M)."""
    inputs, x = model_input(input_shape, normalization)
    for f in filters:
        x = conv_bn_act(x, f, 5, act)
        x = layers.MaxPooling2D()(x)
        x = layers.Dropout(dropout)(x)
    x = layers.Flatten()(x)
    x = _dense_block(x, dense, act, dropout)
    return keras.Model(inputs, classifier(x, num_classes), name="conv5x5")


@register_model("conv7")
def conv7(input_shape, num_classes, filters=(16, 32, 64, 128, 256, 512, 512), pool_after=(1, 2, 3, 5, 6),
          dense=(256, 128), dropout=0.4, act="leaky_relu", normalization="standardize"):
    """Seven 3x3 conv layers 16-32-64-128-256-512-512 with batch norm and LeakyReLU; dense 256-128-7."""
    inputs, x = model_input(input_shape, normalization)
    for i, f in enumerate(filters):
        x = conv_bn_act(x, f, 3, act)
        if i in pool_after:
            x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    for units in dense:
        x = _dense_block(x, units, act, dropout)
    return keras.Model(inputs, classifier(x, num_classes), name="conv7")
