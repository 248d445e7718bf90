"""Fit one model on one split: the epoch plan, the loop, validation, weight averaging and
checkpoints. Knows nothing of folds: it gets arrays and a checkpoint folder.

One `fit` call per epoch, so that every random draw depends only on (seed, epoch, step): a
run killed at any moment resumes from its last checkpoint and, without a time budget, ends
with the same weights as an uninterrupted run. With a time budget the number of epochs is
planned before the first step from a measured step time, and re-planned from the steps
actually timed, so the per-step schedule always ends its decay when the budget ends.
"""

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from fer_kaggle import atomic
from fer_kaggle.errors import PieceEnded
from fer_kaggle.metrics import accuracy, log_loss
from fer_kaggle.training.augment import (EPOCH_STRIDE, epoch_arrays, epoch_chunks, inner_model, mix_targets_in_loss,
                                        with_augmentation)
from fer_kaggle.training.backend import private_python_random
from fer_kaggle.training.plan import VALIDATION_SHARE, Pace, plan_epochs, plan_low_res_epochs, replanned_epochs
from fer_kaggle.training.resolution import any_size, low_res_epochs, progressive
from fer_kaggle.training.tta import predict
from fer_kaggle.training.schedule import StepSchedule
from fer_kaggle.training.linear_head import init_head
from fer_kaggle.training.whiten import whiten_stem


STATE = "state.json"  # a fit's resumable state in its workdir, beside the checkpoint it names


@dataclass
class FitState:
    """What a resumed run needs besides the checkpointed model (weights and optimizer)."""

    epoch: int = 0  # epochs finished
    planned_epochs: int = 0
    steps_per_epoch: int = 0
    plateau_lr: float = 0.0
    best_val_loss: float = float("inf")
    best_epoch: int = -1
    plateau_wait: int = 0
    val_every: int = 1
    history: list = field(default_factory=list)
    checkpoint: str = ""
    best_weights: str = ""
    statistics: str = ""  # with ema: the file of the normalization statistics' moving average
    stopped: str = ""  # why training ended: epochs, early stopping, time limit
    replans: int = 0
    low_res_epochs: int = 0  # the first epochs, trained at cfg['progressive_size'] (progressive resizing)
    step_seconds: float = 0.0  # one full-size training step's seconds: measured before the run, then from epochs
    paced_epochs: int = 0  # the epochs that timed step_seconds (at full size, not tracing): 0 = still the estimate
    first_planned_epochs: int = 0  # the plan made before the first epoch, from the estimate
    seconds: dict = field(default_factory=lambda: {"train": 0.0, "validate": 0.0, "checkpoint": 0.0})

    @property
    def validated(self):
        return [h for h in self.history if h["val_accuracy"] is not None]


EMA_RUN_SHARE = 0.2  # the moving average's horizon, 1 / (1 - momentum), is at most this share of the run's steps


def ema_momentum(cfg, planned_steps):
    """`ema`, lowered for a short run: Keras's average starts at the initial weights, and with a
    horizon longer than the run it would still be mostly those (a 0.999 average over 300 steps
    predicts near chance). Capped so that the horizon is at most EMA_RUN_SHARE of the planned
    steps: the initial weights then weigh under 1% at the end."""
    return max(0.0, min(cfg["ema"], 1.0 - 1.0 / (EMA_RUN_SHARE * max(1, planned_steps))))


STATISTICS = ("moving_mean", "moving_variance")  # BatchNormalization's statistics, averaged beside the weights


class StatisticsAverage:
    """With `ema`, the moving average of the normalization statistics (BatchNormalization's
    moving mean and variance) beside the optimizer's average of the trainable weights, as
    timm's EMA averages a model's buffers: the averaged weights then normalize with averaged
    statistics, not with those of the last raw weights. Updated after each `fit` call (a chunk
    of an epoch's steps) with the weights' momentum raised to its steps: a host-side read of a
    few vectors, never a synchronization per step. Saved beside each checkpoint."""

    def __init__(self, model, values=None):
        self.variables = [v for v in inner_model(model).non_trainable_variables if v.path.endswith(STATISTICS)]
        self.values = values

    def update(self, momentum, steps):
        current = [keras.ops.convert_to_numpy(v) for v in self.variables]
        if self.values is None:
            self.values = current
        else:
            keep = np.float32(momentum) ** steps
            self.values = [(keep * a + (1 - keep) * c).astype(c.dtype) for a, c in zip(self.values, current)]

    def swap_in(self):
        """Load the averages into the statistics; returns the raw statistics they replaced."""
        raw = [keras.ops.convert_to_numpy(v) for v in self.variables]
        if self.values is not None:
            for variable, value in zip(self.variables, self.values):
                variable.assign(value)
        return raw

    def restore(self, raw):
        for variable, value in zip(self.variables, raw):
            variable.assign(value)

    def save(self, path):
        atomic.write_with(path, lambda named: np.savez(named, *self.values), ".npz")

    @classmethod
    def load(cls, model, path):
        with np.load(path) as saved:
            return cls(model, [saved[f"arr_{i}"] for i in range(len(saved.files))])


def _averaging(model):
    """Whether the model trains with `ema` (its optimizer keeps the weights' moving average)."""
    return getattr(model.optimizer, "use_ema", False)


def make_optimizer(cfg, learning_rate, planned_steps):
    ema = {"use_ema": True, "ema_momentum": ema_momentum(cfg, planned_steps)} if cfg["ema"] else {}
    if cfg["optimizer"] == "adam":
        return keras.optimizers.Adam(learning_rate, **ema)
    if cfg["optimizer"] == "adamw":
        return keras.optimizers.AdamW(learning_rate, weight_decay=cfg["weight_decay"], **ema)
    return keras.optimizers.SGD(learning_rate, momentum=cfg["momentum"], nesterov=True,
                                weight_decay=cfg["weight_decay"], **ema)


def learning_rate_for(cfg, planned_steps):
    if cfg["schedule"] == "plateau":
        return float(cfg["learning_rate"])  # a variable the loop sets per epoch
    return StepSchedule.plan(cfg, planned_steps)


def build_training_model(build_model, cfg, planned_steps, images=None, targets=None):
    """A fresh model behind its augmentation layer, compiled with the planned schedule; with
    `whiten`, its stem whitened on the patches of `images` (the training rows) and frozen; with
    `head_init`, a pretrained network's classifier started at the linear probe of its frozen
    features of `images` and their `targets` (fer_kaggle.training.linear_head)."""
    keras.utils.set_random_seed(cfg["seed"])
    with private_python_random(cfg["seed"]):
        model = build_model()
        if cfg["head_init"] and images is not None and targets is not None:
            init_head(model, images, targets, cfg["seed"])
        model = with_augmentation(any_size(model, cfg["progressive_size"]) if progressive(cfg) else model, cfg)
    if cfg["whiten"] and images is not None:
        whiten_stem(model, images, cfg["seed"])
    model.compile(optimizer=make_optimizer(cfg, learning_rate_for(cfg, planned_steps), planned_steps),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg["label_smoothing"]),
                  metrics=["accuracy"])
    return model


def measure_step_seconds(build_model, cfg, steps=4, min_seconds=1.0, max_steps=64, samples=3):
    """Seconds of one training step (augmentation included) on random pixels: what plans a run
    before it starts. The median of `measure_step_samples`."""
    return float(np.median(measure_step_samples(build_model, cfg, steps, min_seconds, max_steps, samples)))


def measure_step_samples(build_model, cfg, steps=4, min_seconds=1.0, max_steps=64, samples=3):
    """`samples` timings of one training step, each the mean of a run of `train_on_batch` calls
    after a warm-up run that traces. Each call returns its logs as numbers, so its step's work has
    ended (JAX on a GPU dispatches asynchronously); the runs grow (4, 16, 64 steps) until one lasts
    `min_seconds`, so a fast step is not swamped by a call's own overhead. Their median is the
    step's time and their spread its noise (a busy moment of the machine, a stray compilation),
    never one run alone. Not `fit` calls of a few steps: on TensorFlow's CPU most such calls ran
    at a near-constant 1.285 s a step whatever the network (their input pipeline's prefetch),
    where FER2013's pool_first48 steps take 0.68 s, under `train_on_batch` as in training's long
    `fit` calls (BENCHMARKS.md)."""
    with precision_of(cfg):  # timed at the precision it will train at
        return _measure_step_samples(build_model, {**cfg, "epochs": 1}, steps, min_seconds, max_steps, samples)


def _measure_step_samples(build_model, cfg, steps, min_seconds, max_steps, samples):
    model = build_training_model(build_model, cfg, steps)
    shape, num_classes = tuple(model.input_shape[1:]), int(model.output_shape[-1])
    _ready_to_train(model)  # fit() is called again on the same model
    rng = np.random.default_rng(0)
    bs = cfg["batch_size"]

    def timed_steps(n_steps):
        x = rng.integers(0, 256, size=(n_steps * bs, *shape), dtype=np.uint8)
        y = rng.integers(0, num_classes, size=n_steps * bs)
        images, targets, _ = epoch_arrays(x, y, cfg, 0, num_classes)
        batches = [slice(i * bs, (i + 1) * bs) for i in range(n_steps)]
        t0 = time.perf_counter()
        for batch in batches:
            model.train_on_batch(images[batch], targets[batch])
        return time.perf_counter() - t0

    timed_steps(2)  # traces and warms up
    while True:
        seconds = timed_steps(steps)
        if seconds >= min_seconds or steps >= max_steps:
            return [seconds / steps] + [timed_steps(steps) / steps for _ in range(samples - 1)]
        steps *= 4


def fit(build_model, x_train, y_train, x_val, y_val, cfg, workdir, num_classes, time_budget=None,
        step_seconds=None, on_epoch=None, sample_weight=None, stop_at=None):
    """Train on (x_train, y_train); validate on (x_val, y_val) at a cadence that costs under 5%.

    `y_train` holds labels, or soft targets (rows of class probabilities: pseudo-labels, a
    teacher's); `sample_weight` weighs training rows. `stop_at` (a `time.time()`) ends the
    process's piece: an epoch that would not end by then is not started; the run is
    checkpointed and PieceEnded raised (at least one epoch runs in each piece).
    `build_model()` returns a fresh, uncompiled model of raw pixels (n, h, w, c) and
    `num_classes` outputs. `workdir` keeps the
    resumable state. `time_budget` (seconds of this call) plans the epochs, from
    `step_seconds` when given (else from cfg['epochs'] until the first steps are timed).
    Returns (the model that predicts: the last weights, their moving average with `ema`, or
    the best validated epoch's with select=best; FitState)."""
    with precision_of(cfg):
        return _fit(build_model, x_train, y_train, x_val, y_val, cfg, workdir, num_classes, time_budget,
                    step_seconds, on_epoch, sample_weight, stop_at)


class precision_of:
    """Within the block, the dtype policy `cfg` asks for (mixed_bfloat16 with mixed_precision);
    the one before it afterwards, so that it never leaks into the next variant of the process."""

    def __init__(self, cfg):
        self.wanted = "mixed_bfloat16" if cfg.get("mixed_precision") else None

    def __enter__(self):
        self.before = keras.mixed_precision.global_policy().name
        if self.wanted:
            keras.mixed_precision.set_global_policy(self.wanted)

    def __exit__(self, *exc):
        keras.mixed_precision.set_global_policy(self.before)


def _fit(build_model, x_train, y_train, x_val, y_val, cfg, workdir, num_classes, time_budget, step_seconds, on_epoch,
         sample_weight, stop_at):
    workdir = Path(workdir)
    started = time.perf_counter()
    state_path = workdir / STATE
    saved = saved_state(workdir)
    if saved is not None:
        state = FitState(**saved)
        model = keras.models.load_model(workdir / state.checkpoint)
        model.statistics_average = StatisticsAverage.load(model, workdir / state.statistics) if state.statistics \
            else StatisticsAverage(model)
    else:
        steps = max(1, len(x_train) // cfg["batch_size"])
        planned = plan_epochs(cfg, steps, step_seconds, time_budget, x_train.shape[1])
        state = FitState(planned_epochs=planned, first_planned_epochs=planned, steps_per_epoch=steps,
                         plateau_lr=cfg["learning_rate"],
                         step_seconds=step_seconds or 0.0, val_every=max(1, cfg["val_every"]),
                         low_res_epochs=low_res_epochs(cfg, planned))
        model = build_training_model(build_model, cfg, planned * steps, images=x_train, targets=y_train)
        model.statistics_average = StatisticsAverage(model)
    _ready_to_train(model)
    last_checkpoint = time.perf_counter()
    pace = Pace(state, cfg, x_train.shape[1])  # this process's epochs, timed; what the next ones will take
    ran, traces = False, True  # an epoch ran in this process; the next one traces (its first, a re-plan's)

    while not state.stopped:
        if state.epoch >= state.planned_epochs:
            state.stopped = "epochs" if state.planned_epochs == cfg["epochs"] else "time limit"
            break
        if stop_at is not None and ran and time.time() + pace.epoch_seconds(state.epoch) > stop_at:
            _checkpoint(model, state, workdir)
            raise PieceEnded(f"{workdir}: stopped after epoch {state.epoch} of {state.planned_epochs} at the end of "
                             f"the piece, checkpointed")
        resized = _run_epoch(model, state, x_train, y_train, x_val, y_val, cfg, num_classes, workdir, sample_weight,
                             pace.size(state.epoch))
        pace.record(state.history[-1], traced=traces or resized)  # an epoch that traced is not the pace
        ran, traces = True, False
        if cfg["early_stopping_patience"] and _validations_since_best(state) >= cfg["early_stopping_patience"]:
            state.stopped = "early stopping"
        elif time_budget is not None:
            traces = _replan(model, state, cfg, time_budget - (time.perf_counter() - started), pace)
        if state.stopped or state.epoch >= state.planned_epochs or \
                time.perf_counter() - last_checkpoint >= cfg["checkpoint_seconds"]:
            _checkpoint(model, state, workdir)  # the commit point: state.json names this checkpoint
            last_checkpoint = time.perf_counter()
        if on_epoch:
            on_epoch(state)

    if state.history and state.history[-1]["val_accuracy"] is None:  # a re-plan made an epoch the last
        _validate(model, state, state.history[-1], x_val, y_val, cfg, workdir, 0.0)
    atomic.write_json(state_path, state.__dict__)
    return _final_model(model, state, cfg, workdir), state


def _validations_since_best(state):
    return sum(1 for h in state.validated if h["epoch"] - 1 > state.best_epoch)


def _run_epoch(model, state, x_train, y_train, x_val, y_val, cfg, num_classes, workdir, sample_weight, size):
    """Train one epoch at `size` pixels per side (and validate when due); returns whether the
    size changed (the step was traced again)."""
    epoch = state.epoch
    _seed_epoch(model, cfg["seed"], epoch)
    resized = model.get_layer("augment").start_epoch(epoch, None if size == x_train.shape[1] else size)
    if resized:
        model.train_function = None
    if cfg["schedule"] == "plateau":
        model.optimizer.learning_rate = state.plateau_lr
    lr = keras_learning_rate(model)  # at the epoch's first step
    t0 = time.perf_counter()
    steps, loss, acc = 0, 0.0, 0.0  # the epoch's means over its chunks' steps
    for images, targets, weights in epoch_chunks(x_train, y_train, cfg, epoch, num_classes, sample_weight):
        logs = model.fit(images, targets, sample_weight=weights, batch_size=cfg["batch_size"], shuffle=False,
                         epochs=1, verbose=0).history
        n = math.ceil(len(images) / cfg["batch_size"])
        if _averaging(model):
            model.statistics_average.update(model.optimizer.ema_momentum, n)
        steps, loss, acc = steps + n, loss + n * float(logs["loss"][0]), acc + n * float(logs["accuracy"][0])
    train_seconds = time.perf_counter() - t0
    state.seconds["train"] += train_seconds
    state.epoch = epoch + 1
    row = {"epoch": epoch + 1, "loss": loss / steps, "accuracy": acc / steps,
           "val_loss": None, "val_accuracy": None, "learning_rate": lr, "seconds": round(train_seconds, 3),
           "size": size}
    state.history.append(row)
    last = state.epoch >= state.planned_epochs
    if last or epoch % state.val_every == 0 or cfg["early_stopping_patience"] or cfg["schedule"] == "plateau":
        _validate(model, state, row, x_val, y_val, cfg, workdir, train_seconds)
    return resized


def _seed_epoch(model, seed, epoch):
    """The draws of the network's own random layers (dropout) a function of (seed, epoch), as the
    augmentation's are: a checkpoint does not hold their generators' state, and a resumed run
    would otherwise draw other masks than the uninterrupted one."""
    augment = model.get_layer("augment").generator.state
    generators = [v for v in model.variables if v.path.endswith("seed_generator_state") and v is not augment]
    for i, state in enumerate(generators):
        state.assign(np.array([seed * 1024 + 1 + i, epoch * EPOCH_STRIDE], dtype=state.dtype))


def keras_learning_rate(model):
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def _validate(model, state, row, x_val, y_val, cfg, workdir, train_seconds):
    t0 = time.perf_counter()
    with _averaged_weights(model):
        probs = predict(inner_model(model), x_val, tta="none")
        row["val_loss"], row["val_accuracy"] = log_loss(probs, y_val), accuracy(probs, y_val)
        improved = row["val_loss"] < state.best_val_loss
        if improved:
            state.best_val_loss, state.best_epoch, state.plateau_wait = row["val_loss"], row["epoch"] - 1, 0
            if cfg["select"] == "best":
                name = f"best-{row['epoch']}.weights.h5"
                atomic.write_with(workdir / name, inner_model(model).save_weights, ".weights.h5")
                state.best_weights = name  # the old one is removed once state.json names this one
    if not improved:
        state.plateau_wait += 1
        if cfg["schedule"] == "plateau" and state.plateau_wait >= cfg["plateau_patience"]:
            state.plateau_lr = max(cfg["min_learning_rate"], state.plateau_lr * cfg["plateau_factor"])
            state.plateau_wait = 0
    seconds = time.perf_counter() - t0
    state.seconds["validate"] += seconds
    row["val_seconds"] = round(seconds, 3)
    if cfg["val_every"] == 0 and train_seconds > 0:  # as often as costs under VALIDATION_SHARE
        state.val_every = max(1, math.ceil(seconds / (VALIDATION_SHARE * train_seconds)))


class _averaged_weights:
    """Within the block, the model holds the optimizer's moving average of its weights (ema)."""

    def __init__(self, model):
        self.model = model
        self.saved = None

    def __enter__(self):
        optimizer = self.model.optimizer
        if _averaging(self.model) and optimizer.built:
            self.saved = [keras.ops.convert_to_numpy(v) for v in self.model.trainable_variables]
            self.statistics = _load_averages(self.model)
        return self.model

    def __exit__(self, *exc):
        if self.saved is not None:
            for variable, value in zip(self.model.trainable_variables, self.saved):
                variable.assign(value)
            self.model.statistics_average.restore(self.statistics)


def _replan(model, state, cfg, seconds_left, pace):
    """Apply a new plan when the time left calls for one (`replanned_epochs`): the schedule then
    decays over the new plan. Returns whether the step is traced again."""
    planned = replanned_epochs(state, cfg, seconds_left, pace)
    if planned is None:
        return False
    state.low_res_epochs = plan_low_res_epochs(state, cfg, planned)
    state.planned_epochs = max(state.epoch, planned)
    state.replans += 1
    if state.planned_epochs > state.epoch:
        model.optimizer.learning_rate = StepSchedule.plan(cfg, state.planned_epochs * state.steps_per_epoch)
        model.train_function = None  # traced again with the new schedule
        return True
    return False


def _checkpoint(model, state, workdir):
    """Save the training model (and the statistics' average) under new names, then commit
    state.json, then drop the files it no longer names (the old checkpoint, older best weights)."""
    t0 = time.perf_counter()
    name = f"checkpoint-{state.epoch}.keras"
    atomic.write_with(workdir / name, model.save, ".keras")
    state.checkpoint = name
    if model.statistics_average.values is not None:
        state.statistics = f"statistics-{state.epoch}.npz"
        model.statistics_average.save(workdir / state.statistics)
    state.seconds["checkpoint"] += time.perf_counter() - t0
    atomic.write_json(workdir / STATE, state.__dict__)
    for pattern, named in (("checkpoint-*.keras", state.checkpoint), ("statistics-*.npz", state.statistics),
                           ("best-*.weights.h5", state.best_weights)):
        for stale in Path(workdir).glob(pattern):
            if stale.name != named:
                stale.unlink()


def _final_model(model, state, cfg, workdir):
    if cfg["select"] == "best" and state.best_weights:
        inner_model(model).load_weights(workdir / state.best_weights)
    elif _averaging(model) and model.optimizer.built:
        _load_averages(model)
    return inner_model(model)


def _ready_to_train(model):
    """What a training model needs, built or loaded from a checkpoint, before `fit()`."""
    _train_on_raw_weights(model)
    mix_targets_in_loss(model)


def _train_on_raw_weights(model):
    """Keras's `fit()` ends by overwriting the weights with their moving averages (`use_ema`);
    the loop calls `fit()` once per epoch, so every epoch would restart from the averages (and
    on JAX, with a weight sharing its average's buffer, the next step fails). Training keeps
    its raw weights: the averages are loaded only to validate and to finish."""
    if _averaging(model):
        model.optimizer.finalize_variable_values = lambda var_list: None


def _load_averages(model):
    """The optimizer's moving averages into the weights, as copies (JAX donates the buffers
    of a training step's inputs: a weight must not share one with its average), and the
    statistics' averages into the statistics. Returns the raw statistics they replaced."""
    type(model.optimizer).finalize_variable_values(model.optimizer, model.trainable_variables)
    for variable in model.trainable_variables:
        variable.assign(keras.ops.convert_to_numpy(variable))
    return model.statistics_average.swap_in()


def saved_state(workdir):
    """The FitState fields a killed or ended piece of a fit left in `workdir` (what the next
    call resumes from), or None where the fit starts afresh."""
    path = Path(workdir) / STATE
    return atomic.read_json(path) if path.exists() else None


def discard_resume_state(state, workdir):
    """Remove what resuming a finished fit needed (its checkpoint, best weights and state.json),
    once the model it made is saved: the folder keeps the results only."""
    for leftover in [state.checkpoint, state.best_weights, STATE]:
        if leftover and (Path(workdir) / leftover).exists():
            (Path(workdir) / leftover).unlink()


def history_csv(history):
    if not history:
        return ""
    keys = list(dict.fromkeys(k for h in history for k in h))
    return ",".join(keys) + "\n" + "".join(",".join("" if h.get(k) is None else json.dumps(h[k]) for k in keys) + "\n"
                                           for h in history)
