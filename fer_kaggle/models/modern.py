"""Families chosen for accuracy per FLOP on 48x48 inputs: residual and depthwise-separable
(any size: images above 64 pixels a side are first halved by a strided stem)."""

import keras
from keras import layers

from fer_kaggle.models.layers import activation, classifier, conv_bn_act, model_input, strided_stem
from fer_kaggle.models.registry import register_model


def _basic_block(x, filters, strides, act):
    shortcut = x
    y = conv_bn_act(x, filters, 3, act, strides=strides)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
    y = layers.BatchNormalization()(y)
    if strides != 1 or shortcut.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False)(shortcut)
        shortcut = layers.BatchNormalization()(shortcut)
    return activation(act)(layers.Add()([y, shortcut]))


@register_model("resnet_fast", width=24, stem_stride=2)
@register_model("resnet_s", width=16)
@register_model("resnet_m", width=32)
@register_model("resnet_l", width=48)
def resnet(input_shape, num_classes, width=32, blocks=(2, 2, 2), stem_stride=1, dropout=0.3, act="relu",
           normalization="standardize"):
    """A ResNet of basic blocks for 48x48: stages at 48, 24, 12 pixels (halved by a stride-2 stem), widths doubling."""
    inputs, x = model_input(input_shape, normalization)
    x = strided_stem(x, width, act)
    x = conv_bn_act(x, width, 3, act, strides=stem_stride)
    for stage, n_blocks in enumerate(blocks):
        for b in range(n_blocks):
            x = _basic_block(x, width * 2**stage, 2 if stage and b == 0 else 1, act)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, classifier(x, num_classes), name="resnet")


@register_model("xception_fast", width=32, stem_stride=2)
@register_model("xception_s", width=16)
@register_model("xception_m", width=32)
@register_model("xception_l", width=64)
def xception(input_shape, num_classes, width=32, modules=4, stem_stride=1, dropout=0.3, act="relu",
             normalization="standardize"):
    """A mini-Xception: a conv stem, then residual modules of two separable convs and a
    strided max-pool, widths doubling from `width`; global average pooling head."""
    inputs, x = model_input(input_shape, normalization)
    x = strided_stem(x, max(16, width // 2), act)
    # (16 stem channels at least: 8-channel depthwise convolutions crashed oneDNN here.)
    x = conv_bn_act(x, max(16, width // 2), 3, act, strides=stem_stride)
    x = conv_bn_act(x, max(16, width // 2), 3, act)
    for m in range(modules):
        filters = width * 2**m
        shortcut = layers.Conv2D(filters, 1, strides=2, padding="same", use_bias=False)(x)
        shortcut = layers.BatchNormalization()(shortcut)
        y = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False)(x)
        y = activation(act)(layers.BatchNormalization()(y))
        y = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False)(y)
        y = layers.BatchNormalization()(y)
        y = layers.MaxPooling2D(3, strides=2, padding="same")(y)
        x = layers.Add()([y, shortcut])
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, classifier(x, num_classes), name="xception")


@register_model("cnn_tiny")
def cnn_tiny(input_shape, num_classes, filters=(8, 16, 32), act="relu", normalization="standardize"):
    """A very small CNN for smoke runs and tests."""
    inputs, x = model_input(input_shape, normalization)
    x = strided_stem(x, filters[0], act)
    for f in filters:
        x = conv_bn_act(x, f, 3, act)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    return keras.Model(inputs, classifier(x, num_classes), name="cnn_tiny")
