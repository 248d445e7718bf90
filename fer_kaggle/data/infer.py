"""Settling the competition spec: what the files say first (the sample submission's header and
values decide the submission's format, the training labels the classes, the images the size
and channels), then what the layout or a known competition says, then the user's overrides.
What nothing settled is guessed, and the spec says so."""

import numpy as np

from fer_kaggle.data.readers.common import short
from fer_kaggle.errors import DataError
from fer_kaggle.spec import Spec, is_integer_text

MAX_CLASSES = 1000  # more classes than this are refused: OOF and blends hold n x classes floats per variant

# Competitions recognized by their files, for what the files cannot say (the metric, symmetries).
KNOWN = (
    {"competition": "CIFAR-10", "files": {"trainlabels.csv", "samplesubmission.csv"}, "flip": True,
     "metric": "accuracy"},
    {"competition": "Digit Recognizer", "sample_columns": ["ImageId", "Label"], "flip": False, "metric": "accuracy"},
    {"competition": "Aerial Cactus Identification", "sample_columns": ["id", "has_cactus"], "flip": True,
     "metric": "roc_auc", "submission": "positive"},
    {"competition": "Dog Breed Identification", "files": {"labels.csv"}, "sample_prefix": ["id", "affenpinscher"],
     "flip": True, "metric": "log_loss"},
    {"competition": "Plant Seedlings Classification", "sample_columns": ["file", "species"], "flip": True,
     "metric": "accuracy"},
    {"competition": "Kannada MNIST", "sample_columns": ["id", "label"], "layout": "pixel-columns", "flip": False,
     "metric": "accuracy"},
)


def known_competition(raw, file_names):
    names = {n.lower() for n in file_names}
    columns = raw.sample.columns if raw.sample else None
    for entry in KNOWN:
        if "files" in entry and not entry["files"] <= names:
            continue
        if "sample_columns" in entry and columns != entry["sample_columns"]:
            continue
        if "sample_prefix" in entry and (columns or [])[:2] != entry["sample_prefix"]:
            continue
        if "layout" in entry and raw.layout != entry["layout"]:
            continue
        return {k: v for k, v in entry.items() if k not in ("files", "sample_columns", "sample_prefix", "layout")}
    return {}


def settle(raw, overrides=None, file_names=()):
    """(spec, training label codes, test label codes or None) of a read competition."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    facts = {**known_competition(raw, file_names), **raw.facts}
    guessed = []
    labels = _labels(raw, facts)
    label_kind = "number" if all(is_integer_text(v) for v in labels) else "name"
    class_names = tuple(overrides.get("class_names") or facts.get("class_names") or labels)
    submission, columns, label_column = _submission(raw, labels, facts, overrides, guessed)
    metric = overrides.get("metric") or facts.get("metric")
    if metric is None:
        metric = {"probabilities": "log_loss", "positive": "roc_auc"}.get(submission, "accuracy")
        guessed.append("metric")
    codes = _codes(raw.y_train, labels, raw)
    flip, symmetries = _flip(raw, codes, overrides, facts, guessed)
    n, h, w, c = raw.x_train.shape
    spec = Spec(height=h, width=w, channels=c, labels=labels, class_names=class_names, label_kind=label_kind,
                id_column=overrides.get("id_column") or raw.id_column, label_column=label_column,
                submission=submission, submission_columns=columns, test_ids=raw.test_ids_kind, id_start=raw.id_start,
                metric=metric, flip=bool(flip), resize=raw.resize, layout=raw.layout,
                competition=facts.get("competition", ""), guessed=tuple(guessed), symmetries=symmetries)
    _check_test_ids(raw)
    test_codes = None
    if raw.test_labels is not None:
        index = {v: i for i, v in enumerate(labels)}
        test_codes = np.array([index.get(_canonical(v), -1) for v in raw.test_labels], dtype=np.int64)
    return spec, codes, test_codes


def _flip(raw, codes, overrides, facts, guessed):
    """(whether a mirror keeps the class, the evidence): the user's word; else the images' own
    evidence where it is firm (fer_kaggle.data.symmetry), whatever a known competition says; else
    the known competition's; else a guess (yes)."""
    if overrides.get("flip") is not None:
        return bool(overrides["flip"]), None
    from fer_kaggle.data import symmetry

    evidence = symmetry.measure(raw.x_train, codes) if len(np.unique(codes)) > 1 else {}
    measured = evidence.get("hflip", {}).get("keeps")
    if measured is not None:
        return measured, {**evidence, "decided_by": "measured"}
    if facts.get("flip") is not None:
        return bool(facts["flip"]), {**evidence, "decided_by": "known competition"}
    guessed.append("flip")
    return True, {**evidence, "decided_by": "guessed"} if evidence else None


def _canonical(value):
    return str(int(value)) if is_integer_text(value) else str(value)


def _labels(raw, facts):
    if "labels" in facts:
        return tuple(facts["labels"])
    values = sorted({_canonical(v) for v in raw.y_train})
    if all(is_integer_text(v) for v in values):
        values = sorted(values, key=int)
    if len(values) > MAX_CLASSES:
        raise DataError(raw.train_label_name, f"has {len(values)} classes, more than the {MAX_CLASSES} this toolkit "
                                              f"takes (OOF, blends and reports hold rows x classes per variant)")
    if len(values) < 2:
        raise DataError(raw.train_label_name, f"has {len(values)} class ({short(values)}): a classification needs two "
                                              f"or more")
    return tuple(values)


def _codes(values, labels, raw):
    index = {v: i for i, v in enumerate(labels)}
    codes = np.empty(len(values), dtype=np.int64)
    for row, value in enumerate(values):
        code = index.get(_canonical(value))
        if code is None:
            where = raw.train_lines[row] if raw.train_lines else None
            line = where if isinstance(where, int) else None
            raise DataError(raw.train_label_name + (f" ({where})" if where and line is None else ""),
                            f"label {short(value)!r} is not one of the competition's classes "
                            f"({short(', '.join(labels))})", line=line)
        codes[row] = code
    return codes


def _submission(raw, labels, facts, overrides, guessed):
    """(kind, columns, label column) from the sample submission's header and values."""
    kind = overrides.get("submission") or facts.get("submission")
    sample = raw.sample
    if sample is None:
        if kind is None:
            guessed.append("submission")
        kind = kind or "label"
        id_column, label_column = raw.id_column, raw.label_column
        columns = (id_column, *labels) if kind == "probabilities" else (id_column, label_column)
        return kind, columns, label_column
    columns = tuple(sample.columns)
    if len(columns) == 2:
        if kind is None:
            floats = [v[0] for v in sample.values[:1000]]
            fractional = any(_is_float(v) and not is_integer_text(v) for v in floats)
            kind = "positive" if fractional and len(labels) == 2 else "label"
            if len(labels) == 2 and not fractional:  # whole numbers (often all 0) fit labels and probabilities
                guessed.append("submission")
        if kind == "probabilities":
            raise DataError(sample.name, f"header {short(','.join(columns))!r} has one column after the id: "
                                         f"submission 'probabilities' needs one per class", line=1)
        return kind, columns, columns[1]
    if set(columns[1:]) == set(labels) and kind in (None, "probabilities"):
        return "probabilities", columns, columns[1]
    raise DataError(sample.name, f"header {short(','.join(columns))!r} is neither id,label nor an id and one "
                                 f"probability column per class ({short(', '.join(labels))}): pass --submission "
                                 f"label|probabilities|positive, or edit the spec", line=1)


def _is_float(text):
    try:
        float(text)
        return True
    except (TypeError, ValueError):
        return False


def _check_test_ids(raw):
    if raw.sample is None or raw.test_ids_kind == "file":
        return  # image files were matched to the sample's ids as they were read
    test, sample = set(raw.test_ids), set(raw.sample.ids)
    missing = [i for i in raw.sample.ids if i not in test]
    if missing:
        raise DataError(raw.sample.name, f"id {short(missing[0])!r} is not a test id ({len(missing)} sample ids have "
                                         f"no test row)")
    extra = [i for i in raw.test_ids if i not in sample]
    if extra:
        raise DataError(raw.sample.name, f"lists no row for test id {short(extra[0])!r} ({len(extra)} test ids "
                                         f"missing)")


def apply_overrides(spec, overrides):
    """The spec with the user's choices that need no new reading (metric, flips, class names):
    checked, and no longer counted as guessed."""
    from fer_kaggle.metrics import get_metric

    changes = {}
    if overrides.get("metric"):
        changes["metric"] = get_metric(overrides["metric"]).name
    if overrides.get("flip") is not None:
        changes["flip"] = bool(overrides["flip"])
        if spec.symmetries:
            changes["symmetries"] = {**spec.symmetries, "decided_by": "--flip/--no-flip"}
    if overrides.get("class_names"):
        changes["class_names"] = tuple(overrides["class_names"])
    if overrides.get("submission"):
        changes["submission"] = overrides["submission"]
    if not changes:
        return spec
    guessed = tuple(g for g in spec.guessed if g not in changes)
    return spec.replace(**changes, guessed=guessed)
