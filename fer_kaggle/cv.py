"""K-fold cross-validation over model variants: OOF assembly, integrity, resume, time budget,
parallel fold jobs (joblib processes, or a Dask cluster through joblib's dask backend).

Per variant, under `oof/<variant>/`: `config.json`, `fold<k>/` (history.csv, model.keras,
valid.npy, test.npy, rows.npz, done.json written last), then `oof.npy`, `test.npy` and
`metrics.json` committed together (fer_kaggle.layout). `oof/leaderboard.csv` ranks every
finished variant.
"""

import csv
import functools
import io
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_kaggle import atomic, decisions, layout, metrics
from fer_kaggle.clock import clock
from fer_kaggle.data.folds import FOLD_KEYS, inner_folds
from fer_kaggle.errors import ConfigError, IntegrityError, PieceEnded
from fer_kaggle.fold_inputs import read_inputs
from fer_kaggle.lock import end_with_parent, exclusive
from fer_kaggle.probe import is_probe, probe_fold
from fer_kaggle.probe import views as probe_views
from fer_kaggle.rows import rows_of
from fer_kaggle.training.config import DEFAULTS


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


# ----------------------------------------------------------------------------- one fold job


def train_fold(variant, k, oof_dir, x, y, x_test, folds, spec, time_share=None, threads=None, log=None,
               step_seconds=None, stop_at=None):
    """Train variant on every fold but k; predict fold k and the test set. Resumable.

    `time_share` gives the job its share of the run's time left when it starts; `stop_at`
    (a `time.time()`) ends the piece (PieceEnded, checkpointed). Writes
    `oof/<variant>/fold<k>/` and returns its done.json content."""
    import fer_kaggle.models  # noqa: F401  (its custom layers, for a checkpoint resumed in a fresh worker)
    from fer_kaggle import training
    from fer_kaggle.shipped import save_model

    fold_dir = layout.fold_dir(Path(oof_dir) / variant.name, k)
    if (fold_dir / layout.FOLD_DONE).exists():
        return atomic.read_json(fold_dir / layout.FOLD_DONE)
    started = time.perf_counter()
    training.configure_backend(threads)
    fold_dir.mkdir(parents=True, exist_ok=True)
    atomic.sweep_temporaries(fold_dir)  # a killed job's half-written files
    train_rows, valid_rows = split_rows(folds, k)
    inputs = read_inputs(fold_dir)
    if variant.teaching and inputs is None:
        raise IntegrityError(f"{fold_dir}: variant {variant.name} was made by `fer-kaggle {variant.teaching['stage']}`, "
                             f"which writes each fold's {fold_dir.name}/inputs.npz: run that stage again")
    if inputs is None:
        x_fit, y_fit, weights, test_rows = rows_of(x, train_rows), y[train_rows], None, np.zeros(0, np.int64)
    else:
        inputs.check(folds, k, fold_dir / "inputs.npz")
        x_fit, y_fit, weights = inputs.arrays(x, x_test)
        train_rows, test_rows = inputs.train_rows, inputs.test_rows
    log = log or _print
    n_folds = int(folds.max()) + 1
    cfg = variant.train
    n_predicted = (len(valid_rows) + len(x_test)) * training.TTA_VIEWS[cfg["tta"]]
    budget = time_share.budget(variant.name, k) if time_share else None
    predict_seconds = n_predicted * (step_seconds or 0.0) / cfg["batch_size"] / 3  # a forward pass ~ 1/3 step
    if budget is not None:  # keep the time the predictions will take
        budget -= predict_seconds

    def on_epoch(state):
        h = state.history[-1]
        val = f" val_loss {h['val_loss']:.4f} val_acc {h['val_accuracy']:.4f}" if h["val_accuracy"] is not None else ""
        log(f"{variant.name} fold {k + 1}/{n_folds} epoch {h['epoch']}/{state.planned_epochs}: "
            f"loss {h['loss']:.4f} acc {h['accuracy']:.4f}{val} lr {h['learning_rate']:.2e} ({h['seconds']:.0f}s)",
            state.epoch / max(1, state.planned_epochs))
        if time_share:
            time_share.record()

    resumed = fold_dir / "state.json"  # the parts' seconds add up over the pieces; "fixed" is this process's
    seconds_before = sum(atomic.read_json(resumed)["seconds"].values()) if resumed.exists() else 0.0
    model, state = training.fit(
        lambda: variant.build(spec),
        x_fit, y_fit, rows_of(x, valid_rows), y[valid_rows],
        cfg, fold_dir, spec.num_classes, time_budget=budget, step_seconds=step_seconds, on_epoch=on_epoch, sample_weight=weights,
        stop_at=None if stop_at is None else stop_at - predict_seconds,
    )
    fit_seconds = time.perf_counter() - started
    t0 = time.perf_counter()
    valid_probs = training.predict(model, rows_of(x, valid_rows), tta=cfg["tta"])
    test_probs = training.predict(model, x_test, tta=cfg["tta"])
    predict_seconds = time.perf_counter() - t0

    atomic.write_text(fold_dir / "history.csv", training.history_csv(state.history))
    atomic.write_npy(fold_dir / "valid.npy", valid_probs)
    atomic.write_npy(fold_dir / "test.npy", test_probs)
    atomic.write_npz(fold_dir / "rows.npz", train_rows=train_rows, valid_rows=valid_rows, test_rows=test_rows)
    save_model(model, fold_dir / "model.keras", spec)
    done = {
        "fold": k,
        "metric": spec.metric,
        "score": decisions.score(spec.metric, valid_probs, y[valid_rows]),
        "accuracy": metrics.accuracy(valid_probs, y[valid_rows]),
        "log_loss": metrics.log_loss(valid_probs, y[valid_rows]),
        "epochs": state.epoch,
        "planned_epochs": state.planned_epochs,
        "stopped": state.stopped,
        "selected": training.selects_on_validation(cfg),
        **_pick_worth(state),
        "fit_seconds": round(fit_seconds, 2),
        "predict_seconds": round(predict_seconds, 2),
        "seconds": {**{part: round(v, 2) for part, v in state.seconds.items()}, "predict": round(predict_seconds, 2),
                    "fixed": round(time.perf_counter() - started - (sum(state.seconds.values()) - seconds_before)
                                   - predict_seconds, 2)},
        "budget_seconds": None if budget is None else round(budget, 1),
    }
    atomic.write_json(fold_dir / layout.FOLD_DONE, done)
    for leftover in [state.checkpoint, state.best_weights, "state.json"]:
        if leftover and (fold_dir / leftover).exists():
            (fold_dir / leftover).unlink()
    metric = "" if spec.metric in ("accuracy", "log_loss") else f"{spec.metric} {done['score']:.4f} "
    log(f"{variant.name} fold {k + 1}/{n_folds} done: {metric}accuracy {done['accuracy']:.4f} "
        f"log loss {done['log_loss']:.4f} "
        f"after {state.epoch} epochs ({state.stopped}), {fit_seconds:.0f}s fit, {predict_seconds:.0f}s predict")
    return done


def _pick_worth(state):
    """What choosing the best validated epoch would have been worth over the last one (its
    validation accuracy is optimistic: the held-out labels chose it)."""
    validated = state.validated
    if not validated:
        return {}
    best = max(validated, key=lambda h: (-h["val_loss"], h["epoch"]))
    return {"best_epoch": best["epoch"], "best_epoch_val_accuracy": best["val_accuracy"],
            "last_val_accuracy": validated[-1]["val_accuracy"]}


class TimeShare:
    """Shares a run's time limit among its fold jobs, each taking its share when it starts:
    (time left) x (parallel jobs) x (its cost) / (cost of the jobs not yet done), so time
    that a job leaves unused goes to the jobs after it. The time spent is kept in
    `oof/time.json` under the run's key, so a resumed run (a killed one, or the next piece)
    gets what the earlier ones left. Picklable, for process pools."""

    def __init__(self, time_limit, costs, oof_dir, parallel=1, key=None, spent=0.0):
        self.time_limit, self.key = time_limit, key
        self.deadline = time.time() + time_limit - spent
        self.costs = dict(costs)  # {(variant name, fold): estimated seconds}
        self.oof_dir, self.parallel = str(oof_dir), max(1, parallel)

    def budget(self, name, k):
        left = max(0.0, self.deadline - time.time())
        not_done = [c for (n, f), c in self.costs.items() if not layout.fold_is_done(Path(self.oof_dir) / n, f)]
        share = self.costs[(name, k)] * min(self.parallel, len(not_done)) / max(sum(not_done), 1e-9)
        return left * min(1.0, share)

    def record(self):
        """Write the time spent so far (every epoch and job: a kill loses at most one epoch's)."""
        spent = self.time_limit - max(0.0, self.deadline - time.time())
        atomic.write_json(Path(self.oof_dir) / LEDGER, {"key": self.key, "spent": round(spent, 1)})


LEDGER = "time.json"


def spent_before(oof_dir, key):
    """Seconds that earlier pieces of this run (the same key) spent."""
    path = Path(oof_dir) / LEDGER
    if path.exists():
        ledger = atomic.read_json(path)
        if ledger.get("key") == key:
            return float(ledger["spent"])
    return 0.0


def _print(message, fraction=None, started=None):
    """A fold job's own progress line (parallel jobs): wall time since the run started."""
    prefix = f"[{clock(time.time() - started)} elapsed] " if started else ""
    print(prefix + message, flush=True)


# ----------------------------------------------------------------------------- assembly


def trained_folds(variant_dir, folds):
    """The folds of `variant_dir` whose fold job is done."""
    return [k for k in range(int(folds.max()) + 1) if layout.fold_is_done(variant_dir, k)]


def covered_rows(oof):
    """The rows an OOF array predicts: all of them, or a holdout variant's (NaN elsewhere)."""
    return np.flatnonzero(~np.isnan(oof[:, 0]))


def assemble(variant_dir, folds, y, n_classes):
    """Check the fold predictions of the folds done and combine them into (oof, test,
    per-fold done records): with every fold done, every row's prediction; with some (a
    holdout variant: `cv --folds 0`, or the holdout scheme), the held-out rows of those,
    NaN in the others, and the test predictions of those fold models only.

    Every row of a fold done must be predicted exactly once, by the model of the fold that
    held it out, which must never have trained on it; probabilities finite and summing to 1."""
    variant_dir = Path(variant_dir)
    done_folds = trained_folds(variant_dir, folds)
    if not done_folds:
        raise IntegrityError(f"{variant_dir}: no fold job is done")
    oof = np.full((len(y), n_classes), np.nan, dtype=np.float32)
    tests, dones = [], []
    for k in done_folds:
        fold_dir = layout.fold_dir(variant_dir, k)
        with np.load(fold_dir / "rows.npz") as rows:
            train_rows, valid_rows = rows["train_rows"], rows["valid_rows"]
        leaked = np.intersect1d(train_rows, valid_rows)
        if len(leaked):
            raise IntegrityError(f"{fold_dir}: the model trained on {len(leaked)} of the rows it predicted "
                                 f"(row {leaked[0]} first): its OOF predictions leak")
        if not np.array_equal(np.sort(valid_rows), np.flatnonzero(folds == k)):  # each once: no row predicted twice
            raise IntegrityError(f"{fold_dir}: predicted rows differ from the rows folds.csv holds out for fold {k}")
        valid = np.load(fold_dir / "valid.npy")
        if valid.shape != (len(valid_rows), n_classes):
            raise IntegrityError(f"{fold_dir}/valid.npy has shape {valid.shape}, expected {(len(valid_rows), n_classes)}")
        oof[valid_rows] = valid
        tests.append(np.load(fold_dir / "test.npy"))
        dones.append(atomic.read_json(fold_dir / layout.FOLD_DONE))
    test = np.mean(tests, axis=0).astype(np.float32)
    for name, probs in (("OOF", oof[np.isin(folds, done_folds)]), ("test", test)):
        if not np.all(np.isfinite(probs)) or np.any(probs < 0) or not np.allclose(probs.sum(axis=1), 1, atol=1e-3):
            raise IntegrityError(f"{variant_dir}: {name} probabilities are not finite non-negative rows summing to 1")
    return oof, test, dones


# ----------------------------------------------------------------------------- the loop


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


_IDENTITY = ("model", "model_hp", "train", "teaching", "folds", "test_sha256")


def _check_or_write_config(variant_dir, config):
    path = Path(variant_dir) / layout.CONFIG
    if path.exists():
        old = atomic.read_json(path)
        if isinstance(old.get("train"), dict):  # a setting added since it was written had its default's effect then
            old["train"] = {**DEFAULTS, **old["train"]}
        old.setdefault("test_sha256", config["test_sha256"])  # written before the test set was identified
        changed = [key for key in _IDENTITY if _jsonable(old.get(key)) != _jsonable(config[key])]
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


class Progress:
    """Overall progress of a serial run: elapsed time, and the time left: what the time limit
    leaves, or without one the pace so far over the estimated cost of the jobs left."""

    def __init__(self, total_cost, time_limit=None, stream=None):
        self.started = time.perf_counter()
        self.time_limit = time_limit
        self.cost_left = float(total_cost)
        self.cost_done = 0.0
        self.current = 0.0
        self.stream = stream or sys.stdout

    def start_job(self, cost):
        self.current = cost

    def job_done(self):
        self.cost_done += self.current
        self.cost_left = max(0.0, self.cost_left - self.current)
        self.current = 0.0

    def line(self, message, fraction=None):
        elapsed = time.perf_counter() - self.started
        done = self.cost_done + (fraction or 0.0) * self.current
        left = self.cost_left - (fraction or 0.0) * self.current
        if self.time_limit:
            eta = f", about {clock(max(0.0, self.time_limit - elapsed))} left"
        else:
            eta = f", about {clock(elapsed / done * left)} left" if done > 0 else ""
        print(f"[{clock(elapsed)} elapsed{eta}] {message}", file=self.stream, flush=True)


def run_cv(comp, folds, folds_meta, variants, oof_dir="oof", time_limit=None, jobs=1, scheduler=None,
           threads=None, preset=None, log=None, piece_seconds=None, only_folds=None):
    """Train every variant on every fold (skipping finished folds), assemble, rank.

    `only_folds` (fold numbers) trains those folds only: a one-fold experiment or a holdout
    scheme, assembled as a holdout variant (its OOF predicts the rows of those folds, NaN
    elsewhere) until a run trains its other folds.

    `piece_seconds` ends this call (PieceEnded) when no further epoch fits in that many
    seconds; calling it again resumes, the time limit counting every piece's seconds.
    Returns the leaderboard rows."""
    from fer_kaggle.models import count_flops, model_hp
    from fer_kaggle.training import configure_backend, measure_step_seconds

    oof_dir = Path(oof_dir)
    started = time.perf_counter()  # the limit counts the set-up (cost probes) too
    stop_at = None if piece_seconds is None else time.time() + piece_seconds
    key = {"variants": sorted(v.name for v in variants), "time_limit": time_limit}
    spent = spent_before(oof_dir, key) if time_limit is not None else 0.0
    cores = os.cpu_count() or 1
    threads = threads or max(1, cores // max(1, jobs))
    configure_backend(threads)
    n_folds = int(folds.max()) + 1
    n_fold_train = len(comp.y_train) * (n_folds - 1) // n_folds
    step_seconds, epoch_seconds, costs, pending = {}, {}, {}, []
    for variant in variants:
        variant.model_hp = model_hp(variant.model, **variant.model_hp)
        model = variant.build(comp.spec)
        params, flops = int(model.count_params()), count_flops(model)
        _check_or_write_config(oof_dir / variant.name,
                               variant_config(variant, folds_meta, params, flops, preset, comp.test_sha256))
        todo = [k for k in range(n_folds) if not layout.fold_is_done(oof_dir / variant.name, k)
                and (only_folds is None or k in only_folds)]
        pending += [(variant, k) for k in todo]
        if todo:  # seconds of one fold job at its full epochs, from a short measured fit
            build = lambda v=variant: v.build(comp.spec)  # noqa: E731
            bs = variant.train["batch_size"]
            step = measure_step_seconds(build, variant.train) if time_limit else max(flops, 1) * 3e-9 * bs
            step_seconds[variant.name] = step
            epoch_seconds[variant.name] = step * max(1, n_fold_train // bs)
            for k in todo:
                inputs = read_inputs(layout.fold_dir(oof_dir / variant.name, k))
                rows = n_fold_train if inputs is None else len(inputs.weights)
                costs[(variant.name, k)] = step * max(1, rows // bs) * variant.train["epochs"]
                if is_probe(variant):  # a forward pass (~1/3 step) of every image and view, shared by the folds
                    images = (len(comp.y_train) + len(comp.test_ids)) * probe_views(variant.train, comp.spec)
                    costs[(variant.name, k)] = step * images / bs / 3 / n_folds
    left = None if time_limit is None else time_limit - spent - (time.perf_counter() - started)
    progress = Progress(sum(costs.values()), left)
    log = log or progress.line
    affordable = affordable_epochs(left, [epoch_seconds[v.name] for v, _ in pending], jobs)
    if affordable is not None and affordable < FEW_EPOCHS:
        log(f"warning: at the pace measured here, {left:.0f}s afford about {affordable:.1f} epochs of each of the "
            f"{len(pending)} fold jobs: expect weak fold models (a longer --time-limit, fewer variants, or a preset "
            f"made for this machine)")
    share = TimeShare(time_limit, costs, oof_dir, jobs, key, time_limit - left) if time_limit is not None else None

    if pending and jobs == 1 and not scheduler:
        trained = False  # in this piece
        for variant, k in pending:
            step, epoch = step_seconds.get(variant.name), epoch_seconds.get(variant.name, 0.0)
            fold_dir = layout.fold_dir(oof_dir / variant.name, k)
            if stop_at is not None and time.time() + epoch > stop_at:
                if not trained:
                    raise ConfigError(f"a piece of {piece_seconds:.0f}s is shorter than one epoch of {variant.name} "
                                      f"(about {epoch:.0f}s) and the set-up: give more --piece-seconds")
                raise PieceEnded(f"{fold_dir}: no further epoch fits in the piece")
            progress.start_job(costs[(variant.name, k)])
            images = variant.images(comp)
            fold_job(variant, k, oof_dir, images.x_train, comp.y_train, images.x_test, folds, images.spec, share,
                     threads, log, step if time_limit else None, stop_at)
            trained = True
            progress.job_done()
    elif pending:
        _run_parallel(pending, step_seconds if time_limit else {}, epoch_seconds, share, comp, folds, oof_dir, jobs,
                      scheduler, threads, stop_at)
    if share:
        (oof_dir / LEDGER).unlink(missing_ok=True)  # every job is done: a later run starts afresh

    for variant in variants:  # every fold asked for is done: all of them, or a holdout's (--folds)
        done = trained_folds(oof_dir / variant.name, folds)
        if done and set(only_folds if only_folds is not None else range(n_folds)) <= set(done):
            finalize_variant(oof_dir / variant.name, comp, folds)
    return write_leaderboard(oof_dir, comp.spec.metric)


FEW_EPOCHS = 3  # fewer epochs per fold job than this in the time left: the run warns that its models will be weak


def affordable_epochs(seconds_left, epoch_seconds, jobs=1):
    """Epochs each fold job can train in `seconds_left`, with `epoch_seconds` one epoch of each
    pending job and `jobs` of them at once; None without a time limit or jobs."""
    if seconds_left is None or not epoch_seconds:
        return None
    return max(0.0, seconds_left) * max(1, jobs) / sum(epoch_seconds)


FIRST_EPOCH_MARGIN = 30.0  # seconds a fold job's set-up and tracing may add to its first epoch (a GPU compiles)


def _run_parallel(pending, step_seconds, epoch_seconds, share, comp, folds, oof_dir, jobs, scheduler, threads,
                  stop_at=None):
    import joblib

    log = functools.partial(_print, started=time.time())
    calls = []
    for i, (variant, k) in enumerate(pending):
        images = variant.images(comp)
        piece = None if stop_at is None else (stop_at, i < jobs, epoch_seconds.get(variant.name, 0.0))
        calls.append(joblib.delayed(_piece_job)(variant, k, str(oof_dir), images.x_train, comp.y_train, images.x_test,
                                                folds, images.spec, share, threads, log, step_seconds.get(variant.name),
                                                piece, None if scheduler else os.getpid()))
    if scheduler:
        from dask.distributed import Client

        from fer_kaggle.network import check_dask_address

        with Client(check_dask_address(scheduler)), joblib.parallel_config(backend="dask"):
            results = joblib.Parallel(n_jobs=jobs)(calls)
    else:
        results = joblib.Parallel(n_jobs=jobs, backend="loky")(calls)
    unfinished = [f"{variant.name} fold {k}" for (variant, k), done in zip(pending, results) if done is None]
    if unfinished:
        raise PieceEnded(f"{len(unfinished)} fold jobs go on in the next piece ({', '.join(unfinished)})")


def _piece_job(variant, k, oof_dir, x, y, x_test, folds, spec, share, threads, log, step_seconds, piece,
               parent_pid=None):
    """One parallel fold job: its done record, or None where the piece ended first. `piece`:
    (its end as a `time.time()`, whether the job starts in any case (the piece's first jobs,
    so that every piece makes progress), the job's epoch seconds); a later job is not started
    when its first epoch would not end in the piece. A job returns rather than raises, so
    that the piece's end never cuts the jobs beside it short: each checkpoints its own. A
    local worker ends with `parent_pid`, the run's process."""
    stop_at = None
    if piece is not None:
        stop_at, must_start, epoch_seconds = piece
        if not must_start and time.time() + epoch_seconds + FIRST_EPOCH_MARGIN > stop_at:
            return None
    end_with_parent(parent_pid)
    try:
        return fold_job(variant, k, oof_dir, x, y, x_test, folds, spec, share, threads, log, step_seconds, stop_at)
    except PieceEnded:
        return None


def fold_job(variant, k, oof_dir, x, y, x_test, folds, spec, share=None, threads=None, log=None, step_seconds=None,
             stop_at=None):
    """Fold k of `variant` (trained, or a probe's head fitted), holding the fold folder's lock."""
    fold_dir = layout.fold_dir(Path(oof_dir) / variant.name, k)
    with exclusive(fold_dir, f"cv {variant.name} fold {k}"):
        if is_probe(variant):
            return probe_fold(variant, k, oof_dir, x, y, x_test, folds, spec, log)
        return train_fold(variant, k, oof_dir, x, y, x_test, folds, spec, share, threads, log, step_seconds, stop_at)


def finalize_variant(variant_dir, comp, folds):
    """Assemble oof.npy, test.npy and metrics.json of a variant whose folds are all done."""
    variant_dir = Path(variant_dir)
    config = atomic.read_json(variant_dir / layout.CONFIG)
    oof, test, dones = assemble(variant_dir, folds, comp.y_train, comp.spec.num_classes)
    rows = covered_rows(oof)
    probs, y = oof[rows], comp.y_train[rows]
    fold_acc = [d["accuracy"] for d in dones]
    summary = {
        "variant": config["variant"],
        "kind": "variant" if len(rows) == len(comp.y_train) else "holdout",  # scored on every row, or a holdout's
        "model": config["model"],
        "metric": comp.spec.metric,  # the competition's: what ranks the leaderboard
        "score": decisions.score(comp.spec.metric, probs, y, inner_folds(folds[rows], y)),
        "accuracy": metrics.accuracy(probs, y),
        "log_loss": metrics.log_loss(probs, y),
        "folds_trained": [d["fold"] for d in dones],
        "oof_rows": int(len(rows)),  # every training row, or a holdout's
        "fold_accuracy": fold_acc,
        "fold_accuracy_std": float(np.std(fold_acc)),
        "params": config["params"],
        "flops": config["flops"],
        "epochs": [d["epochs"] for d in dones],
        "fit_seconds": round(sum(d["fit_seconds"] for d in dones), 1),
        "predict_seconds": round(sum(d["predict_seconds"] for d in dones), 1),
        "selected": any(d.get("selected", False) for d in dones) or bool(config.get("selected_on")),
        "selected_on": config.get("selected_on"),
    }
    picks = [d["best_epoch_val_accuracy"] - d["last_val_accuracy"] for d in dones if "last_val_accuracy" in d]
    if picks:  # what a best-epoch pick on the held-out labels would have added (optimistically)
        summary["best_epoch_pick_gain"] = float(np.mean(picks))
    if comp.test_labels is not None:  # the demo (and fer2013.csv) can score its test set
        summary["test_accuracy"] = metrics.accuracy(test, comp.test_labels)
        summary["test_score"] = decisions.score(comp.spec.metric, test, comp.test_labels)
    layout.commit_predictions(variant_dir, oof, test, summary)
    return summary


LEADERBOARD_COLUMNS = ("name", "kind", "metric", "score", "accuracy", "log_loss", "fold_accuracy_std", "params",
                       "flops", "fit_seconds", "predict_seconds", "selected")


def leaderboard_rows(oof_dir, metric=None):
    """Every variant and blend, best first by the competition's metric (`metric`; None: the one
    their metrics.json name), ties broken by log loss."""
    rows = []
    for name in layout.finished(oof_dir):
        m = atomic.read_json(Path(oof_dir) / name / layout.METRICS)
        if "accuracy" not in m:
            continue
        row = {"name": m.get("variant", name), "kind": m.get("kind", "variant"),
               **{c: m.get(c, "") for c in LEADERBOARD_COLUMNS[2:]},
               "selected": "yes" if m.get("selected") else ""}  # OOF chosen with the held-out labels
        if row["metric"] in ("", None):
            row["metric"], row["score"] = "accuracy", m["accuracy"]
        rows.append(row)
    metric = metric or (rows[0]["metric"] if rows else "accuracy")
    rows = [r for r in rows if r["metric"] == metric] + [r for r in rows if r["metric"] != metric]
    key = metrics.get_metric(metric).sort_key
    rows.sort(key=lambda r: (r["metric"] != metric, key(r["score"]), float(r["log_loss"])))
    return rows


def write_leaderboard(oof_dir, metric=None):
    rows = leaderboard_rows(oof_dir, metric)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=LEADERBOARD_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()})
    atomic.write_text(Path(oof_dir) / "leaderboard.csv", out.getvalue())
    return rows

