"""Assembling a variant's fold predictions into its OOF and test predictions, with every
integrity check, and committing them with its metrics (fer_kaggle.layout)."""

from pathlib import Path

import numpy as np

from fer_kaggle import atomic, decisions, layout, metrics
from fer_kaggle.data.folds import inner_folds
from fer_kaggle.errors import IntegrityError


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
    NaN in the others, and the test predictions of those fold models only, or of the final
    model over every row that followed them (fer_kaggle.refit).

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
    final = final_model(variant_dir, folds)
    if final is not None:  # a holdout's final model over every row: its test predictions are the variant's
        test = np.load(layout.fold_dir(variant_dir, layout.FINAL) / layout.TEST)
        if test.shape != (len(tests[0]), n_classes):
            raise IntegrityError(f"{variant_dir}/{layout.FINAL}/{layout.TEST} has shape {test.shape}, expected "
                                 f"{(len(tests[0]), n_classes)}")
    for name, probs in (("OOF", oof[np.isin(folds, done_folds)]), ("test", test)):
        if not np.all(np.isfinite(probs)) or np.any(probs < 0) or not np.allclose(probs.sum(axis=1), 1, atol=1e-3):
            raise IntegrityError(f"{variant_dir}: {name} probabilities are not finite non-negative rows summing to 1")
    return oof, test, dones


def final_model(variant_dir, folds):
    """The done record of a holdout's final model over every row (fer_kaggle.refit), or None: a
    variant with every fold trained, or none trained over every row."""
    if len(trained_folds(variant_dir, folds)) == int(folds.max()) + 1 or \
            not layout.fold_is_done(variant_dir, layout.FINAL):
        return None
    return layout.read_fold_done(variant_dir, layout.FINAL)


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
    final = final_model(variant_dir, folds)
    if final is not None:  # the submission's model trained on every row; the score above is the holdout model's
        summary["final_model"] = {"rows": final["rows"], "epochs": final["epochs"],
                                  "fit_seconds": final["fit_seconds"], "predict_seconds": final["predict_seconds"]}
    if comp.test_labels is not None:  # the demo (and fer2013.csv) can score its test set
        summary["test_accuracy"] = metrics.accuracy(test, comp.test_labels)
        summary["test_score"] = decisions.score(comp.spec.metric, test, comp.test_labels)
    layout.commit_predictions(variant_dir, oof, test, summary)
    return summary
