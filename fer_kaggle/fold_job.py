"""One fold job: train a variant on every fold but k (or fit a probe's head), predict fold k
and the test set, write `oof/<variant>/fold<k>/` with done.json last. Resumable; it holds the
fold folder's lock while it runs."""

import time
from pathlib import Path

import numpy as np

from fer_kaggle import atomic, decisions, layout, metrics
from fer_kaggle.errors import IntegrityError
from fer_kaggle.fold_inputs import read_inputs
from fer_kaggle.job_pace import measured, planning_pace
from fer_kaggle.lock import exclusive
from fer_kaggle.probe import is_probe, probe_fold
from fer_kaggle.progress import job_line
from fer_kaggle.rows import rows_of
from fer_kaggle.variant import split_rows


def fold_job(variant, k, oof_dir, x, y, x_test, folds, spec, share=None, threads=None, log=None, step_seconds=None,
             stop_at=None):
    """Fold k of `variant` (trained, or a probe's head fitted), holding the fold folder's lock."""
    fold_dir = layout.fold_dir(Path(oof_dir) / variant.name, k)
    with exclusive(fold_dir, f"cv {variant.name} fold {k}"):
        if is_probe(variant):
            return probe_fold(variant, k, oof_dir, x, y, x_test, folds, spec, log)
        return train_fold(variant, k, oof_dir, x, y, x_test, folds, spec, share, threads, log, step_seconds, stop_at)


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
    log = log or job_line
    n_folds = int(folds.max()) + 1
    cfg = variant.train
    n_predicted = (len(valid_rows) + len(x_test)) * training.TTA_VIEWS[cfg["tta"]]
    budget = time_share.budget(variant.name, k) if time_share else None
    pace = planning_pace(fold_dir.parent, step_seconds, cfg["batch_size"])  # an earlier fold's, where one finished
    predict_seconds = n_predicted * pace.predict_seconds_per_image if pace else 0.0
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

    saved = training.saved_state(fold_dir)  # the parts' seconds add up over the pieces; "fixed" is this process's
    seconds_before = sum(saved["seconds"].values()) if saved else 0.0
    model, state = training.fit(
        lambda: variant.build(spec),
        x_fit, y_fit, rows_of(x, valid_rows), y[valid_rows],
        cfg, fold_dir, spec.num_classes, time_budget=budget, step_seconds=pace and pace.step_seconds, on_epoch=on_epoch,
        sample_weight=weights,
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
        **measured(state, n_predicted, pace, resumed=saved is not None),
    }
    atomic.write_json(fold_dir / layout.FOLD_DONE, done)
    training.discard_resume_state(state, fold_dir)
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
