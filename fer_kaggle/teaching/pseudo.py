"""Pseudo-labeling: retrain variants with the teacher's confident predictions of unlabeled
images added to every fold's training part (never to a validation part).

For fold k the unlabeled images are labeled by the fold-k teacher only, and admitted when its
confidence reaches a threshold chosen on the teacher's OOF rows outside fold k: the lowest
confidence above which those OOF predictions are right at the requested precision.

The label-fraction experiment hides the labels of all but a stratified fraction of every
fold's training part; the hidden rows join the test images in the unlabeled pool, the
validation rows keep their labels, so supervised-only and pseudo-labeled OOF accuracy are
compared on the same folds.
"""

from dataclasses import replace
from pathlib import Path

import numpy as np

from fer_kaggle import atomic, layout, metrics
from fer_kaggle.variant import Variant, split_rows
from fer_kaggle.errors import ConfigError
from fer_kaggle.fold_inputs import FoldInputs, INPUTS, one_hot, write_inputs
from fer_kaggle.teaching.teacher import Teacher

SUMMARY = "pseudo.json"


def choose_threshold(probs, labels, precision=0.9, min_rows=20):
    """The lowest confidence t such that the predictions of confidence >= t are right at least
    `precision` of the time (over at least `min_rows` rows); None when no t reaches it."""
    confidence = probs.max(axis=1)
    order = np.argsort(-confidence, kind="stable")
    right = (probs.argmax(axis=1) == labels)[order]
    running = np.cumsum(right) / np.arange(1, len(right) + 1)
    ok = np.flatnonzero(running >= precision)
    ok = ok[ok >= min_rows - 1]
    if not len(ok):
        return None
    return float(confidence[order][ok[-1]])


def labeled_subset(train_rows, labels, fraction, seed, k):
    """A stratified `fraction` of fold k's training rows that keep their labels (the rest are hidden)."""
    keep = []
    rng = np.random.default_rng([seed, k, 7919])
    for c in np.unique(labels[train_rows]):
        rows = train_rows[labels[train_rows] == c]
        keep.append(rng.permutation(rows)[: max(1, int(round(fraction * len(rows))))])
    return np.sort(np.concatenate(keep))


def fold_pool(teacher, k, x_train, hidden_rows):
    """The fold-k teacher's probabilities of fold k's unlabeled pool: hidden training rows, then test images."""
    hidden = teacher.fold_predict(k, x_train[hidden_rows]) if len(hidden_rows) else np.zeros((0, teacher.oofs[0].shape[1]), np.float32)
    return hidden, teacher.fold_test(k)


def pseudo_inputs(labeled_rows, labels, hidden_rows, hidden_probs, test_probs, threshold, hard, weight):
    """Fold inputs: the labeled rows with their labels, plus the pool's images the teacher is
    confident of (confidence >= threshold), with its hard or soft labels, weighted."""
    n_classes = test_probs.shape[1]
    cut = np.inf if threshold is None else threshold

    def admitted(probs):
        keep = np.flatnonzero(probs.max(axis=1) >= cut) if len(probs) else np.zeros(0, np.int64)
        targets = one_hot(probs[keep].argmax(axis=1), n_classes) if hard else probs[keep]
        return keep, targets

    hidden_keep, hidden_targets = admitted(hidden_probs)
    test_keep, test_targets = admitted(test_probs)
    train_rows = np.concatenate([labeled_rows, hidden_rows[hidden_keep]])
    targets = np.concatenate([one_hot(labels[labeled_rows], n_classes), hidden_targets])
    weights = np.concatenate([np.ones(len(labeled_rows)), np.full(len(hidden_keep) + len(test_keep), weight)])
    return FoldInputs(train_rows, targets, test_keep, test_targets, weights)


class PseudoRound:
    """One round: for each student, a new variant whose folds train on the pseudo-labeled inputs."""

    def __init__(self, comp, folds, teacher, precision=0.9, hard=True, weight=1.0, label_fraction=None, seed=0):
        self.comp, self.folds, self.teacher = comp, np.asarray(folds), teacher
        self.precision, self.hard, self.weight = precision, hard, weight
        self.label_fraction, self.seed = label_fraction, seed
        teacher_oof = teacher.oof()
        self.thresholds = {int(k): choose_threshold(teacher_oof[self.folds != k], comp.y_train[self.folds != k],
                                                    precision) for k in np.unique(self.folds)}
        self.teacher_oof = teacher_oof

    def teaching(self, round_number):
        return {"stage": "pseudo", "round": round_number, "teacher": self.teacher.spec, "precision": self.precision,
                "labels": "hard" if self.hard else "soft", "weight": self.weight,
                "label_fraction": self.label_fraction, "seed": self.seed}

    def labeled_rows(self, k):
        train_rows, _ = split_rows(self.folds, k)
        if self.label_fraction is None:
            return train_rows, np.zeros(0, np.int64)
        kept = labeled_subset(train_rows, self.comp.y_train, self.label_fraction, self.seed, k)
        return kept, np.setdiff1d(train_rows, kept)

    def write_inputs(self, variant_dir, log=print):
        """Each unfinished fold's inputs.npz (kept when already written); returns per-fold admissions."""
        admissions = {}
        n_classes = len(self.comp.class_names)
        for k in sorted(self.thresholds):
            fold_dir = layout.fold_dir(variant_dir, k)
            labeled, hidden = self.labeled_rows(k)
            if not (fold_dir / INPUTS).exists():
                hidden_probs, test_probs = fold_pool(self.teacher, k, self.comp.x_train, hidden)
                inputs = pseudo_inputs(labeled, self.comp.y_train, hidden, hidden_probs, test_probs,
                                       self.thresholds[k], self.hard, self.weight)
                write_inputs(fold_dir, inputs, self.folds, k)
            with np.load(fold_dir / INPUTS) as f:
                n_labeled = len(labeled)
                pseudo_targets = np.concatenate([f["train_targets"][n_labeled:], f["test_targets"]])
                admissions[k] = {
                    "threshold": self.thresholds[k], "labeled": n_labeled, "hidden_pool": len(hidden),
                    "admitted_hidden": int(len(f["train_rows"]) - n_labeled), "admitted_test": int(len(f["test_rows"])),
                    "admitted_per_class": np.bincount(pseudo_targets.argmax(axis=1), minlength=n_classes).tolist()}
            a = admissions[k]
            log(f"pseudo: fold {k + 1}: threshold {_fmt(a['threshold'])} admits {a['admitted_test']} test images"
                + (f" and {a['admitted_hidden']} of {a['hidden_pool']} hidden rows" if len(hidden) else "")
                + f" (per class {a['admitted_per_class']})")
        return admissions


def _fmt(threshold):
    return "none (precision never reached)" if threshold is None else f"{threshold:.3f}"


def finished_variant(oof_dir, name):
    """The Variant a finished variant was trained as (its model and training config)."""
    config = layout.read_config(Path(oof_dir) / name)
    if config is None:
        raise ConfigError(f"no finished variant {name!r} in {oof_dir}/ to retrain: train it with `fer-kaggle cv` first")
    return Variant(name=name, model=config["model"], model_hp=dict(config["model_hp"]), train=dict(config["train"]))


def taught(variant, name, teaching):
    """`variant`'s model and training, under a new name, taught as `teaching` says."""
    return replace(variant, name=name, model_hp=dict(variant.model_hp), train=dict(variant.train), teaching=teaching)


def round_name(base, round_number):
    return f"{base}+pl" if round_number == 1 else f"{base}+pl{round_number}"


def base_name(name):
    """The variant a taught variant was made from (`vgg+pl2` -> `vgg`)."""
    return name.split("+pl")[0]


def run_pseudo(comp, folds, folds_meta, oof_dir, members, method, students=None, rounds=1, precision=0.9,
               hard=True, weight=1.0, train_cv=None, log=print, seed=0):
    """`rounds` of pseudo-labeling from the teacher (members, method). `students` (Variants)
    default to the teacher's members as they were trained. `train_cv(variants)` trains the new
    variants (cv with the run's time limit). Returns the summaries of the last round's variants."""
    students = students or [finished_variant(oof_dir, base_name(m)) for m in members]
    summaries = []
    for r in range(1, rounds + 1):
        teacher = Teacher(oof_dir, members, method, comp, folds, folds_meta, seed)
        log(f"pseudo: round {r}/{rounds}: teacher {teacher} (OOF accuracy "
            f"{metrics.accuracy(teacher.oof(), comp.y_train):.4f}), precision {precision}")
        one_round = PseudoRound(comp, folds, teacher, precision, hard, weight, seed=seed)
        variants = [taught(s, round_name(s.name, r), one_round.teaching(r)) for s in students]
        admissions = {v.name: one_round.write_inputs(Path(oof_dir) / v.name, log) for v in variants}
        train_cv(variants)
        before = [s.name if r == 1 else round_name(s.name, r - 1) for s in students]
        summaries = [write_summary(oof_dir, v.name, one_round, admissions[v.name], b) for v, b in zip(variants, before)]
        members = [v.name for v in variants]
    return summaries


def run_label_fraction(comp, folds, folds_meta, oof_dir, students, fractions, precision=0.9, hard=True, weight=1.0,
                       train_cv=None, log=print, seed=0):
    """The semi-supervised experiment: for each fraction, each student (a Variant) trained on that
    fraction of the labels alone (`<student>-lf<percent>`), then with the pool pseudo-labeled by
    it (`<student>-lf<percent>+pl`). Returns the summaries."""
    summaries = []
    n_classes = len(comp.class_names)
    for fraction in fractions:
        if not 0 < fraction < 1:
            raise ConfigError(f"--label-fraction {fraction}: the fraction of labels kept, between 0 and 1")
        supervised = [taught(s, f"{s.name}-lf{fraction * 100:g}",
                             {"stage": "pseudo", "label_fraction": fraction, "seed": seed}) for s in students]
        for variant in supervised:
            for k in np.unique(folds):
                fold_dir = layout.fold_dir(Path(oof_dir) / variant.name, k)
                if not (fold_dir / INPUTS).exists():
                    labeled = labeled_subset(split_rows(folds, k)[0], comp.y_train, fraction, seed, int(k))
                    write_inputs(fold_dir, FoldInputs(labeled, one_hot(comp.y_train[labeled], n_classes),
                                                      np.zeros(0, np.int64), np.zeros((0, n_classes)),
                                                      np.ones(len(labeled))), folds, k)
        log(f"pseudo: label fraction {fraction:g}: {', '.join(v.name for v in supervised)} on {fraction:.0%} of "
            f"each fold's training labels")
        train_cv(supervised)
        for sup in supervised:
            teacher = Teacher(oof_dir, [sup.name], "mean", comp, folds, folds_meta, seed)
            one_round = PseudoRound(comp, folds, teacher, precision, hard, weight, label_fraction=fraction, seed=seed)
            variant = taught(sup, round_name(sup.name, 1), one_round.teaching(1))
            admissions = one_round.write_inputs(Path(oof_dir) / variant.name, log)
            log(f"pseudo: label fraction {fraction:g}: {variant.name}, the pool pseudo-labeled by {sup.name}")
            train_cv([variant])
            summaries.append(write_summary(oof_dir, variant.name, one_round, admissions, sup.name))
    return summaries


def write_summary(oof_dir, name, one_round, admissions, before):
    """`oof/<variant>/pseudo.json`: the teacher, thresholds and admissions, OOF accuracy before and after."""
    y = one_round.comp.y_train
    after = layout.read_predictions(Path(oof_dir) / name)[2]
    base = layout.read_predictions(Path(oof_dir) / before)[2]
    summary = {
        "variant": name, "before": before, "teacher": one_round.teacher.spec,
        "teacher_accuracy": metrics.accuracy(one_round.teacher_oof, y),
        "precision": one_round.precision, "labels": "hard" if one_round.hard else "soft", "weight": one_round.weight,
        "label_fraction": one_round.label_fraction, "folds": admissions,
        "accuracy_before": base["accuracy"], "log_loss_before": base["log_loss"],
        "accuracy": after["accuracy"], "log_loss": after["log_loss"],
    }
    atomic.write_json(Path(oof_dir) / name / SUMMARY, summary)
    return summary
