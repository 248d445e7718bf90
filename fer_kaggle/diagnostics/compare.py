"""A CNN against a DNN of the same parameter count, and ablations between CV runs."""

import json
from pathlib import Path

import numpy as np

from fer_kaggle import layout
from fer_kaggle.diagnostics.curves import read_history


def matched_dnn(oof_dir, cnn_params, tolerance=0.05):
    """A finished DNN variant in oof/ within `tolerance` of the CNN's parameter count, or None."""
    for name in layout.finished(oof_dir, blends=False):
        config = layout.read_config(Path(oof_dir) / name)
        if config["model"].startswith("dnn") and abs(config["params"] - cnn_params) <= tolerance * cnn_params:
            return Path(oof_dir) / name
    return None


def train_matched_dnn(cnn_dir, comp, folds, folds_meta, oof_dir, progress=print):
    """Train a DNN sized to the CNN's parameter count on fold 0, with the CNN's fold-0 epochs and
    training settings, through `cv` like any variant (a holdout variant of fold 0, resumable),
    in `oof_dir`: the report's own folder, so it never joins the competition's blends.
    Returns its variant folder."""
    from fer_kaggle.cv import run_cv
    from fer_kaggle.variant import Variant

    config = layout.read_config(cnn_dir)
    done = layout.read_fold_done(cnn_dir, 0)
    train = {**config["train"], "epochs": done["epochs"], "early_stopping_patience": 0}
    variant = Variant(name="dnn_s-matched", model="dnn_s", model_hp={"target_params": config["params"]}, train=train)
    run_cv(comp, folds, folds_meta, [variant], oof_dir, only_folds=[0], log=lambda m, f=None: progress(m))
    return Path(oof_dir) / variant.name


def fold0_summary(variant_dir):
    done = layout.read_fold_done(variant_dir, 0)
    config = layout.read_config(variant_dir)
    history = read_history(layout.fold_dir(variant_dir, 0) / "history.csv")
    return {"params": config["params"], "accuracy": done["accuracy"], "log_loss": done["log_loss"],
            "seconds_per_epoch": float(np.mean([h["seconds"] for h in history]))}, history


def ablations(oof_dir):
    """Pairs of finished variants whose configs differ in exactly one setting:
    [(setting, value a, variant a, accuracy a, value b, variant b, accuracy b)]."""
    runs = []
    for name in layout.finished(oof_dir, blends=False):
        config = layout.read_config(Path(oof_dir) / name)
        flat = {"model": config["model"], **{f"model.{k}": json.dumps(v) for k, v in config["model_hp"].items()},
                **{k: json.dumps(v) for k, v in config["train"].items()}}
        runs.append((name, flat, layout.read_metrics(Path(oof_dir) / name)))
    rows = []
    for i, (name_a, a, ma) in enumerate(runs):
        for name_b, b, mb in runs[i + 1 :]:
            differ = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
            if len(differ) == 1:
                k = differ[0]
                rows.append((k, a.get(k), name_a, ma["accuracy"], ma["log_loss"], b.get(k), name_b, mb["accuracy"], mb["log_loss"]))
    return rows

