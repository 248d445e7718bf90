"""Distillation: a student variant trained on a teacher's soft targets mixed with the true
labels, K-fold like any variant, then one final student on every training row: the model a
user ships.

Fold k's student learns from the fold-k teacher only: its probabilities of fold k's training
rows and of the test images. (The teacher's OOF probability of a training row was made by a
model that trained on fold k's rows, so a student that learned it would carry fold k's labels
into its own predictions of fold k: its OOF would not be honest.) The final student, which has
no OOF to protect, learns the teacher's OOF and test probabilities.
"""

import time
from pathlib import Path

import numpy as np

from fer_kaggle import atomic, layout, metrics
from fer_kaggle.fold_inputs import INPUTS, FoldInputs, one_hot, write_inputs
from fer_kaggle.refit import fit_for_epochs, look_rows
from fer_kaggle.variant import split_rows

SUMMARY = "distill.json"


def soften(probs, temperature):
    """Probabilities at a temperature: p^(1/T), renormalized (T > 1 flattens, T < 1 sharpens)."""
    logp = np.log(np.clip(probs, 1e-7, 1.0)) / temperature
    logp -= logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def mixed_targets(labels, teacher_probs, alpha, temperature):
    """alpha x the true labels + (1 - alpha) x the teacher's softened probabilities."""
    return (alpha * one_hot(labels, teacher_probs.shape[1])
            + (1 - alpha) * soften(teacher_probs, temperature)).astype(np.float32)


def student_inputs(train_rows, labels, train_probs, test_probs, alpha, temperature, test_images=True):
    test_rows = np.arange(len(test_probs)) if test_images else np.zeros(0, np.int64)
    return FoldInputs(train_rows, mixed_targets(labels[train_rows], train_probs, alpha, temperature),
                      test_rows, soften(test_probs[test_rows], temperature), np.ones(len(train_rows) + len(test_rows)))


def write_fold_inputs(teacher, comp, folds, variant_dir, alpha, temperature, test_images=True, log=print):
    """Each unfinished fold's inputs.npz from the fold-k teacher (kept when already written)."""
    folds = np.asarray(folds)
    for k in np.unique(folds):
        fold_dir = layout.fold_dir(variant_dir, k)
        if (fold_dir / INPUTS).exists() or (fold_dir / layout.FOLD_DONE).exists():
            continue
        started = time.perf_counter()
        train_rows, _ = split_rows(folds, k)
        train_probs = teacher.fold_predict(int(k), comp.x_train[train_rows])
        inputs = student_inputs(train_rows, comp.y_train, train_probs, teacher.fold_test(int(k)), alpha, temperature,
                                test_images)
        write_inputs(fold_dir, inputs, folds, int(k))
        log(f"distill: fold {k + 1}: the fold-{k + 1} teacher's targets for {len(train_rows)} training rows"
            + (f" and {len(inputs.test_rows)} test images" if test_images else "")
            + f" ({time.perf_counter() - started:.0f}s)")


def train_final(variant, teacher, comp, oof_dir, alpha, temperature, epochs, test_images=True, log=print):
    """One student on every training row (and the test images): `oof/<variant>/final/model.keras`.
    Resumable; trains `epochs` epochs (what its folds trained), no validation rows left to it."""
    from fer_kaggle import training
    from fer_kaggle.shipped import save_model

    final_dir = layout.fold_dir(Path(oof_dir) / variant.name, layout.FINAL)
    path = final_dir / "model.keras"
    if path.exists():
        return path
    rows = np.arange(len(comp.y_train))
    inputs = student_inputs(rows, comp.y_train, teacher.oof(), teacher.test(), alpha, temperature, test_images)
    x, y, w = inputs.arrays(comp.x_train, comp.x_test)
    look = look_rows(len(rows))

    def on_epoch(state):
        h = state.history[-1]
        log(f"distill: final student epoch {h['epoch']}/{state.planned_epochs}: loss {h['loss']:.4f} "
            f"({h['seconds']:.0f}s)")

    model, state = fit_for_epochs(variant, x, y, comp.x_train[look], comp.y_train[look], comp.spec, final_dir, epochs,
                                  sample_weight=w, on_epoch=on_epoch)
    save_model(model, path, comp.spec)
    training.discard_resume_state(state, final_dir)
    return path


def images_per_second(predict, images, repeats=1):
    started = time.perf_counter()
    for _ in range(repeats):
        predict(images)
    return repeats * len(images) / (time.perf_counter() - started)


def measure_speed(teacher, final_path, images):
    """Prediction images/s of the teacher (every fold model of every member, with their TTA)
    and of the final student (one model, no TTA), on the same images in one run."""
    from fer_kaggle.teaching.teacher import load_fold_model
    from fer_kaggle.training import predict

    student = load_fold_model(Path(final_path).parent)
    predict(student, images[:64], tta="none")  # warm-up (tracing) for both
    teacher.predict(images[:64])
    student_rate = images_per_second(lambda x: predict(student, x, tta="none"), images)
    teacher_rate = images_per_second(teacher.predict, images)
    return {"teacher": teacher_rate, "student": student_rate, "speedup": student_rate / teacher_rate,
            "images": len(images), "teacher_models": teacher.n_models()}


def write_summary(oof_dir, name, teacher, comp, labels_only, speed, alpha, temperature, final_path):
    """`oof/<student>/distill.json`: teacher, student and labels-only student side by side."""
    y = comp.y_train
    student = _finished_metrics(oof_dir, name)
    teacher_oof = teacher.oof()
    other = layout.read_metrics(Path(oof_dir) / labels_only)
    summary = {
        "variant": name, "teacher": teacher.spec, "alpha": alpha, "temperature": temperature,
        "teacher_accuracy": metrics.accuracy(teacher_oof, y), "teacher_log_loss": metrics.log_loss(teacher_oof, y),
        "accuracy": student["accuracy"], "log_loss": student["log_loss"],
        "labels_only": labels_only if other else None,
        "labels_only_accuracy": other["accuracy"] if other else None,
        "labels_only_log_loss": other["log_loss"] if other else None,
        "images_per_second": speed, "final_model": str(final_path),
    }
    atomic.write_json(Path(oof_dir) / name / SUMMARY, summary)
    return summary


def run_distill(comp, folds, folds_meta, oof_dir, members, method, student, alpha=0.5, temperature=2.0,
                test_images=True, speed_images=2000, train_cv=None, log=print, seed=0):
    """Distill the teacher (members, method) into `student` (a Variant): `<student>+kd`, K-fold
    (trained by `train_cv(variants)`), then the final student and the speed comparison.
    Returns the summary (also `oof/<student>+kd/distill.json`)."""
    from fer_kaggle.teaching.pseudo import taught
    from fer_kaggle.teaching.teacher import Teacher

    teacher = Teacher(oof_dir, members, method, comp, folds, folds_meta, seed)
    teaching = {"stage": "distill", "teacher": teacher.spec, "alpha": alpha, "temperature": temperature,
                "test_images": test_images}
    variant = taught(student, f"{student.name}+kd", teaching)
    log(f"distill: teacher {teacher} (OOF accuracy {metrics.accuracy(teacher.oof(), comp.y_train):.4f}) into "
        f"{variant.name}, alpha {alpha}, temperature {temperature}")
    write_fold_inputs(teacher, comp, folds, Path(oof_dir) / variant.name, alpha, temperature, test_images, log)
    train_cv([variant])
    epochs = int(np.median(_finished_metrics(oof_dir, variant.name)["epochs"]))
    log(f"distill: the final student on all {len(comp.y_train)} training rows, {epochs} epochs")
    final = train_final(variant, teacher, comp, oof_dir, alpha, temperature, epochs, test_images, log)
    speed = measure_speed(teacher, final, comp.x_test[:speed_images])
    return write_summary(oof_dir, variant.name, teacher, comp, student.name, speed, alpha, temperature, final)


def _finished_metrics(oof_dir, name):
    return layout.read_predictions(Path(oof_dir) / name)[2]
