"""Named, documented run configurations. Every value can be overridden on the command line
(`--set key=value`), and the resolved config is saved with each variant in oof/<variant>/.

- smoke: the demo data in seconds: two tiny variants, two epochs. Used by tests and CI.
- demo:  the demo data in at most 10 minutes on 2 CPU cores: a small zoo worth blending.
- cpu:   the real data on a 2-core CPU: cv of all its variants plus the blend in at most
         60 minutes (`--time-limit` 3300 s for cv sizes the epochs to fit).
- gpu:   the real data on one GPU (JAX backend, bfloat16): the strongest ensemble that
         trains in at most 20 minutes.
"""

from fer_kaggle.cv import Variant
from fer_kaggle.errors import ConfigError
from fer_kaggle.train import DEFAULTS, resolve_config

PRESETS = {
    "smoke": {
        "variants": ["cnn_tiny", "dnn_s"],
        "train": {"epochs": 2, "batch_size": 128, "early_stopping_patience": 0, "tta": "flip"},
        "time_limit": None,
        "jobs": 1,
    },
    "demo": {
        "variants": ["cnn_tiny", "xception_fast", "dnn_s"],
        "train": {"epochs": 10, "batch_size": 64, "schedule": "cosine", "learning_rate": 2e-3,
                  "early_stopping_patience": 0},
        "time_limit": 600,
        "jobs": 1,
    },
    "cpu": {
        "variants": ["xception_fast", "resnet_fast"],
        "train": {"epochs": 16, "batch_size": 128, "schedule": "onecycle", "learning_rate": 3e-3,
                  "early_stopping_patience": 0, "label_smoothing": 0.05},
        "time_limit": 3300,
        "jobs": 2,
    },
    "gpu": {
        "variants": ["vgg_ccp", "resnet_m", "xception_l", "conv5x5_4", "conv7", "conv5x5_box3"],
        "train": {"epochs": 40, "batch_size": 256, "schedule": "onecycle", "learning_rate": 2e-3,
                  "optimizer": "adamw", "weight_decay": 5e-2, "label_smoothing": 0.05,
                  "early_stopping_patience": 0, "mixed_precision": True},
        "time_limit": 1140,
        "jobs": 1,
        "backend": "jax",  # used unless KERAS_BACKEND is set
    },
}


def resolve(preset, variants=None, settings=None, tag=None, tuning_dir="tuning"):
    """The variants to train: the preset's (or `variants`), with `settings` applied.

    A setting whose key is a training setting changes the training config; any other key is
    a model hyperparameter override (checked against each model's builder). A name
    `tuned:<search>` (or `tuned:<search>/<variant>`) is a variant exported by `fer-kaggle tune`."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    spec = PRESETS[preset]
    settings = dict(settings or {})
    train_settings = {k: v for k, v in settings.items() if k in DEFAULTS}
    model_settings = {k: v for k, v in settings.items() if k not in DEFAULTS}
    train_cfg = resolve_config(**{**spec["train"], **train_settings})
    out = []
    for name in variants or spec["variants"]:
        if name.startswith("tuned:"):  # exported by `fer-kaggle tune`: their own model and training config
            from fer_kaggle.tuning import load_exported

            for v in load_exported(name, tuning_dir):
                cfg = resolve_config(**{**v["train"], **train_settings})
                out.append(Variant(name=f"{v['name']}-{tag}" if tag else v["name"], model=v["model"],
                                   model_hp={**v["model_hp"], **model_settings}, train=cfg))
            continue
        out.append(Variant(name=f"{name}-{tag}" if tag else name, model=name, model_hp=dict(model_settings),
                           train=dict(train_cfg)))
    return out


def parse_settings(pairs):
    """`key=value` strings to a dict (values stay strings for numbers and names; the
    training config coerces them; model values are read as Python literals where they can be)."""
    import ast

    settings = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ConfigError(f"--set needs key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        if key not in DEFAULTS:
            try:
                value = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                pass
        settings[key.strip()] = value
    return settings
