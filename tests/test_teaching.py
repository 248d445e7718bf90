"""Pseudo-labeling, distillation and prediction: fold k learns only from fold-k models, pseudo-labels
never enter a validation part, the threshold meets its precision, killed rounds resume, and
`predict` reads every input form."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_variant
from fer_kaggle import atomic, cv, layout
from fer_kaggle.variant import split_rows
from fer_kaggle.data.folds import FOLD_KEYS
from fer_kaggle.errors import IntegrityError
from fer_kaggle.fold_inputs import FoldInputs, one_hot, read_inputs, write_inputs
from fer_kaggle.teaching import distill, pseudo
from fer_kaggle.teaching.teacher import Teacher, resolve_teacher

ROOT = Path(__file__).resolve().parents[1]


def fake_member(oof_dir, name, comp, folds, meta, seed):
    """A finished variant without training: per-fold test predictions that differ by fold."""
    rng = np.random.default_rng(seed)
    d = Path(oof_dir) / name
    n_classes = len(comp.class_names)

    def probs(n, sharp):
        logits = rng.normal(size=(n, n_classes)) * sharp
        p = np.exp(logits)
        return (p / p.sum(1, keepdims=True)).astype(np.float32)

    oof = probs(len(comp.y_train), 3.0)
    hits = rng.random(len(oof)) < 0.6  # make most confident rows right
    oof[hits] = one_hot(comp.y_train[hits], n_classes) * 0.5 + oof[hits] * 0.5
    fold_tests = [probs(len(comp.test_ids), 3.0) for _ in range(int(folds.max()) + 1)]
    for k, t in enumerate(fold_tests):
        atomic.write_npy(d / f"fold{k}" / "test.npy", t)
    atomic.write_json(d / "config.json", {"variant": name, "model": "cnn_tiny", "model_hp": {"filters": [4, 8]},
                                          "train": tiny_variant().train,
                                          "folds": {k: meta[k] for k in FOLD_KEYS}})
    layout.commit_predictions(d, oof, np.mean(fold_tests, axis=0), {"variant": name, "accuracy": 0.0, "log_loss": 1.0})
    return oof, fold_tests


def test_threshold_is_the_lowest_that_meets_the_precision():
    rng = np.random.default_rng(0)
    n = 2000
    confidence = rng.uniform(0.5, 1.0, n)
    labels = rng.integers(0, 7, n)
    right = rng.random(n) < confidence  # the more confident, the more often right
    predicted = np.where(right, labels, (labels + 1) % 7)
    probs = np.full((n, 7), 0.0)
    probs[np.arange(n), predicted] = confidence
    probs[np.arange(n), (predicted + 3) % 7] = 1 - confidence
    assert np.array_equal(probs.argmax(1), predicted)
    for precision in (0.8, 0.9):
        t = pseudo.choose_threshold(probs, labels, precision)
        above = probs.max(1) >= t
        assert np.mean(predicted[above] == labels[above]) >= precision
        lower = np.sort(probs.max(1)[~above])[-5:]  # any lower threshold admits rows that break the precision
        for t2 in lower:
            admitted = probs.max(1) >= t2
            assert np.mean(predicted[admitted] == labels[admitted]) < precision
    assert pseudo.choose_threshold(probs, labels, precision=1.01) is None


def test_pseudo_labels_come_from_fold_k_models_and_never_enter_a_validation_part(tiny_comp):
    comp, folds, meta, tmp = tiny_comp
    oof_dir = tmp / "oof"
    oof, fold_tests = fake_member(oof_dir, "m", comp, folds, meta, 1)
    teacher = Teacher(oof_dir, ["m"], "mean", comp, folds, meta)
    one_round = pseudo.PseudoRound(comp, folds, teacher, precision=0.6, hard=False, weight=0.5)
    admissions = one_round.write_inputs(oof_dir / "m+pl", log=lambda m: None)
    for k in range(3):
        inputs = read_inputs(oof_dir / "m+pl" / f"fold{k}")
        assert not np.intersect1d(inputs.train_rows, np.flatnonzero(folds == k)).size
        assert np.array_equal(np.sort(inputs.train_rows), np.flatnonzero(folds != k))
        # soft pseudo-labels: exactly fold k's own test predictions, at or above fold k's threshold
        t = one_round.thresholds[k]
        expected = np.flatnonzero(fold_tests[k].max(1) >= t)
        assert np.array_equal(inputs.test_rows, expected) and len(expected) == admissions[k]["admitted_test"]
        assert np.allclose(inputs.test_targets, fold_tests[k][expected])
        assert np.allclose(inputs.weights[len(inputs.train_rows):], 0.5)
        # the threshold: the lowest confidence of the OOF rows outside fold k above which at least
        # 60% of at least 20 predictions are right (found here by brute force)
        confidence, right = oof[folds != k].max(1), oof[folds != k].argmax(1) == comp.y_train[folds != k]
        meets = [c for c in np.unique(confidence)
                 if (confidence >= c).sum() >= 20 and right[confidence >= c].mean() >= 0.6]
        assert t == min(meets)
    leaky = FoldInputs(np.flatnonzero(folds == 0)[:3], one_hot(np.zeros(3, int), 7), np.zeros(0, int),
                       np.zeros((0, 7)), np.ones(3))
    with pytest.raises(IntegrityError, match="held-out rows are in its training inputs"):
        write_inputs(tmp / "x", leaky, folds, 0)


def test_a_blend_teacher_combines_fold_k_predictions_with_the_blender_of_the_other_folds(tiny_comp):
    from fer_kaggle.ensemble import make_blender, nested_cv

    comp, folds, meta, tmp = tiny_comp
    members = [fake_member(tmp / "oof", n, comp, folds, meta, s) for n, s in (("a", 1), ("b", 2))]
    teacher = Teacher(tmp / "oof", ["a", "b"], "weighted", comp, folds, meta)
    oofs = [m[0] for m in members]
    assert np.allclose(teacher.oof(), nested_cv("weighted", oofs, comp.y_train, folds), atol=1e-6)
    outside = folds != 1
    blender = make_blender("weighted").fit([o[outside] for o in oofs], comp.y_train[outside])
    assert np.allclose(teacher.fold_test(1), blender.predict_proba([members[0][1][1], members[1][1][1]]))
    changed = comp.y_train.copy()  # fold 1's labels changed: its teacher, fit outside fold 1, does not move
    changed[folds == 1] = (changed[folds == 1] + 3) % 7
    comp_changed = type(comp)(**{**comp.__dict__, "y_train": changed})
    other = Teacher(tmp / "oof", ["a", "b"], "weighted", comp_changed, folds, meta)
    assert np.array_equal(other.fold_test(1), teacher.fold_test(1))
    assert not np.allclose(other.fold_test(0), teacher.fold_test(0))
    layout.commit_predictions(tmp / "oof" / "blend-weighted", np.zeros((1, 7)), np.zeros((1, 7)),
                              {"members": ["a", "b"], "method": "weighted"})
    assert resolve_teacher("weighted", tmp / "oof") == (["a", "b"], "weighted")
    assert resolve_teacher("a,b", tmp / "oof") == (["a", "b"], "mean")


def test_label_fraction_keeps_a_stratified_share_of_each_training_part(tiny_comp):
    comp, folds, _, _ = tiny_comp
    train_rows, _ = split_rows(folds, 1)
    kept = pseudo.labeled_subset(train_rows, comp.y_train, 0.25, seed=0, k=1)
    assert set(kept) <= set(train_rows)
    for c in range(7):
        n_c = np.sum(comp.y_train[train_rows] == c)
        assert np.sum(comp.y_train[kept] == c) == max(1, round(0.25 * n_c))


def test_a_killed_pseudo_round_resumes_and_the_experiment_compares_fractions(tiny_comp):
    comp, folds, meta, tmp = tiny_comp
    oof_dir = tmp / "oof"

    def train(variants):
        return cv.run_cv(comp, folds, meta, variants, oof_dir, threads=1, log=lambda m, f=None: None)

    base = tiny_variant("cnn_tiny", epochs=1)
    summaries = pseudo.run_label_fraction(comp, folds, meta, oof_dir, [base], [0.5], precision=0.3, train_cv=train,
                                          log=lambda m: None)
    (s,) = summaries
    assert s["variant"] == "cnn_tiny-lf50+pl" and s["before"] == "cnn_tiny-lf50" and s["label_fraction"] == 0.5
    for k in range(3):
        inputs = read_inputs(oof_dir / "cnn_tiny-lf50" / f"fold{k}")
        assert len(inputs.train_rows) < np.sum(folds != k) * 0.6 and not len(inputs.test_rows)
        pl = read_inputs(oof_dir / "cnn_tiny-lf50+pl" / f"fold{k}")
        assert not np.intersect1d(pl.train_rows, np.flatnonzero(folds == k)).size
        assert set(inputs.train_rows) <= set(pl.train_rows)  # the labeled rows, plus admitted hidden rows
    # a round killed after its first fold: the rerun keeps that fold and the inputs, trains the rest
    killed = oof_dir / "cnn_tiny-lf50+pl"
    kept = (killed / "fold0" / "done.json").stat().st_mtime_ns, (killed / "fold0" / "inputs.npz").read_bytes()
    for k in (1, 2):
        for leftover in (killed / f"fold{k}").iterdir():
            if leftover.name != "inputs.npz":
                leftover.unlink()
    (killed / "oof.npy").unlink()
    again = pseudo.run_label_fraction(comp, folds, meta, oof_dir, [base], [0.5], precision=0.3, train_cv=train,
                                      log=lambda m: None)
    assert (killed / "fold0" / "done.json").stat().st_mtime_ns == kept[0]
    assert (killed / "fold0" / "inputs.npz").read_bytes() == kept[1]
    assert again[0]["accuracy"] == pytest.approx(s["accuracy"])  # deterministic: the same OOF as unkilled
    # the report's section: the table and the label-fraction plot
    from fer_kaggle.diagnostics.report import Report

    Report(comp, folds, oof_dir, tmp / "reports", progress=lambda m: None).make(["taught"])
    page = (tmp / "reports" / "index.html").read_text()
    assert "label_fractions.png" in page and "cnn_tiny-lf50+pl" in page and f"{s['accuracy']:.4f}" in page


def test_distilled_student_learns_fold_k_targets_and_ships_one_model(tiny_comp):
    comp, folds, meta, tmp = tiny_comp
    oof_dir = tmp / "oof"

    def train(variants):
        return cv.run_cv(comp, folds, meta, variants, oof_dir, threads=1, log=lambda m, f=None: None)

    train([tiny_variant("t", epochs=2)])
    student = tiny_variant("s", epochs=1)
    summary = distill.run_distill(comp, folds, meta, oof_dir, ["t"], "mean", student, alpha=0.3, temperature=2.0,
                                  speed_images=40, train_cv=train, log=lambda m: None)
    teacher = Teacher(oof_dir, ["t"], "mean", comp, folds, meta)
    for k in range(3):
        inputs = read_inputs(oof_dir / "s+kd" / f"fold{k}")
        rows = np.flatnonzero(folds != k)
        assert np.array_equal(inputs.train_rows, rows)
        from_fold_k = distill.mixed_targets(comp.y_train[rows], teacher.fold_predict(k, comp.x_train[rows]), 0.3, 2.0)
        assert np.allclose(inputs.train_targets, from_fold_k, atol=1e-5)
        from_oof = distill.mixed_targets(comp.y_train[rows], teacher.oof()[rows], 0.3, 2.0)
        assert not np.allclose(inputs.train_targets, from_oof, atol=1e-3)  # never the OOF of other folds' models
        assert np.allclose(inputs.test_targets, distill.soften(np.load(oof_dir / "t" / f"fold{k}" / "test.npy"), 2.0))
    assert (oof_dir / "s+kd" / "metrics.json").exists() and summary["variant"] == "s+kd"
    final = Path(summary["final_model"])
    assert final.exists() and sorted(p.name for p in final.parent.iterdir()) == ["model.keras"]
    speed = summary["images_per_second"]
    assert speed["teacher_models"] == 3 and speed["images"] == 40 and speed["student"] > 0
    assert summary["teacher_accuracy"] == pytest.approx(float(np.mean(teacher.oof().argmax(1) == comp.y_train)))


def fer(*args, cwd):
    return subprocess.run([sys.executable, "-m", "fer_kaggle.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "KERAS_BACKEND": "tensorflow", "PYTHONPATH": str(ROOT)})


def test_predict_reads_a_folder_of_pngs_a_single_image_and_a_competition_csv(tiny_comp):
    from PIL import Image

    comp, folds, meta, tmp = tiny_comp
    cv.run_cv(comp, folds, meta, [tiny_variant("v", epochs=1)], tmp / "oof", threads=1, log=lambda m, f=None: None)
    faces = tmp / "faces"
    faces.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (96, 80, 3), dtype=np.uint8)).save(faces / "big_color.png")
    Image.fromarray(comp.x_test[0][..., 0]).save(faces / "gray.jpg", quality=100)
    model = tmp / "oof" / "v" / "fold0" / "model.keras"

    r = fer("predict", "--model", str(model), str(faces), "--out", str(tmp / "faces.csv"), cwd=tmp)
    assert r.returncode == 0, r.stderr
    lines = (tmp / "faces.csv").read_text().splitlines()
    assert lines[0].startswith("file,label,angry") and [ln.split(",")[0] for ln in lines[1:]] == ["big_color.png", "gray.jpg"]
    assert all(abs(sum(map(float, ln.split(",")[2:])) - 1) < 1e-3 for ln in lines[1:])

    r = fer("predict", "--model", str(model), str(faces / "gray.jpg"), cwd=tmp)
    assert r.returncode == 0 and r.stdout.splitlines()[1].startswith("gray.jpg,")

    r = fer("predict", "--model", "v", str(tmp / "demo" / "test.csv"), "--out", str(tmp / "v.csv"), cwd=tmp)
    assert r.returncode == 0, r.stderr
    rows = (tmp / "v.csv").read_text().splitlines()
    assert rows[0] == "id,label" and len(rows) == 41
    assert [int(r.split(",")[1]) for r in rows[1:]] == np.load(tmp / "oof" / "v" / "test.npy").argmax(1).tolist()

    (faces / "broken.png").write_bytes(b"not an image")
    r = fer("predict", "--model", str(model), str(faces), cwd=tmp)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "broken.png: not a readable image" in r.stderr
    (tmp / "bad.csv").write_text("name,pixels\n1,2\n")
    r = fer("predict", "--model", str(model), str(tmp / "bad.csv"), cwd=tmp)
    assert r.returncode == 2 and "bad.csv, line 1: header is 'name,pixels'" in r.stderr
