"""Fully connected networks whose size can be set to match a given parameter count."""

import math

import keras
from keras import layers

from fer_kaggle.errors import ConfigError
from fer_kaggle.models.layers import activation, classifier, model_input
from fer_kaggle.models.registry import register_model


def dnn_params(n_inputs, width, depth, num_classes):
    """Parameters of a DNN with `depth` hidden layers of `width` units (dense + batch norm)."""
    hidden = n_inputs * width + (depth - 1) * width * width + depth * (width + 4 * width)
    return hidden + width * num_classes + num_classes


def width_for_params(target, n_inputs, depth, num_classes):
    """The width whose DNN has the parameter count closest to `target`."""
    a, b, c = depth - 1, n_inputs + 5 * depth + num_classes, num_classes - target
    if a == 0:
        w = -c / b
    else:
        w = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    candidates = [max(1, math.floor(w)), max(1, math.ceil(w))]
    return min(candidates, key=lambda u: abs(dnn_params(n_inputs, u, depth, num_classes) - target))


@register_model("dnn_s", width=128)
@register_model("dnn_m", width=512)
def dnn(input_shape, num_classes, width=256, depth=3, target_params=None, dropout=0.3, act="relu",
        normalization="standardize"):
    """A DNN of `depth` hidden layers; `target_params` sets the width to match that many parameters."""
    n_inputs = math.prod(input_shape)
    if target_params is not None:
        width = width_for_params(int(target_params), n_inputs, depth, num_classes)
    if width < 1:
        raise ConfigError(f"dnn width must be at least 1, got {width}")
    inputs, x = model_input(input_shape, normalization)
    x = layers.Flatten()(x)
    for _ in range(depth):
        x = layers.Dense(width)(x)
        x = layers.BatchNormalization()(x)
        x = activation(act, dense=True)(x)
        x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, classifier(x, num_classes), name="dnn")
