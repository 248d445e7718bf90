"""The linear probe: a pretrained network's classifier fitted on its frozen features, as a fold
job of `cv` (the recipe `probe` of a variant whose model is pretrained, fer_kaggle.models.pretrained).

The backbone's pooled features of every training and test image, and of each one's mirror where
the competition allows mirrors and the variant's TTA uses them, are computed once for the
variant (`oof/<variant>/features/`, in parts written atomically, so a killed run resumes at the
part it was in) and averaged over the views. They know no label, so every fold shares them.
Fold k then fits a multinomial logistic regression on its training rows' standardized features,
its strength C chosen by an inner cross-validation on those rows alone (the held-out rows never
choose anything), and predicts its held-out rows and the test set. It writes what a trained fold
writes (valid.npy, test.npy, rows.npz, model.keras with the fitted classifier in the network's
last layer, done.json last), so assembly, blends, reports and `predict` take it as any fold.
"""

import time
from pathlib import Path

import numpy as np

from fer_kaggle import atomic, decisions, layout, metrics
from fer_kaggle.errors import IntegrityError
from fer_kaggle.fold_inputs import read_inputs
from fer_kaggle.training.linear_head import fit_head, probabilities, set_classifier

PART_IMAGES = 512  # images of one part of the feature cache (a kill loses at most one part)


def is_probe(variant):
    return variant.train.get("recipe") == "probe"


def views(cfg, spec):
    """The views whose features are averaged: the image, and its mirror where allowed."""
    from fer_kaggle.training.tta import MIRRORING

    return 2 if spec.flip and cfg["tta"] in MIRRORING else 1


def features(model, x, n_views, directory, name, log=None, batch_size=32):
    """Pooled backbone features of `x` (n, d) float32, averaged over `n_views`, cached in
    `directory/<name>-<part>.npy`."""
    from fer_kaggle.models.pretrained import features_model

    directory = Path(directory)
    extractor = None
    parts, started, shown, computed = [], time.perf_counter(), time.perf_counter(), 0
    for start in range(0, len(x), PART_IMAGES):
        path = directory / f"{name}-{start // PART_IMAGES:05d}.npy"
        if not path.exists():
            extractor = extractor or features_model(model)
            pixels = np.asarray(x[start: start + PART_IMAGES], np.float32)
            out = 0.0
            for view in (pixels, pixels[:, :, ::-1])[:n_views]:
                out = out + np.asarray(extractor.predict(view, batch_size=batch_size, verbose=0), np.float32)
            atomic.write_npy(path, (out / n_views).astype(np.float32))
            computed += len(pixels)
            done = min(start + PART_IMAGES, len(x))
            if log and (time.perf_counter() - shown > 30 or done == len(x)):
                shown = time.perf_counter()
                log(f"features of {name} {done}/{len(x)} images ({computed / (shown - started):.1f} images/s, "
                    f"{n_views} view(s) each)")
        parts.append(np.load(path))
    return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


def probe_fold(variant, k, oof_dir, x, y, x_test, folds, spec, log=print):
    """Fit fold k's classifier on the shared features; writes `oof/<variant>/fold<k>/`. Returns
    its done.json content."""
    from fer_kaggle.shipped import save_model

    variant_dir = Path(oof_dir) / variant.name
    fold_dir = layout.fold_dir(variant_dir, k)
    if (fold_dir / layout.FOLD_DONE).exists():
        return atomic.read_json(fold_dir / layout.FOLD_DONE)
    atomic.sweep_temporaries(fold_dir)  # a killed job's half-written files
    started = time.perf_counter()
    cfg, n_folds = variant.train, int(folds.max()) + 1
    model = variant.build(spec)
    n_views = views(cfg, spec)
    cache = variant_dir / "features"
    f_train = features(model, x, n_views, cache, "train", lambda m: log(f"{variant.name}: {m}"))
    f_test = features(model, x_test, n_views, cache, "test", lambda m: log(f"{variant.name}: {m}"))
    feature_seconds = time.perf_counter() - started
    train_rows, valid_rows = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
    inputs, taught, test_rows = read_inputs(fold_dir), None, np.zeros(0, np.int64)
    if variant.teaching and inputs is None:
        raise IntegrityError(f"{fold_dir}: variant {variant.name} was made by `fer-kaggle {variant.teaching['stage']}`, "
                             f"which writes each fold's {fold_dir.name}/inputs.npz: run that stage again")
    if inputs is not None:
        inputs.check(folds, k, fold_dir / "inputs.npz")
        train_rows, test_rows = inputs.train_rows, inputs.test_rows
        taught = (np.concatenate([f_train[train_rows], f_test[test_rows]]),
                  np.concatenate([inputs.train_targets, inputs.test_targets]), inputs.weights)
    # C is chosen on the rows the fold trains on, with the labels it has: true ones, or a taught fold's targets
    chooser = (f_train[train_rows], y[train_rows]) if taught is None else \
        (f_train[train_rows], inputs.train_targets.argmax(axis=1))
    t0 = time.perf_counter()
    scaler, head, c, inner = fit_head(*chooser, spec.num_classes, cfg["seed"], taught)
    fit_seconds = time.perf_counter() - t0
    valid_probs = probabilities(scaler, head, f_train[valid_rows], spec.num_classes)
    test_probs = probabilities(scaler, head, f_test, spec.num_classes)
    set_classifier(model, scaler, head, spec.num_classes)
    fold_dir.mkdir(parents=True, exist_ok=True)
    atomic.write_text(fold_dir / "history.csv", "epoch,C,inner_cv_accuracy\n"
                      + "".join(f"{i + 1},{c_},{s:.5f}\n" for i, (c_, s) in enumerate(inner.items())))
    atomic.write_npy(fold_dir / "valid.npy", valid_probs)
    atomic.write_npy(fold_dir / "test.npy", test_probs)
    atomic.write_npz(fold_dir / "rows.npz", train_rows=train_rows, valid_rows=valid_rows, test_rows=test_rows)
    save_model(model, fold_dir / "model.keras", spec)
    done = {
        "fold": k, "metric": spec.metric, "recipe": "probe",
        "score": decisions.score(spec.metric, valid_probs, y[valid_rows]),
        "accuracy": metrics.accuracy(valid_probs, y[valid_rows]),
        "log_loss": metrics.log_loss(valid_probs, y[valid_rows]),
        "epochs": 0, "planned_epochs": 0, "stopped": "probe", "selected": False,
        "C": c, "inner_cv_accuracy": inner.get(c),
        "fit_seconds": round(time.perf_counter() - started, 2), "predict_seconds": 0.0,
        "seconds": {"features": round(feature_seconds, 2), "head": round(fit_seconds, 2)},
        "budget_seconds": None,
    }
    atomic.write_json(fold_dir / layout.FOLD_DONE, done)
    log(f"{variant.name} fold {k + 1}/{n_folds} done: accuracy {done['accuracy']:.4f} log loss {done['log_loss']:.4f} "
        f"(linear probe, C={c} by inner CV on the training rows), {done['fit_seconds']:.0f}s")
    return done


GATE_ROWS = 5000  # a quick probe's rows: three quarters fit its classifier, a quarter score it


def quick_probe(variant, spec, x, y, rows, seed=0, max_rows=GATE_ROWS):
    """How well the backbone's frozen features of one view separate the classes, in seconds:
    a stratified sample of at most `max_rows` of `rows` (a caller's choice of training rows, never
    the rows a score it reports is taken on), a logistic regression fitted on three quarters of it
    (C by fit_head's inner CV) and scored on the rest. Returns {rows, accuracy, kappa (Cohen's:
    the accuracy over what the predicted and true class frequencies give by chance), seconds}."""
    from sklearn.metrics import cohen_kappa_score

    from fer_kaggle.models import create_model
    from fer_kaggle.models.pretrained import features_model

    started = time.perf_counter()
    rows = np.asarray(rows)
    labels = y[rows]
    counts = np.bincount(labels, minlength=spec.num_classes)
    keep = np.isin(labels, np.flatnonzero(counts >= 4))  # stratifiable: every class kept has rows on both sides
    rows, labels = rows[keep], labels[keep]
    if len(rows) > max_rows:
        rows, _, labels, _ = _split(rows, labels, train_size=max_rows, random_state=seed)
    fit_rows, score_rows, _, _ = _split(rows, labels, test_size=0.25, random_state=seed)
    # the images as they are (the training cache's size), brought to the variant's side inside the model
    extractor = features_model(create_model(variant.model, x.shape[1:], spec.num_classes, **variant.model_hp))
    both = np.concatenate([fit_rows, score_rows])
    f = extractor.predict(x[both], batch_size=variant.train["batch_size"], verbose=0)
    f_fit, f_score = f[:len(fit_rows)], f[len(fit_rows):]
    scaler, head, _, _ = fit_head(f_fit, y[fit_rows], spec.num_classes, seed)
    predicted = probabilities(scaler, head, f_score, spec.num_classes).argmax(axis=1)
    return {"rows": int(len(rows)), "accuracy": float(np.mean(predicted == y[score_rows])),
            "kappa": float(cohen_kappa_score(y[score_rows], predicted)),
            "seconds": round(time.perf_counter() - started, 1)}


def _split(rows, labels, **how):
    """train_test_split stratified by class where the classes allow it (each has rows on both
    sides), else at random."""
    from sklearn.model_selection import train_test_split

    try:
        return train_test_split(rows, labels, stratify=labels, **how)
    except ValueError:  # a class too small, or more classes than one side has rows
        return train_test_split(rows, labels, **how)
