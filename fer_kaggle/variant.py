"""A model variant, and the config that identifies its run: `oof/<variant>/config.json`,
written before training and checked when a run resumes (a changed model, setting, teacher,
fold set or test set is refused, never mixed with what was trained before)."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_kaggle import atomic, layout
from fer_kaggle.data.folds import FOLD_KEYS
from fer_kaggle.errors import ConfigError
from fer_kaggle.training.config import DEFAULTS


@dataclass
@dataclass
class Variant:
    """A trainable variant: a registry model, its hyperparameter overrides, a training config,
    and for variants taught by others (pseudo-labels, distillation) how they were taught: their
    folds then train on `fold<k>/inputs.npz` (fer_kaggle.fold_inputs)."""

    name: str
    model: str
    model_hp: dict
    train: dict
    teaching: dict = None
    selected_on: str = None  # what chose it with held-out labels (a search's folds): its OOF is then optimistic

    def input_shape(self, spec):
        """The images this variant trains on: the competition's, or for a network with an
        `image_size` of its own (a pretrained one) that side where the competition's images
        were resized for training (photographs of mixed or large sizes)."""
        from fer_kaggle.models import model_hp

        side = model_hp(self.model, **self.model_hp).get("image_size")
        if side and spec.resize != "fixed" and (spec.height, spec.width) != (side, side):
            return (side, side, spec.channels)
        return spec.input_shape

    def images(self, comp):
        """The competition at this variant's input size (itself, or a copy read at that size)."""
        height, width, _ = self.input_shape(comp.spec)
        return comp.at_size(height, width)

    def build(self, spec):
        """A fresh model of this variant for the competition's images and classes."""
        from fer_kaggle.models import create_model

        return create_model(self.model, self.input_shape(spec), spec.num_classes, **self.model_hp)


def split_rows(folds, k):
    """(training rows, held-out rows) of fold k."""
    return np.flatnonzero(folds != k), np.flatnonzero(folds == k)


def variant_config(variant, folds_meta, params, flops, preset=None, test_sha256=None):
    import keras

    return {
        "variant": variant.name,
        "model": variant.model,
        "model_hp": variant.model_hp,
        "train": variant.train,
        "teaching": variant.teaching,
        "folds": {k: folds_meta[k] for k in FOLD_KEYS},
        "test_sha256": test_sha256,  # the test set its fold models predict (ids, order, images)
        "selected_on": variant.selected_on,
        "preset": preset,
        "keras_backend": keras.backend.backend(),
        "params": params,
        "flops": flops,
    }


IDENTITY = ("model", "model_hp", "train", "teaching", "folds", "test_sha256")


def check_or_write_config(variant_dir, config):
    path = Path(variant_dir) / layout.CONFIG
    if path.exists():
        old = atomic.read_json(path)
        if isinstance(old.get("train"), dict):  # a setting added since it was written had its default's effect then
            old["train"] = {**DEFAULTS, **old["train"]}
        old.setdefault("test_sha256", config["test_sha256"])  # written before the test set was identified
        changed = [key for key in IDENTITY if _jsonable(old.get(key)) != _jsonable(config[key])]
        if changed:
            detail = "its ids, their order or its images changed" if changed[0] == "test_sha256" else \
                _first_difference(old, config, changed[0])
            what = "test set" if changed[0] == "test_sha256" else changed[0]
            raise ConfigError(
                f"{path} was trained with a different {what} ({detail}): pass --tag NAME to train this one "
                f"beside it, or delete {variant_dir} to retrain")
        return
    atomic.write_json(path, config)


def _jsonable(value):
    import json

    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _first_difference(old, new, key):
    a, b = _jsonable(old.get(key)), _jsonable(new[key])
    if isinstance(a, dict) and isinstance(b, dict):
        for sub in sorted(set(a) | set(b)):
            if a.get(sub) != b.get(sub):
                return f"{sub}: {a.get(sub)!r} then, {b.get(sub)!r} now"
    return f"{a!r} then, {b!r} now"
