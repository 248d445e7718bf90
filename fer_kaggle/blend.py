"""The blend stage: members from oof/, nested-CV scores, the submission and its manifest.

For every method tried, `oof/blend-<method>/` holds the nested-CV predictions of the
training rows (`oof.npy`: each fold's rows blended by weights fit on the other folds),
the test predictions of the method fit on all OOF rows (`test.npy`) and `metrics.json`,
so blends sit on the leaderboard beside the variants with honest scores.
"""

import fnmatch
import time
from pathlib import Path

import numpy as np

from fer_kaggle import atomic, layout
from fer_kaggle.data.folds import FOLD_KEYS, inner_folds
from fer_kaggle.ensemble import BLENDERS, BestBlend, make_blender
from fer_kaggle.errors import ConfigError
from fer_kaggle.layout import BLEND_PREFIX
from fer_kaggle.metrics import accuracy, get_metric
from fer_kaggle.submission import write_submission


def discover_members(oof_dir, patterns=None):
    """Variants with finished OOF in oof_dir, filtered by names or glob patterns."""
    names = layout.finished(oof_dir, blends=False)
    if patterns:
        chosen = [n for n in names if any(fnmatch.fnmatch(n, pat) for pat in patterns)]
        unmatched = [pat for pat in patterns if not any(fnmatch.fnmatch(n, pat) for n in names)]
        if unmatched:
            raise ConfigError(f"no finished variant in {oof_dir}/ matches {unmatched[0]!r}; finished: {', '.join(names) or 'none'}")
        names = chosen
    if not names:
        raise ConfigError(f"no finished variants in {oof_dir}/ to blend: run `fer-kaggle cv` first")
    return names


def load_members(oof_dir, names, comp, folds_meta):
    """Members' OOF and test probabilities, refusing members of other folds or other data."""
    oofs, tests, configs = [], [], []
    for name in names:
        d = Path(oof_dir) / name
        config = layout.read_config(d)
        theirs = config.get("folds", {})
        ours = {k: folds_meta[k] for k in FOLD_KEYS}
        if theirs != ours:
            what = ("other data" if theirs.get("train_sha256") != comp.train_sha256 else "another competition spec"
                    if theirs.get("spec_sha256") != comp.spec.identity_sha256 else "other folds")
            raise ConfigError(f"member {name} was trained on {what} than oof/folds.csv holds: retrain it "
                              f"(`fer-kaggle cv --variants {name}` after deleting {d}) or leave it out with --members")
        if config.get("test_sha256", comp.test_sha256) != comp.test_sha256:
            raise ConfigError(f"member {name} predicted another test set (its ids, their order or its images changed "
                              f"since): retrain it (delete {d}, then `fer-kaggle cv --variants {name}`) or leave it out "
                              f"with --members")
        oof, test, _ = layout.read_predictions(d)
        if oof.shape[0] != len(comp.y_train) or test.shape[0] != len(comp.test_ids):
            raise ConfigError(f"member {name}: predictions of shape {oof.shape}/{test.shape} do not fit the data in use")
        oofs.append(oof)
        tests.append(test)
        configs.append(config)
    return oofs, tests, configs


def run_blend(comp, folds, folds_meta, oof_dir="oof", submissions_dir="submissions", method="best",
              members=None, name=None, seed=0, log=print, progress=None):
    """Fit the blend on OOF only, write the blends' artifacts, the submission and its manifest.
    `best` chooses the method by the competition's metric in nested CV; the decision the metric
    needs (thresholds, cut-points, a clip) is fitted inside the nested CV for the score, and on
    all OOF rows for the submission. `progress(message, fraction)` hears of each method as
    `best` scores it.

    Returns the manifest."""
    from fer_kaggle.decisions import decision_for

    spec, metric = comp.spec, get_metric(comp.spec.metric)
    names = discover_members(oof_dir, members)
    oofs, tests, configs = load_members(oof_dir, names, comp, folds_meta)
    rows = _common_rows(oofs, names, log)
    oofs, y, blend_folds = [o[rows] for o in oofs], comp.y_train[rows], inner_folds(folds[rows], comp.y_train[rows])
    methods = tuple(BLENDERS) if method == "best" else (method,)
    if method != "best" and method not in BLENDERS:
        raise ConfigError(f"unknown blend method {method!r}; choose one of {', '.join(list(BLENDERS) + ['best'])}")
    best = BestBlend(blend_folds, metric.name, methods=methods, seed=seed).fit(oofs, y, progress=progress)
    chosen = best.method_
    tried = {}
    for m in best.methods:
        blender = best.blender_ if m == chosen else make_blender(m, seed).fit(oofs, y)
        tried[m] = blender
        metrics = _blend_metrics(m, names, configs, blender, best, metric.name)
        blend_dir = Path(oof_dir) / f"{BLEND_PREFIX}{m}"
        layout.commit_predictions(blend_dir, _all_rows(best.nested_[m], rows, len(comp.y_train)),
                                  blender.predict_proba(tests), metrics)
        shown = "" if metric.name in ("accuracy", "log_loss") else f"{metric.name} {metrics['score']:.4f} "
        log(f"blend {m}: {'nested-CV' if len(rows) == len(comp.y_train) else 'holdout'} {shown}accuracy {metrics['accuracy']:.4f} log loss {metrics['log_loss']:.4f}"
            + (" <- chosen" if m == chosen and len(best.methods) > 1 else ""))

    blender, decision = tried[chosen], best.decision_
    test_probs = blender.predict_proba(tests)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    label = name or (f"best-{chosen}" if method == "best" else chosen)
    csv_path, manifest_path = layout.submission_paths(submissions_dir, stamp, label)
    expected = comp.sample_ids if comp.sample_ids is not None else comp.test_ids
    csv_sha = write_submission(csv_path, spec, comp.test_ids, test_probs, expected, decision)
    predicted = decision_for("accuracy").apply(test_probs)
    scores = best.scores_[chosen]
    manifest = {
        "name": label,
        "csv": csv_path.name,
        "csv_sha256": csv_sha,
        "method": chosen,
        "members": names,
        "weights": _weights(blender, names),
        "decision": decision.describe(),
        "cv": {"metric": metric.name, "score": scores["score"], "accuracy": scores["accuracy"],
               "log_loss": scores["log_loss"], "kind": "nested" if len(rows) == len(comp.y_train) else "holdout",
               "rows": int(len(rows)), "chosen_from": len(best.methods),
               "selection_nested_score": best.selection_nested_score_},
        "methods_tried": best.scores_,
        "data": {"source": comp.source, "train_sha256": comp.train_sha256, "test_sha256": comp.test_sha256,
                 "n_test": int(len(comp.test_ids)),
                 "spec_sha256": spec.identity_sha256, "competition": spec.competition},
        "folds": {k: folds_meta[k] for k in FOLD_KEYS},
        "predicted_class_counts": np.bincount(predicted, minlength=spec.num_classes).tolist(),
        "created": stamp,
        "kaggle": None,
    }
    finals = {n: kept["final_model"] for n in names
              if "final_model" in (kept := atomic.read_json(Path(oof_dir) / n / layout.METRICS))}
    if finals:  # members whose test predictions come from a final model over every row: scored as their holdout
        manifest["final_models"] = finals
        log(f"blend: the test predictions of {', '.join(finals)} come from a final model over every row; the score "
            f"above is the holdout models'")
    if comp.test_labels is not None:  # the demo can score itself
        manifest["demo_test_accuracy"] = accuracy(test_probs, comp.test_labels)
        manifest["demo_test_score"] = metric.score(decision.apply(test_probs), comp.test_labels)
    atomic.write_json(manifest_path, manifest)  # last: the manifest commits the CSV (fer_kaggle.layout)
    return manifest


def _common_rows(oofs, names, log):
    """The rows every member predicts: all, or a holdout's (members trained on some folds)."""
    predicted = [~np.isnan(o[:, 0]) for o in oofs]  # a holdout variant's OOF is NaN outside its folds
    rows = np.flatnonzero(np.all(predicted, axis=0))
    if len(rows) == 0:
        raise ConfigError(f"the members {', '.join(names)} were held out on different folds: no row is predicted by "
                          "all of them; blend members of the same folds (--members)")
    if len(rows) < len(oofs[0]):
        fewest = int(np.argmin([p.sum() for p in predicted]))
        log(f"blend: on the {len(rows)} held-out rows every member predicts ({names[fewest]} was trained on a "
            f"holdout), of {len(oofs[0])}: its weights, decision and scores are nested within them")
    return rows


def _all_rows(probs, rows, n):
    out = np.full((n, probs.shape[1]), np.nan, dtype=np.float32)
    out[rows] = probs
    return out


def _weights(blender, names):
    if hasattr(blender, "weights_"):
        return {n: round(float(w), 6) for n, w in zip(names, blender.weights_) if w > 0}
    if hasattr(blender, "C_"):
        return {"logistic_regression_C": blender.C_}
    return {n: round(1.0 / len(names), 6) for n in names}


def _blend_metrics(method, names, configs, blender, best, metric):
    return {
        "variant": f"{BLEND_PREFIX}{method}",
        "kind": "blend",
        "method": method,
        "members": names,
        "weights": _weights(blender, names),
        "metric": metric,
        **best.scores_[method],
        "params": sum(c.get("params", 0) for c in configs),
        "flops": sum(c.get("flops", 0) for c in configs),
        "fit_seconds": "",
        "predict_seconds": "",
        "fold_accuracy_std": "",
    }
