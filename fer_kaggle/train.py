"""Fit one model on one split: augmentation, schedule, early stopping, TTA prediction.

Knows nothing of folds or competitions: it gets arrays and a checkpoint folder. Keras 3
only (layers, keras.ops, PyDataset), so it runs on the TensorFlow backend (CPU, CI) and
the JAX backend (GPU). The epoch loop is ours, one `fit` call per epoch, so that every
random draw depends only on (seed, epoch, batch): a run killed at any moment resumes from
its last finished epoch and ends with the same weights as an uninterrupted run.
"""

import json
import math
import os
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_kaggle import atomic
from fer_kaggle.errors import ConfigError
from fer_kaggle.metrics import accuracy, log_loss

DEFAULTS = {
    "epochs": 30,  # the most epochs a fold may train
    "batch_size": 64,
    "optimizer": "adam",  # adam, adamw, sgd (Nesterov)
    "learning_rate": 1e-3,
    "weight_decay": 1e-4,  # adamw and sgd
    "momentum": 0.9,  # sgd
    "schedule": "plateau",  # plateau, cosine, onecycle, constant
    "plateau_patience": 2,
    "plateau_factor": 0.5,
    "min_learning_rate": 1e-5,
    "early_stopping_patience": 5,  # epochs without a better validation loss; 0 = never stop early
    "label_smoothing": 0.0,
    "class_weight": "none",  # none, balanced
    "flip": True,  # horizontal flips only: vertical flips change the expression
    "shift": 0.1,  # fraction of the image
    "zoom": 0.1,
    "rotation": 0.05,  # fraction of a full turn (0.05 = 18 degrees)
    "erasing": 0.0,  # probability-like strength of random erasing, 0 = off
    "mixup": 0.0,  # Beta(alpha, alpha) mixup, 0 = off
    "tta": "flip",  # none, flip, flip+crops
    "seed": 0,
    "mixed_precision": False,  # bfloat16 compute (GPU presets)
}
CHOICES = {
    "optimizer": ("adam", "adamw", "sgd"),
    "schedule": ("plateau", "cosine", "onecycle", "constant"),
    "class_weight": ("none", "balanced"),
    "tta": ("none", "flip", "flip+crops"),
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
    return cfg


def configure_backend(threads=None, deterministic=True):
    """Threads and deterministic ops; call before the backend runs its first op."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        try:
            if threads:
                tf.config.threading.set_intra_op_parallelism_threads(int(threads))
                tf.config.threading.set_inter_op_parallelism_threads(min(2, int(threads)))
        except RuntimeError:
            pass  # already initialized in this process: keep its settings
        if deterministic:
            tf.config.experimental.enable_op_determinism()


# ----------------------------------------------------------------------------- data


AUGMENT_CHUNK = 512  # images augmented per call: fewer, larger eager calls are faster


def augmentation_layers(cfg):
    """The Keras preprocessing layers of the input pipeline (never vertical flips)."""
    from keras import layers

    augment = []
    if cfg["flip"]:
        augment.append(layers.RandomFlip("horizontal"))
    if cfg["shift"]:
        augment.append(layers.RandomTranslation(cfg["shift"], cfg["shift"], fill_mode="nearest"))
    if cfg["zoom"]:
        augment.append(layers.RandomZoom(cfg["zoom"], fill_mode="nearest"))
    if cfg["rotation"]:
        augment.append(layers.RandomRotation(cfg["rotation"], fill_mode="nearest"))
    if cfg["erasing"]:
        augment.append(layers.RandomErasing(factor=cfg["erasing"], value_range=(0, 255)))
    return augment


def class_weights(labels, num_classes):
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    return (len(labels) / (num_classes * np.maximum(counts, 1))).astype(np.float32)


def epoch_arrays(x, y, cfg, epoch, num_classes, augment=True):
    """The training inputs of one epoch, in batch order: (images, one-hot targets, sample
    weights or None). Chunk i of epoch e depends only on (seed, e, i): augmentation draws its
    parameters from that seed, so any process or thread, and a resumed run, sees the same
    epoch. Arrays rather than a generator: Keras feeds them through tf.data on TensorFlow and
    batches them on the other backends."""
    import keras

    layers = augmentation_layers(cfg) if augment else []
    order = np.random.default_rng([cfg["seed"], epoch, 0]).permutation(len(x))
    images = x[order, :, :, None].astype("float32")
    targets = np.eye(num_classes, dtype="float32")[y[order]]
    for i, start in enumerate(range(0, len(x), AUGMENT_CHUNK)):
        chunk = slice(start, start + AUGMENT_CHUNK)
        rng = np.random.default_rng([cfg["seed"], epoch, 1 + i])
        xb = images[chunk]
        for layer in layers:
            t = layer.get_random_transformation(xb, training=True, seed=int(rng.integers(1, 2**31 - 1)))
            xb = keras.ops.convert_to_numpy(layer.transform_images(xb, t, training=True))
        images[chunk] = xb
    if cfg["mixup"]:  # each training batch mixed with a permutation of itself
        for i, start in enumerate(range(0, len(x), cfg["batch_size"])):
            batch = slice(start, start + cfg["batch_size"])
            rng = np.random.default_rng([cfg["seed"], epoch, 0, i])
            lam = np.float32(rng.beta(cfg["mixup"], cfg["mixup"]))
            partner = rng.permutation(len(images[batch]))
            images[batch] = lam * images[batch] + (1 - lam) * images[batch][partner]
            targets[batch] = lam * targets[batch] + (1 - lam) * targets[batch][partner]
    weights = class_weights(y, num_classes)[y[order]] if cfg["class_weight"] == "balanced" else None
    return images, targets, weights


def _fit_epoch(model, x, y, cfg, epoch, num_classes):
    images, targets, weights = epoch_arrays(x, y, cfg, epoch, num_classes)
    return model.fit(images, targets, sample_weight=weights, batch_size=cfg["batch_size"], shuffle=False,
                     epochs=1, verbose=0).history


def predict(model, x, tta="flip", batch_size=256):
    """Class probabilities (float32, rows summing to 1), averaged over test-time augmentations."""
    views = [x]
    if tta in ("flip", "flip+crops"):
        views.append(x[:, :, ::-1])
    if tta == "flip+crops":
        padded = np.pad(x, ((0, 0), (2, 2), (2, 2)), mode="edge")
        views += [padded[:, dy : dy + 48, dx : dx + 48] for dy in (0, 4) for dx in (0, 4)]
    probs = np.zeros((len(x), model.output_shape[-1]), dtype=np.float64)
    for view in views:
        probs += model.predict(view[..., None].astype("float32"), batch_size=batch_size, verbose=0)
    probs /= probs.sum(axis=1, keepdims=True)
    return probs.astype(np.float32)


# ----------------------------------------------------------------------------- the loop


def make_optimizer(cfg):
    import keras

    lr = cfg["learning_rate"]
    if cfg["optimizer"] == "adam":
        return keras.optimizers.Adam(lr)
    if cfg["optimizer"] == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=cfg["weight_decay"])
    return keras.optimizers.SGD(lr, momentum=cfg["momentum"], nesterov=True, weight_decay=cfg["weight_decay"])


def scheduled_learning_rate(cfg, epoch, planned_epochs, plateau_lr):
    """The learning rate of `epoch`: per-epoch cosine or one-cycle, or the plateau rule's value."""
    base = cfg["learning_rate"]
    if cfg["schedule"] == "cosine":
        return cfg["min_learning_rate"] + 0.5 * (base - cfg["min_learning_rate"]) * (1 + math.cos(math.pi * epoch / planned_epochs))
    if cfg["schedule"] == "onecycle":
        warm = max(1, round(0.3 * planned_epochs))
        if epoch < warm:
            return base / 25 + (base - base / 25) * epoch / warm
        progress = (epoch - warm) / max(1, planned_epochs - warm)
        return cfg["min_learning_rate"] + 0.5 * (base - cfg["min_learning_rate"]) * (1 + math.cos(math.pi * progress))
    if cfg["schedule"] == "plateau":
        return plateau_lr
    return base


@dataclass
class FitState:
    """What a resumed run needs besides the checkpointed model (weights and optimizer)."""

    epoch: int = 0  # epochs finished
    planned_epochs: int = 0
    plateau_lr: float = 0.0
    best_val_loss: float = float("inf")
    best_epoch: int = -1
    plateau_wait: int = 0
    history: list = field(default_factory=list)
    checkpoint: str = ""
    best_weights: str = ""
    stopped: str = ""  # why training ended: epochs, early stopping, time limit

    @property
    def epoch_seconds(self):
        times = [h["seconds"] for h in self.history]
        return float(np.median(times)) if times else None


@contextmanager
def private_python_random(seed):
    """Keras draws the seeds of initializers and dropout from Python's global `random`, which
    other threads also use (a Dask worker's do): give model building a private generator so
    the same seed builds the same model in any process or thread."""
    from keras.src.random import seed_generator

    if not hasattr(seed_generator, "python_random"):  # a Keras that works otherwise
        yield
        return
    saved = seed_generator.python_random
    seed_generator.python_random = random.Random(seed)
    try:
        yield
    finally:
        seed_generator.python_random = saved


def compile_model(model, cfg):
    import keras

    model.compile(
        optimizer=make_optimizer(cfg),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg["label_smoothing"]),
        metrics=["accuracy"],
    )
    return model


def seconds_per_image(build_model, cfg, num_classes=7, batches=4):
    """Measured training time per image (augmentation included) on random pixels, after a
    warm-up batch: what the CV loop uses to share a time limit among fold jobs."""
    model = compile_model(build_model(), cfg)
    n = cfg["batch_size"] * batches
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n, 48, 48), dtype=np.uint8)
    y = rng.integers(0, num_classes, size=n)
    _fit_epoch(model, x[: cfg["batch_size"]], y[: cfg["batch_size"]], cfg, 0, num_classes)
    t0 = time.perf_counter()
    _fit_epoch(model, x, y, cfg, 1, num_classes)
    return (time.perf_counter() - t0) / n


def fit(build_model, x_train, y_train, x_val, y_val, cfg, workdir, num_classes=7, time_budget=None, on_epoch=None):
    """Train with early stopping on the validation loss; restore the best weights.

    `build_model()` returns a fresh, uncompiled model. `workdir` keeps the resumable state
    (`state.json`, the last checkpoint and the best weights). `time_budget` (seconds of
    this call) sizes the number of epochs after the first one and stops before an epoch
    that would not fit. Returns (model with the best weights, FitState).
    """
    import keras

    if cfg["mixed_precision"]:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    workdir = Path(workdir)
    state_path = workdir / "state.json"
    started = time.perf_counter()
    if state_path.exists():
        state = FitState(**atomic.read_json(state_path))
        model = keras.models.load_model(workdir / state.checkpoint)
    else:
        state = FitState(planned_epochs=cfg["epochs"], plateau_lr=cfg["learning_rate"])
        keras.utils.set_random_seed(cfg["seed"])
        with private_python_random(cfg["seed"]):
            model = compile_model(build_model(), cfg)

    ran = 0
    while not state.stopped:
        if state.epoch >= state.planned_epochs:
            state.stopped = "epochs" if state.planned_epochs == cfg["epochs"] else "time limit"
            break
        if time_budget is not None and state.epoch_seconds is not None:
            left = time_budget - (time.perf_counter() - started)
            if left < state.epoch_seconds:
                state.stopped = "time limit"
                break
        _run_epoch(model, state, x_train, y_train, x_val, y_val, cfg, num_classes, workdir)
        ran += 1
        if ran == 1:
            state.planned_epochs = _size_epochs(cfg, state, time_budget, started)
        if cfg["early_stopping_patience"] and state.epoch - 1 - state.best_epoch >= cfg["early_stopping_patience"]:
            state.stopped = "early stopping"
        _save_state(model, state, workdir, save_model=True)  # the epoch's commit point
        if on_epoch:
            on_epoch(state)

    _save_state(model, state, workdir, save_model=False)  # why it stopped, when no epoch ran after
    if state.best_weights:
        model.load_weights(workdir / state.best_weights)
    return model, state


def _size_epochs(cfg, state, time_budget, started):
    """After the first epoch: how many epochs fit in the budget (never more than cfg['epochs'])."""
    if time_budget is None:
        return state.planned_epochs
    left = time_budget - (time.perf_counter() - started)
    fit_more = int(left // max(state.epoch_seconds, 1e-6))
    return max(state.epoch, min(cfg["epochs"], state.epoch + fit_more))


def _run_epoch(model, state, x_train, y_train, x_val, y_val, cfg, num_classes, workdir):
    epoch = state.epoch
    lr = scheduled_learning_rate(cfg, epoch, state.planned_epochs, state.plateau_lr)
    model.optimizer.learning_rate = lr
    t0 = time.perf_counter()
    logs = _fit_epoch(model, x_train, y_train, cfg, epoch, num_classes)
    val_probs = predict(model, x_val, tta="none")
    seconds = time.perf_counter() - t0
    row = {
        "epoch": epoch + 1,
        "loss": float(logs["loss"][0]),
        "accuracy": float(logs["accuracy"][0]),
        "val_loss": log_loss(val_probs, y_val),
        "val_accuracy": accuracy(val_probs, y_val),
        "learning_rate": float(lr),
        "seconds": round(seconds, 3),
    }
    state.history.append(row)
    state.epoch = epoch + 1
    if row["val_loss"] < state.best_val_loss:
        state.best_val_loss, state.best_epoch, state.plateau_wait = row["val_loss"], epoch, 0
        name = f"best-{epoch + 1}.weights.h5"
        with atomic.atomic_path(workdir / name) as tmp:
            model.save_weights(_with_suffix(tmp, ".weights.h5"))
            os.replace(_with_suffix(tmp, ".weights.h5"), tmp)
        _remove(workdir, state.best_weights)
        state.best_weights = name
    else:
        state.plateau_wait += 1
        if cfg["schedule"] == "plateau" and state.plateau_wait >= cfg["plateau_patience"]:
            state.plateau_lr = max(cfg["min_learning_rate"], state.plateau_lr * cfg["plateau_factor"])
            state.plateau_wait = 0


def _save_state(model, state, workdir, save_model):
    """Checkpoint the model under a new name, then commit state.json, then drop the old one."""
    old = state.checkpoint
    if save_model:
        name = f"checkpoint-{state.epoch}.keras"
        with atomic.atomic_path(workdir / name) as tmp:
            model.save(_with_suffix(tmp, ".keras"))
            os.replace(_with_suffix(tmp, ".keras"), tmp)
        state.checkpoint = name
    atomic.write_json(workdir / "state.json", state.__dict__)
    if save_model and old != state.checkpoint:
        _remove(workdir, old)


def _with_suffix(path, suffix):
    """Keras insists on file suffixes: a sibling temporary name that has one."""
    return Path(str(path) + suffix)


def _remove(workdir, name):
    if name and (Path(workdir) / name).exists():
        (Path(workdir) / name).unlink()


def history_csv(history):
    if not history:
        return ""
    keys = list(history[0])
    return ",".join(keys) + "\n" + "".join(",".join(json.dumps(h[k]) for k in keys) + "\n" for h in history)
