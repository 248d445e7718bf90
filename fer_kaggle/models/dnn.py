"""Fully connected networks whose size can be set to match a given parameter count."""

import math

import keras
from keras import layers

from fer_kaggle.errors import ConfigError
from fer_kaggle.models.layers import activation, classifier, model_input
from fer_kaggle.models.registry import register_model


def dnn_params(n_inputs, widths, num_classes):
    """Parameters of a DNN with hidden layers of `widths` units (dense + batch norm) and a softmax."""
    total, previous = 0, n_inputs
    for w in widths:
        total += previous * w + 5 * w  # kernel, bias, and batch norm's 4 per unit
        previous = w
    return total + previous * num_classes + num_classes


def widths_for_params(target, n_inputs, depth, num_classes):
    """Hidden widths whose DNN has the parameter count closest to `target`: every layer but
    the last shares one width, and the last one's width fine-tunes the count (so with
    depth >= 2 the match is within a few hundred parameters)."""
    best = None
    for w in range(1, 8192):
        head = [w] * (depth - 1)
        previous = w if depth > 1 else n_inputs
        fixed = dnn_params(n_inputs, head, 0) if head else 0
        per_unit = previous + 5 + num_classes
        last = max(1, round((target - fixed - num_classes) / per_unit))
        widths = head + [last]
        error = abs(dnn_params(n_inputs, widths, num_classes) - target)
        if best is None or error < best[0]:
            best = (error, widths)
        if fixed > target:
            break
    return best[1]


@register_model("dnn_s", width=128)
@register_model("dnn_m", width=512)
def dnn(input_shape, num_classes, width=256, depth=3, target_params=None, dropout=0.3, act="relu",
        normalization="standardize"):
    """A DNN of `depth` hidden layers of `width` units; `target_params` sizes the layers to that
    many parameters (within 1% from depth 2 on)."""
    n_inputs = math.prod(input_shape)
    widths = [width] * depth
    if target_params is not None:
        widths = widths_for_params(int(target_params), n_inputs, depth, num_classes)
    if min(widths) < 1:
        raise ConfigError(f"dnn width must be at least 1, got {width}")
    inputs, x = model_input(input_shape, normalization)
    x = layers.Flatten()(x)
    for w in widths:
        x = layers.Dense(w)(x)
        x = layers.BatchNormalization()(x)
        x = activation(act, dense=True)(x)
        x = layers.Dropout(dropout)(x)
    return keras.Model(inputs, classifier(x, num_classes), name="dnn")
