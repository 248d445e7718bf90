"""Building blocks shared by the model families (Keras 3 layers and keras.ops only)."""

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="fer_kaggle")
class PerImageStandardization(layers.Layer):
    """Each image to zero mean and unit variance (as tf.image.per_image_standardization)."""

    def call(self, x):
        x = ops.cast(x, "float32")
        mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
        std = ops.std(x, axis=(1, 2, 3), keepdims=True)
        n = ops.cast(ops.prod(ops.shape(x)[1:]), "float32")
        return (x - mean) / ops.maximum(std, 1.0 / ops.sqrt(n))


NORMALIZATIONS = ("standardize", "rescale")


def model_input(input_shape, normalization="standardize"):
    """The input (raw pixels 0-255) and its normalized tensor: every builder starts here."""
    inputs = keras.Input(shape=input_shape, name="pixels")
    if normalization == "standardize":
        x = PerImageStandardization(name="standardize")(inputs)
    elif normalization == "rescale":
        x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    else:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    return inputs, x


def activation(kind, name=None, dense=False):
    if kind == "relu":
        return layers.ReLU(name=name)
    if kind == "leaky_relu":
        return layers.LeakyReLU(negative_slope=0.2, name=name)
    if kind == "prelu":
        return layers.PReLU(shared_axes=None if dense else [1, 2], name=name)
    if kind == "elu":
        return layers.ELU(name=name)
    raise ValueError(f"activation must be relu, leaky_relu, prelu or elu, got {kind!r}")


def conv_bn_act(x, filters, kernel=3, act="relu", padding="same", strides=1):
    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return activation(act)(x)


def classifier(x, num_classes):
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)


STEM_SIDE = 64  # larger images are halved by strided stem convolutions until they are at most this


def stem_halvings(input_shape, max_side=STEM_SIDE):
    """How many stride-2 stem convolutions bring the image's longer side to at most `max_side`."""
    side, n = max(input_shape[0], input_shape[1]), 0
    while side > max_side:
        side, n = (side + 1) // 2, n + 1
    return n


def strided_stem(x, filters, act="relu", max_side=STEM_SIDE):
    """The depth follows the image size: large images (256, 128 pixels) are brought down to the
    size the stages were made for by stride-2 conv-BN-act layers; small ones pass unchanged."""
    for _ in range(stem_halvings(x.shape[1:3], max_side)):
        x = conv_bn_act(x, filters, 3, act, strides=2)
    return x
