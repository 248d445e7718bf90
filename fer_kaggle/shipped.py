"""Shipped models: a `.keras` file that carries the competition spec it was trained for
(`fer_kaggle_spec.json`, a member added to Keras's zip), so `predict` brings new images of any
size and mode to it as training did, and writes labels as the competition names them."""

import json
import zipfile
from pathlib import Path

from fer_kaggle import atomic
from fer_kaggle.errors import ConfigError

SPEC_MEMBER = "fer_kaggle_spec.json"


def save_model(model, path, spec=None):
    """Save `model` to `path` atomically, with `spec` (a Spec) inside it."""
    def save(keras_path):
        model.save(keras_path)
        if spec is not None:
            with zipfile.ZipFile(keras_path, "a") as z:
                z.writestr(SPEC_MEMBER, json.dumps(spec.to_json(), indent=1))

    return atomic.write_with(path, save, ".keras")


def load_model(path):
    """A saved fer-kaggle model (its preprocessing is inside it), ready to predict."""
    import keras

    import fer_kaggle.models  # noqa: F401  (registers the custom layers)
    from fer_kaggle.pretrained import sources

    if not Path(path).exists():
        raise ConfigError(f"{path}: no such model file")
    if Path(path).suffix != ".keras" or not zipfile.is_zipfile(path):
        raise ConfigError(f"{path}: not a .keras model (a legacy .h5 file would load its code with no safe mode)")
    sources.require_hub_for(path)
    return keras.models.load_model(path, compile=False, safe_mode=True)  # a .keras file never runs code it carries


def spec_of(path):
    """The Spec a shipped model carries, or None (a model saved without one)."""
    from fer_kaggle.spec import Spec

    try:
        with zipfile.ZipFile(path) as z:
            if SPEC_MEMBER not in z.namelist():
                return None
            return Spec.from_json(json.loads(z.read(SPEC_MEMBER)))
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise ConfigError(f"{path}: not a readable .keras model ({e})") from None
