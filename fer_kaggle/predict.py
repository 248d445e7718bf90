"""Predicting new images with what the toolkit trained: one `.keras` model (a distilled
student, which holds its preprocessing), a variant (its fold models averaged, with its TTA),
or a blend (its members so, combined by its method fit on all OOF rows)."""

import csv
import io
from pathlib import Path

import numpy as np

from fer_kaggle import atomic
from fer_kaggle.errors import ConfigError


def load_predictor(name, oof_dir, comp=None, folds=None, folds_meta=None, tta="none"):
    """A function (n, 48, 48) uint8 images -> (n, classes) probabilities, and what it is."""
    path = Path(name)
    if path.suffix == ".keras":
        from fer_kaggle.teaching.teacher import load_model_file
        from fer_kaggle.training import predict

        model = load_model_file(path)
        return (lambda x: predict(model, x, tta=tta)), f"{path} (tta {tta})"
    from fer_kaggle.teaching.teacher import Teacher, resolve_teacher

    if comp is None:
        raise ConfigError(f"{name!r} is a variant or blend: predicting with it needs the competition data and folds "
                          f"it was trained on (run `fer-kaggle data` and `fer-kaggle folds`)")
    members, method = resolve_teacher(name, oof_dir)
    teacher = Teacher(oof_dir, members, method, comp, folds, folds_meta)
    return teacher.predict, f"{teacher} ({teacher.n_models()} fold models)"


def predictions_csv(names, probs, kind, class_names):
    """`id,label` for competition CSVs; `file,label,<class probabilities>` for image files."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    labels = probs.argmax(axis=1)
    if kind == "csv":
        writer.writerow(["id", "label"])
        writer.writerows(zip(names, labels.tolist()))
    else:
        writer.writerow(["file", "label", *class_names])
        for name, label, p in zip(names, labels.tolist(), probs):
            writer.writerow([name, class_names[label], *(f"{v:.5f}" for v in p)])
    return out.getvalue()


def write_predictions(path, names, probs, kind, class_names):
    atomic.write_text(path, predictions_csv(names, np.asarray(probs), kind, class_names))
