"""Predicting new images with what the toolkit trained: one `.keras` model (a distilled
student or a fold model, which holds its preprocessing and carries its competition spec), a
variant (its fold models averaged, with its TTA), or a blend (its members so, combined by its
method fit on all OOF rows)."""

import csv
import io
from pathlib import Path

import numpy as np

from fer_kaggle import atomic
from fer_kaggle.decisions import decision_for
from fer_kaggle.errors import ConfigError
from fer_kaggle.spec import Spec


def spec_for(name, comp=None):
    """The spec of what `name` predicts for, read before any model is loaded (so bad input
    is reported before the backend starts): a .keras file's own, else the competition's."""
    if Path(name).suffix == ".keras":
        from fer_kaggle.shipped import load_model, spec_of

        return spec_of(name) or _spec_of_model(load_model(name))
    return comp.spec if comp is not None else None


def load_predictor(name, oof_dir, comp=None, folds=None, folds_meta=None, tta="none"):
    """(a function uint8 (n, h, w, c) images -> (n, classes) probabilities, what it is, the
    decision that turns them into labels). A variant or blend decides as its submission does:
    the competition metric's decision (class weights for macro F1, cut-points for kappa) fitted
    on its OOF predictions; a model file alone has no OOF rows to fit one on: the argmax."""
    path = Path(name)
    if path.suffix == ".keras":
        from fer_kaggle.shipped import load_model
        from fer_kaggle.training import predict

        model = load_model(path)
        return (lambda x: predict(model, x, tta=tta)), f"{path} (tta {tta}; labels by argmax)", None
    from fer_kaggle.teaching.teacher import Teacher, resolve_teacher

    if comp is None:
        raise ConfigError(f"{name!r} is a variant or blend: predicting with it needs the competition data and folds "
                          f"it was trained on (run `fer-kaggle data` and `fer-kaggle folds`)")
    members, method = resolve_teacher(name, oof_dir)
    teacher = Teacher(oof_dir, members, method, comp, folds, folds_meta)
    decision = decision_for(comp.spec.metric).fit(teacher.oof(), comp.y_train)
    return teacher.predict, f"{teacher} ({teacher.n_models()} fold models; labels by {decision.describe()})", decision


def _spec_of_model(model):
    """A model saved without a spec: its input shape and class count, classes numbered 0.."""
    h, w, c = model.input_shape[1:]
    return Spec(height=h, width=w, channels=c, labels=tuple(str(i) for i in range(model.output_shape[-1])))


def predictions_csv(names, probs, kind, spec, decision=None):
    """`id,label` (labels as the competition writes them) for pixel CSVs; `file,label,<class
    probabilities>` for image files, the classes by name. Labels by `decision` (None: argmax)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    values = decision.apply(probs) if decision is not None else None
    codes = values if values is not None and np.ndim(values) == 1 else probs.argmax(axis=1)
    if kind == "csv":
        writer.writerow(["id", "label"])
        writer.writerows((name, spec.labels[c]) for name, c in zip(names, codes.tolist()))
    else:
        writer.writerow(["file", "label", *spec.class_names])
        for name, c, p in zip(names, codes.tolist(), probs):
            writer.writerow([name, spec.class_names[c], *(f"{v:.5f}" for v in p)])
    return out.getvalue()


def write_predictions(path, names, probs, kind, spec, decision=None):
    atomic.write_text(path, predictions_csv(names, np.asarray(probs), kind, spec, decision))
