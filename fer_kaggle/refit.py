"""A holdout's final model over every row. The holdout scheme trains fold 0's model alone (its
held-out rows score it); where the preset chooses so (fer_kaggle.choice), one more model of the
same network, epochs and schedule follows it over every training row, and its test predictions
become the variant's (the submission's). Its score is the holdout model's, reported as such:
no row is left to score the final model.

`oof/<variant>/final/`: model.keras, test.npy and done.json last (fer_kaggle.layout);
resumable from its checkpoints; its folder's lock held while it trains."""

import time
from pathlib import Path

import numpy as np

from fer_kaggle import atomic, layout
from fer_kaggle.job_pace import measured, planning_pace
from fer_kaggle.lock import exclusive
from fer_kaggle.progress import job_line
from fer_kaggle.rows import rows_of

LOOK_ROWS = 512  # training rows a final model is validated on: a look at its fit that chooses nothing


def look_rows(n_rows):
    """About LOOK_ROWS of `n_rows` training rows, evenly spread."""
    return np.arange(0, n_rows, max(1, n_rows // LOOK_ROWS))


def fit_for_epochs(variant, x, y, x_look, y_look, spec, workdir, epochs, sample_weight=None, time_budget=None,
                   step_seconds=None, on_epoch=None, stop_at=None):
    """(model, FitState): `variant` trained `epochs` epochs over (x, y) with its own schedule
    (fewer only where `time_budget` runs out first), keeping its last weights; validated on
    (x_look, y_look), which chooses nothing. Resumable in `workdir`."""
    from fer_kaggle import training

    cfg = {**variant.train, "epochs": int(epochs), "select": "last", "early_stopping_patience": 0}
    return training.fit(lambda: variant.build(spec), x, y, x_look, y_look, cfg, workdir, spec.num_classes,
                        time_budget=time_budget, step_seconds=step_seconds, on_epoch=on_epoch,
                        sample_weight=sample_weight, stop_at=stop_at)


def holdout_epochs(variant_dir, holdout_folds):
    """The epochs the holdout's fold models trained (the most of them): the final model's."""
    return max(int(layout.read_fold_done(variant_dir, k)["epochs"]) for k in holdout_folds)


def final_job(variant, oof_dir, x, y, x_test, spec, holdout_folds, time_share=None, threads=None, log=None,
              step_seconds=None, stop_at=None):
    """Train the final model of `variant` over every row (x, y) for the epochs its holdout fold
    models trained, predict the test set with its TTA; returns its done.json content.
    `time_share` (fer_kaggle.time_share) caps its seconds, `stop_at` ends the piece, as for a
    fold job."""
    import fer_kaggle.models  # noqa: F401  (its custom layers, for a checkpoint resumed in a fresh process)
    from fer_kaggle import training
    from fer_kaggle.shipped import save_model

    variant_dir = Path(oof_dir) / variant.name
    final_dir = layout.fold_dir(variant_dir, layout.FINAL)
    with exclusive(final_dir, f"cv {variant.name} final model"):
        if (final_dir / layout.FOLD_DONE).exists():
            return atomic.read_json(final_dir / layout.FOLD_DONE)
        started = time.perf_counter()
        training.configure_backend(threads)
        atomic.sweep_temporaries(final_dir)  # a killed job's half-written files
        log = log or job_line
        epochs, cfg = holdout_epochs(variant_dir, holdout_folds), variant.train
        n_predicted = len(x_test) * training.TTA_VIEWS[cfg["tta"]]
        pace = planning_pace(variant_dir, step_seconds, cfg["batch_size"])  # the holdout model's, where it timed it
        predict_seconds = n_predicted * pace.predict_seconds_per_image if pace else 0.0
        budget = None if time_share is None else time_share.budget(variant.name, layout.FINAL) - predict_seconds

        def on_epoch(state):
            h = state.history[-1]
            log(f"{variant.name} final model (every row) epoch {h['epoch']}/{state.planned_epochs}: loss {h['loss']:.4f} "
                f"acc {h['accuracy']:.4f} lr {h['learning_rate']:.2e} ({h['seconds']:.0f}s)",
                state.epoch / max(1, state.planned_epochs))
            if time_share:
                time_share.record()

        look, resumed = look_rows(len(y)), training.saved_state(final_dir) is not None
        model, state = fit_for_epochs(variant, x, y, rows_of(x, look), y[look], spec, final_dir, epochs,
                                      time_budget=budget, step_seconds=pace and pace.step_seconds, on_epoch=on_epoch,
                                      stop_at=None if stop_at is None else stop_at - predict_seconds)
        fit_seconds = time.perf_counter() - started
        t0 = time.perf_counter()
        test_probs = training.predict(model, x_test, tta=cfg["tta"])
        predict_seconds = time.perf_counter() - t0
        atomic.write_npy(final_dir / layout.TEST, test_probs)
        save_model(model, final_dir / "model.keras", spec)
        done = {"rows": int(len(y)), "epochs": state.epoch, "holdout_epochs": epochs,
                "planned_epochs": state.planned_epochs, "stopped": state.stopped,
                "fit_seconds": round(fit_seconds, 2), "predict_seconds": round(predict_seconds, 2),
                "budget_seconds": None if budget is None else round(budget, 1),
                **measured(state, n_predicted, pace, resumed)}
        atomic.write_json(final_dir / layout.FOLD_DONE, done)
        training.discard_resume_state(state, final_dir)
        log(f"{variant.name} final model done: {len(y)} rows, {state.epoch} epochs (the holdout's {epochs}), "
            f"{fit_seconds:.0f}s fit, {predict_seconds:.0f}s predict: its test predictions are the variant's")
        return done
