"""Named, documented run configurations. Every value can be overridden on the command line
(`--set key=value`), and the resolved config is saved with each variant in oof/<variant>/.
BENCHMARKS.md holds the measurements that chose each value.

- smoke: the demo data in seconds: two tiny variants, two epochs. Used by tests and CI.
- demo:  the demo data within a few minutes on 2 CPU cores: a small CNN and a DNN, so a
         newcomer sees the whole pipeline, and a CNN well above a DNN, before committing an hour.
- cpu:   the real data on a 2-core CPU: cv plus blend within 60 minutes. One compact VGG
         trained as long as the hour allows (cosine to zero, sized by the measured step
         time): on fold 0, more epochs of one fast network beat more networks.
- auto:  the cpu preset's hour and TTA with airbench's optimizer (SGD-Nesterov, momentum 0.85, a
         large rate and strong decoupled decay, label smoothing 0.2) and random erasing (0.25), the network
         and fold scheme chosen on the spot (`fer_kaggle/choice.py`): the ladder's steps timed
         on this machine and the widest network that affords 15 epochs, as 5 fold models
         or one holdout model; before them, an ImageNet-pretrained network (lite0_finetune,
         its linear probe lite0_probe beside it) where fine-tuning affords 5 epochs of 5 fold
         models (a few thousand photographs). Measured on CIFAR-10 and clothing so far
         (BENCHMARKS.md), so `cpu` stays FER2013's measured choice.
- gpu:   the real data on one GPU (JAX backend, bfloat16): several larger networks, each
         trained for as many epochs as the time allows (up to 200), three fold jobs at once
         sharing the GPU, in pieces of 550 s that resume one another (the time limit counts
         them all).
"""

from fer_kaggle.variant import Variant
from fer_kaggle.errors import ConfigError
from fer_kaggle.layout import check_name
from fer_kaggle.training.config import DEFAULTS, resolve_config

# The per-step engine's settings that every real-data preset shares: warm up briefly, decay
# to zero when the time is up, smooth the labels, keep the final (honest) weights.
_ENGINE = {"schedule": "cosine", "warmup": 0.03, "min_learning_rate": 0.0, "label_smoothing": 0.1,
           "early_stopping_patience": 0, "select": "last", "tta": "flip"}

# The cpu preset's training (and the auto preset's, whatever network it chooses).
_CPU_TRAIN = {**_ENGINE, "epochs": 40, "batch_size": 128, "optimizer": "adam", "learning_rate": 2e-3,
              "flip": True, "shift": 0.08, "zoom": 0.0, "rotation": 0.0,
              "tta": "flip+crops",  # 10 views: +0.36 points of OOF accuracy over flip on FER2013's fold models
              "val_every": 4}  # a curve of about five points; validation's seconds go to training

# The auto preset's training: the cpu preset's with random erasing and airbench's optimizer carried to
# this batch: SGD-Nesterov, momentum 0.85, peak rate 0.2 (its 11.5 per 1024 examples, the momentum's gain
# divided out, on a batch of 128's mean loss), decoupled decay 0.008 (its decay a step at this batch, as
# a share of the rate), label smoothing 0.2. BENCHMARKS.md, CIFAR-10: pool_first32 on fold 0, 6 epochs,
# 0.8430 against AdamW's 0.8353 (a weight average 0.8319); in the hour, pool_first64 0.9023 against
# AdamW's 0.8985; erasing 0.25 0.8461 against 0.8437 at 8 epochs.
_AUTO_TRAIN = {**_CPU_TRAIN, "optimizer": "sgd", "momentum": 0.85, "learning_rate": 0.2, "weight_decay": 0.008,
               "label_smoothing": 0.2, "erasing": 0.25}

# Pretrained variants (fer_kaggle.models.pretrained): a network of the registry and the training
# settings of its recipe, over the preset's. The probe fits a classifier on the frozen features of each
# image and its mirror; fine-tuning trains the whole network (its batch norm frozen) from ImageNet's
# weights at a small rate, AdamW, warmed up over the first tenth.
_FINETUNE = {"recipe": "fit", "optimizer": "adamw", "learning_rate": 1e-3, "weight_decay": 0.05, "momentum": 0.9,
             "batch_size": 32, "label_smoothing": 0.1, "warmup": 0.1, "shift": 0.1, "zoom": 0.1, "rotation": 0.0,
             "erasing": 0.0, "whiten": False, "tta": "flip", "epochs": 20, "val_every": 0}
PRETRAINED = {f"lite{i}_{recipe}": (f"efficientnet_lite{i}", settings, {})
              for i in range(3) for recipe, settings in (("probe", {"recipe": "probe", "tta": "flip", "batch_size": 32}),
                                                          ("finetune", _FINETUNE))}
# Fine-tuning at a smaller side where the time does not afford the backbone's own (tens of thousands of
# images): `lite0_finetune96` sees 96x96. The batch grows as the side shrinks, a step's pixels kept near
# those of 32 images at 224 (at most 128 images): on CIFAR-10 at 96, batch 128 trained 1.5-1.7 times the
# images a second of batch 32. The rate stays low (SMALL_SIDE_RATE): tens of thousands of images give
# hundreds of steps an epoch, and a higher rate unlearns ImageNet's features before it learns the
# competition's (CIFAR-10 at 96, 3 epochs: 0.9092 held out at 5e-4 against 0.8952 at 2e-3, BENCHMARKS.md).
SMALL_SIDES = (160, 128, 96)
SMALL_SIDE_RATE = 5e-4


def _small_side(side):
    batch = int(min(128, 32 * round((224 / side) ** 2)))
    return {**_FINETUNE, "batch_size": batch, "learning_rate": SMALL_SIDE_RATE}


PRETRAINED.update({f"lite{i}_finetune{side}": (f"efficientnet_lite{i}", _small_side(side), {"image_size": side})
                   for i in range(3) for side in SMALL_SIDES})

# The networks a preset with a ladder chooses from, fastest first (BENCHMARKS.md, CIFAR-10 ladder); the
# pretrained networks timed beside them (chosen first where they afford their epochs, fer_kaggle/choice.py);
# the linear probes trained beside a pretrained choice.
LADDER = ("vgg_fast16", "pool_first16", "pool_first32", "pool_first48", "pool_first64")
PRETRAINED_RUNGS = ("lite0_finetune",)
PROBES = ("lite0_probe",)
SMALLER = tuple(f"lite0_finetune{side}" for side in SMALL_SIDES)

PRESETS = {
    "smoke": {
        "variants": ["cnn_tiny", "dnn_s"],
        "train": {"epochs": 2, "batch_size": 128, "early_stopping_patience": 0, "tta": "flip"},
        "time_limit": None,
        "jobs": 1,
    },
    "demo": {
        "variants": ["cnn_tiny", "dnn_s"],
        "train": {**_ENGINE, "epochs": 12, "batch_size": 64, "learning_rate": 2e-3, "label_smoothing": 0.0},
        "time_limit": 150,
        "jobs": 1,
    },
    "cpu": {
        "variants": ["vgg_fast16"],
        "train": _CPU_TRAIN,
        "time_limit": 3450,  # the blend takes about 10 s: cv plus blend stay inside the hour
        "jobs": 1,
    },
    "auto": {
        "variants": ["vgg_fast16"],  # what bench and tune time; cv trains the ladder's choice
        "ladder": LADDER,
        "pretrained": PRETRAINED_RUNGS,
        "probes": PROBES,
        "smaller": SMALLER,
        "train": _AUTO_TRAIN,
        "time_limit": 3450,
        "jobs": 1,
    },
    "gpu": {
        "variants": ["vgg_fast48", "resnet_m", "vgg_fast32"],
        "train": {**_ENGINE, "epochs": 200, "batch_size": 256, "optimizer": "adamw", "learning_rate": 2e-3,
                  "weight_decay": 5e-2, "ema": 0.999, "flip": True, "shift": 0.1, "zoom": 0.1, "rotation": 0.03,
                  "erasing": 0.25, "tta": "flip+crops", "mixed_precision": True, "checkpoint_seconds": 120},
        "time_limit": 1100,
        "piece_seconds": 550,  # lent GPUs run 10 minutes a call: pieces that resume one another (exit 75: again)
        "jobs": 3,  # fold jobs sharing the GPU: 1.73x the images per second of one on an H100 (BENCHMARKS.md)
        "backend": "jax",  # used unless KERAS_BACKEND is set
    },
}


def follow_symmetries(train_cfg, spec, settings):
    """A preset's training settings for the competition's symmetries: no mirrored images in
    augmentation or TTA where a mirror changes the class (digits, text); vertical flips and
    quarter turns in augmentation and TTA where the images' measured symmetries say they keep
    it (aerial and microscope images: the square's eight symmetries as views); `settings` (the
    user's --set) win."""
    from fer_kaggle.training.tta import without_mirror

    measured = spec.symmetries or {}
    keeps = {name: settings.get(name, measured.get(name, {}).get("keeps") is True) for name in ("vflip", "rot90")}
    tta = train_cfg.get("tta", DEFAULTS["tta"])
    if tta != "none" and keeps["rot90"] and spec.height == spec.width:
        tta = "dihedral"
    elif tta != "none" and keeps["vflip"]:
        tta = "flips"
    train_cfg = {**train_cfg, **keeps, "tta": settings.get("tta", tta)}
    if spec.flip:
        return train_cfg
    return {**train_cfg, "flip": settings.get("flip", False), "tta": settings.get("tta", without_mirror(tta))}


def resolve(preset, variants=None, settings=None, tag=None, tuning_dir="tuning", *, spec):
    """The variants to train on the competition of `spec`: the preset's (or `variants`), with
    `settings` applied, following the spec's symmetries.

    A setting whose key is a training setting changes the training config; any other key is
    a model hyperparameter override (checked against each model's builder). A name
    `tuned:<search>` (or `tuned:<search>/<variant>`) is a variant exported by `fer-kaggle tune`."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    preset_spec = PRESETS[preset]
    settings = dict(settings or {})
    train_settings = {k: v for k, v in settings.items() if k in DEFAULTS}
    model_settings = {k: v for k, v in settings.items() if k not in DEFAULTS}
    train_cfg = resolve_config(**follow_symmetries({**preset_spec["train"], **train_settings}, spec, train_settings))
    out = []
    for name in variants or preset_spec["variants"]:
        if name.startswith("tuned:"):  # exported by `fer-kaggle tune`: their own model and training config
            from fer_kaggle.tuning import load_exported

            for v in load_exported(name, tuning_dir):
                cfg = resolve_config(**follow_symmetries({**v["train"], **train_settings}, spec, train_settings))
                chosen_on = f"fold(s) {v.get('folds', [0])} of search {v.get('search', name[6:])}"
                out.append(Variant(name=f"{v['name']}-{tag}" if tag else v["name"], model=v["model"],
                                   model_hp={**v["model_hp"], **model_settings}, train=cfg, selected_on=chosen_on))
            continue
        model, cfg = name, train_cfg
        hp = {}
        if name in PRETRAINED:
            model, recipe, hp = PRETRAINED[name]
            cfg = resolve_config(**follow_symmetries({**preset_spec["train"], **recipe, **train_settings}, spec,
                                                     train_settings))
        out.append(Variant(name=f"{name}-{tag}" if tag else name, model=model, model_hp={**hp, **model_settings},
                           train=dict(cfg)))
    for variant in out:  # a name is a folder of oof/: never a path out of it
        check_name(variant.name, "--tag" if tag and variant.name.endswith(f"-{tag}") else "variant name")
    return out


def pretrained_rungs(preset, settings, spec):
    """(the pretrained variants to time beside the ladder, the probes to train beside a pretrained
    choice, the pretrained variants at smaller sides, largest first) of `preset` (a preset without a
    ladder: the auto preset's), with the training settings among `settings` (model settings are the
    ladder networks')."""
    preset_spec = PRESETS[preset]
    training = {key: value for key, value in (settings or {}).items() if key in DEFAULTS}
    return tuple(resolve(preset, preset_spec.get(key, default), training, spec=spec)
                 for key, default in (("pretrained", PRETRAINED_RUNGS), ("probes", PROBES), ("smaller", SMALLER)))


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
