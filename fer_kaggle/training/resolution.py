"""Progressive resizing: the first epochs of a run train at a lower resolution, where a step
costs about the square of the size ratio, and the rest at full resolution.

The `Augment` layer scales each augmented batch down inside the training step; the network
must accept any input size (convolutions then global pooling), so the built model is rebuilt
with a flexible input. Validation, TTA and the saved fold model always see full-size images.
"""

import keras

from fer_kaggle.errors import ConfigError


def progressive(cfg):
    return cfg["progressive_share"] > 0


def any_size(model, size):
    """`model` rebuilt with an input of any height and width, holding the same weights; a
    ConfigError when it cannot take `size` pixels per side (a flatten into a dense layer)."""
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "InputLayer":
            shape = layer["config"]["batch_shape"]
            layer["config"]["batch_shape"] = [shape[0], None, None, *shape[3:]]
    try:
        flexible = model.__class__.from_config(config)
        flexible(keras.ops.zeros((1, size, size, *model.input_shape[3:])))  # one image: what a symbolic check misses
    except (ValueError, TypeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"model {model.name!r} cannot train at a lower resolution (progressive_share > 0): "
                          f"it needs a fixed input size ({first})") from None
    flexible.set_weights(model.get_weights())
    return flexible


def cost_ratio(size, full):
    """An epoch at `size` pixels against one at `full`, before one is timed: the pixels' ratio."""
    return (size / full) ** 2


def low_res_epochs(cfg, planned_epochs):
    """How many of a plan's first epochs train at `progressive_size`."""
    return int(round(cfg["progressive_share"] * planned_epochs)) if progressive(cfg) else 0


def low_size(cfg, full):
    """The pixels per side of the low-resolution epochs."""
    return min(full, cfg["progressive_size"])


def epoch_size(cfg, epoch, low_epochs, full):
    """The pixels per side epoch `epoch` trains at."""
    return low_size(cfg, full) if epoch < low_epochs else full
