"""Whether a holdout scheme's submission should come from a final model over every row
(`bench --only final`), at equal wall time. One arm trains the holdout model for E epochs and
submits its own predictions; the other trains the holdout model for E' epochs, then a final
model of E' epochs over every row, and submits the final model's: E' = E (k-1) / (2k-1), since
an epoch over every row costs k/(k-1) of a holdout epoch. The test labels are hidden, so a
stratified share of the training rows stands in for the test set: no arm trains on it, every
arm is scored on it. Epochs, not seconds, make the arms equal (the machine's noise moves
seconds, never the epochs or the scores); the seconds each arm took are printed beside."""

import tempfile
import time
from pathlib import Path

import numpy as np

from fer_kaggle.data.folds import make_folds
from fer_kaggle.refit import fit_for_epochs, look_rows
from fer_kaggle.rows import rows_of

STAND_IN_FOLDS = 5  # one of five stratified parts of the training rows stands in for the test set


def final_epochs(epochs, k):
    """The epochs a holdout model and a final model each get in the time of `epochs` holdout epochs."""
    return max(1, round(epochs * (k - 1) / (2 * k - 1)))


def split(y, k, seed=0):
    """(stand-in test rows, holdout model's training rows, its held-out rows): the stand-in is
    one of STAND_IN_FOLDS stratified parts; the rest is split into k folds, fold 0 held out."""
    parts = make_folds(y, STAND_IN_FOLDS, seed)
    stand_in, rows = np.flatnonzero(parts == 0), np.flatnonzero(parts != 0)
    folds = make_folds(y[rows], k, seed)
    return stand_in, rows[folds != 0], rows[folds == 0]


def compare(variant, x, y, spec, epochs_list, k=5, seed=0, log=print):
    """For each E of `epochs_list`: {"holdout", "short holdout", "final"}: each arm's model with
    its epochs, rows trained, seconds, accuracy on the stand-in test rows and (for the holdout
    models) on the held-out rows. Equal time: "holdout" against "short holdout" + "final"."""
    from fer_kaggle import metrics, training

    stand_in, train_rows, held = split(y, k, seed)
    every_row = np.sort(np.concatenate([train_rows, held]))
    results = []
    with tempfile.TemporaryDirectory() as work:
        for epochs in epochs_list:
            short = final_epochs(epochs, k)
            arms = {}
            for arm, arm_epochs, rows in (("holdout", epochs, train_rows), ("short holdout", short, train_rows),
                                          ("final", short, every_row)):
                started = time.perf_counter()
                look = rows[look_rows(len(rows))]
                model, state = fit_for_epochs(variant, rows_of(x, rows), y[rows], rows_of(x, look), y[look], spec,
                                              Path(work) / f"{arm}-{epochs}", arm_epochs)
                tta = variant.train["tta"]
                result = {"epochs": state.epoch, "rows": int(len(rows)),
                          "stand_in": metrics.accuracy(training.predict(model, rows_of(x, stand_in), tta=tta),
                                                       y[stand_in])}
                if arm != "final":
                    result["held_out"] = metrics.accuracy(training.predict(model, rows_of(x, held), tta=tta), y[held])
                result["seconds"] = time.perf_counter() - started
                arms[arm] = result
                log(f"final-model bench: E={epochs} {arm}: {result}")
            results.append(arms)
    return {"stand_in_rows": int(len(stand_in)), "held_out_rows": int(len(held)), "results": results}
