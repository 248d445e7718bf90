"""The training settings: defaults, choices, and their checked resolution."""

from fer_kaggle.errors import ConfigError

DEFAULTS = {
    "recipe": "fit",  # fit: train the network; probe: a pretrained network's classifier only, on its features
    "epochs": 30,  # the most epochs a fold may train (a time budget may plan fewer)
    "batch_size": 64,
    "optimizer": "adam",  # adam, adamw, sgd (Nesterov)
    "learning_rate": 1e-3,  # the peak rate
    "weight_decay": 1e-4,  # adamw and sgd
    "momentum": 0.9,  # sgd
    "schedule": "cosine",  # per step: cosine, linear, onecycle, constant; per epoch: plateau
    "warmup": 0.03,  # fraction of the planned steps spent warming up linearly (cosine, linear, constant)
    "min_learning_rate": 0.0,  # where cosine and linear end
    "plateau_patience": 2,
    "plateau_factor": 0.5,
    "early_stopping_patience": 0,  # validations without a better loss; 0 = never stop early
    "select": "last",  # last: the final weights predict the held-out fold; best: best validated epoch (selected OOF)
    "whiten": False,  # the stem convolution (pool_first*) set from the training patches' whitening and frozen
    "head_init": False,  # a pretrained network's classifier started at a linear probe of its frozen features
    "ema": 0.0,  # momentum of the exponential moving average of the weights, 0 = off
    "label_smoothing": 0.0,
    "class_weight": "none",  # none, balanced
    "flip": True,  # horizontal flips (off where the spec has no mirror symmetry)
    "vflip": False,  # vertical flips: on where the images' measured symmetries say they keep the class (aerial views)
    "rot90": False,  # quarter turns of square images: the same (microscopy, satellite tiles)
    "shift": 0.1,  # fraction of the image
    "zoom": 0.1,
    "rotation": 0.05,  # fraction of a full turn (0.05 = 18 degrees)
    "erasing": 0.0,  # probability of erasing one random rectangle, 0 = off
    "mixup": 0.0,  # alpha of mixup (each image blended with a partner by a Beta(alpha, alpha) share), 0 = off
    "cutmix": 0.0,  # alpha of cutmix (a box of the partner pasted, its area a Beta(alpha, alpha) share), 0 = off
    "progressive_share": 0.0,  # share of the planned epochs trained first at progressive_size (0 = off)
    "progressive_size": 32,  # pixels per side of those epochs (progressive resizing; the rest train at full size)
    "val_every": 0,  # validate every N epochs; 0 = as often as costs under 5% of the training time
    "checkpoint_seconds": 60.0,  # the least seconds between checkpoints (a killed run redoes at most this)
    "tta": "flip",  # none, flip, crops, flip+crops (without mirror symmetry: flip -> none, flip+crops -> crops)
    "seed": 0,
    "mixed_precision": False,  # bfloat16 compute (GPU presets)
}
CHOICES = {
    "recipe": ("fit", "probe"),
    "optimizer": ("adam", "adamw", "sgd"),
    "schedule": ("cosine", "linear", "onecycle", "constant", "plateau"),
    "select": ("last", "best"),
    "class_weight": ("none", "balanced"),
    "tta": ("none", "flip", "crops", "flip+crops", "flips", "turns", "dihedral"),
}


def resolve_config(**overrides):
    """DEFAULTS updated with the non-None overrides, checked and coerced to the default's type."""
    cfg = dict(DEFAULTS)
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in DEFAULTS:
            raise ConfigError(f"unknown training setting {key!r}; known: {', '.join(sorted(DEFAULTS))}")
        default = DEFAULTS[key]
        try:
            if isinstance(default, bool) and isinstance(value, str):
                value = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}[value.lower()]
            cfg[key] = type(default)(value)
        except (ValueError, KeyError):
            raise ConfigError(f"training setting {key}={value!r} is not a {type(default).__name__}") from None
        if key in CHOICES and cfg[key] not in CHOICES[key]:
            raise ConfigError(f"training setting {key}={cfg[key]!r}: choose one of {', '.join(CHOICES[key])}")
    if not 0.0 <= cfg["ema"] < 1.0:
        raise ConfigError(f"training setting ema={cfg['ema']!r}: a momentum in [0, 1)")
    for key in ("mixup", "cutmix"):
        if cfg[key] < 0:
            raise ConfigError(f"training setting {key}={cfg[key]!r}: a Beta alpha, positive (or 0 for off)")
    if not 0.0 <= cfg["progressive_share"] < 1.0:
        raise ConfigError(f"training setting progressive_share={cfg['progressive_share']!r}: a share of the epochs "
                          f"in [0, 1)")
    if cfg["progressive_size"] < 8:
        raise ConfigError(f"training setting progressive_size={cfg['progressive_size']!r}: at least 8 pixels")
    return cfg


def selects_on_validation(cfg):
    """Whether the held-out fold's labels choose anything about its model (then its OOF is 'selected')."""
    return cfg["select"] == "best" or cfg["early_stopping_patience"] > 0 or cfg["schedule"] == "plateau"
