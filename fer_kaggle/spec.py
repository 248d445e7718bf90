"""The competition spec: one frozen description of a competition that `fer-kaggle data` infers
from the files and writes to `data/spec.json`, and that every later stage takes instead of
constants (image size and channels, classes, ids, the submission's format, the metric, the
symmetries augmentation and TTA may use).

- `labels`: the class labels as the competition writes them (train labels, submitted labels),
  in code order: label code i is `labels[i]`; `class_names` are the names figures show.
- `submission`: `label` (one column, the class as the competition writes it), `probabilities`
  (one column per class, in `submission_columns` order) or `positive` (one column, the
  probability of the positive class, `labels[1]`, of a two-class competition).
- `test_ids`: how test ids are given: `column` (a column of the test file), `file` (image
  file names without their extension) or `row` (the test file's row number, from `id_start`).
- `resize`: `fixed` (every image must have the spec's size) or `resize` (images of other sizes
  are resized to it, area-averaging down and bilinear up, the aspect ratio not kept).
- `flip`: whether a horizontal mirror keeps an image's class (faces, photos: yes; digits,
  text: no): augmentation and TTA use it only then.
- `guessed`: the fields that neither the files nor a known competition settled, for the user
  to check (`fer-kaggle data` prints them; `--set-spec` or an edited spec file overrides them).

The spec's identity (`identity_sha256`) covers the fields that change the arrays or the
training (size, channels, labels, resize, flip): folds and OOF made for another are refused.
The metric and the submission's format can be changed without training again.
"""

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from fer_kaggle.errors import ConfigError

SUBMISSION_KINDS = ("label", "probabilities", "positive")
TEST_ID_KINDS = ("column", "file", "row")
RESIZE_POLICIES = ("fixed", "resize")
LABEL_KINDS = ("number", "name")
IDENTITY_FIELDS = ("height", "width", "channels", "labels", "resize", "flip")
SPEC_FILE = "spec.json"


@dataclass(frozen=True)
class Spec:
    height: int
    width: int
    channels: int
    labels: tuple
    class_names: tuple = None
    label_kind: str = "number"
    id_column: str = "id"
    label_column: str = "label"
    submission: str = "label"
    submission_columns: tuple = ("id", "label")
    test_ids: str = "column"
    id_start: int = 0
    metric: str = "accuracy"
    flip: bool = True
    resize: str = "fixed"
    layout: str = ""
    competition: str = ""
    positive: str = None  # submission 'positive': the class whose probability the column holds (None: from its name)
    guessed: tuple = field(default=(), compare=False)
    symmetries: dict = field(default=None, compare=False)  # the evidence for `flip` (fer_kaggle.data.symmetry)

    def __post_init__(self):
        for name in ("labels", "class_names", "submission_columns", "guessed"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))
        object.__setattr__(self, "labels", tuple(str(v) for v in self.labels))
        if self.class_names is None:
            object.__setattr__(self, "class_names", self.labels)
        self.check()

    @property
    def positive_code(self):
        """The class whose probability a one-column ('positive') submission holds: the one the
        spec names, else the one the column is named after, else class 1 of classes 0 and 1;
        None where that is ambiguous."""
        if self.positive is not None:
            return self.labels.index(str(self.positive)) if str(self.positive) in self.labels else None
        column = self.submission_columns[1] if len(self.submission_columns) > 1 else None
        for code, (label, name) in enumerate(zip(self.labels, self.class_names)):
            if column in (label, name):
                return code
        return 1 if set(self.labels) == {"0", "1"} else None

    @property
    def input_shape(self):
        return (self.height, self.width, self.channels)

    @property
    def num_classes(self):
        return len(self.labels)

    def check(self):
        problems = []
        if min(self.height, self.width) < 8 or self.channels not in (1, 3):
            problems.append(f"images of {self.height}x{self.width}x{self.channels} (at least 8x8, 1 or 3 channels)")
        if len(self.labels) < 2 or len(set(self.labels)) != len(self.labels):
            problems.append(f"labels {list(self.labels)[:10]} (at least two, each once)")
        if len(self.class_names) != len(self.labels):
            problems.append(f"{len(self.class_names)} class names for {len(self.labels)} labels")
        for name, allowed in (("submission", SUBMISSION_KINDS), ("test_ids", TEST_ID_KINDS),
                              ("resize", RESIZE_POLICIES), ("label_kind", LABEL_KINDS)):
            if getattr(self, name) not in allowed:
                problems.append(f"{name} {getattr(self, name)!r} (one of {', '.join(allowed)})")
        if self.submission == "positive" and len(self.labels) != 2:
            problems.append(f"submission 'positive' with {len(self.labels)} classes (it needs two)")
        elif self.submission == "positive" and self.positive_code is None:
            problems.append(f"submission column {self.label_column!r} names neither class ({', '.join(self.labels)}): "
                            f"set \"positive\" to the class whose probability it holds (edit the spec, then "
                            f"`fer-kaggle data --spec`)")
        if self.label_kind == "number" and not all(is_integer_text(v) for v in self.labels):
            problems.append("label_kind 'number' with labels that are not integers")
        from fer_kaggle.metrics import METRICS  # a lower room: the registry of metric names

        if self.metric not in METRICS:
            problems.append(f"metric {self.metric!r} (one of {', '.join(METRICS)})")
        elif self.metric in ("roc_auc", "log_loss") and self.submission == "label":
            problems.append(f"metric {self.metric!r} scores probabilities, and submission 'label' writes a class: "
                            f"choose --submission probabilities (or positive), or another --metric")
        elif self.metric == "qwk" and self.label_kind == "name":
            problems.append(f"metric 'qwk' weighs errors by the distance between ordered classes, and these classes "
                            f"are names ({', '.join(self.labels[:4])}{', ...' if len(self.labels) > 4 else ''}) whose "
                            f"order no file gives (sorted alphabetically, 'mild' < 'moderate' < 'no' < 'severe'): give "
                            f"them as numbers 0..{len(self.labels) - 1} in their order, or choose another --metric")
        if problems:
            raise ConfigError(f"competition spec: {'; '.join(problems)}")

    def to_json(self):
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in dataclasses.fields(self)}

    @classmethod
    def from_json(cls, obj):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(obj) - known)
        if unknown:
            raise ConfigError(f"competition spec: unknown field {unknown[0]!r}; known: {', '.join(sorted(known))}")
        return cls(**obj)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    @property
    def identity_sha256(self):
        identity = {name: self.to_json()[name] for name in IDENTITY_FIELDS}
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()

    def _flip_evidence(self):
        evidence = self.symmetries or {}
        if "hflip" not in evidence:
            return ""
        others = [f"{'vertical flips' if n == 'vflip' else 'quarter turns'} "
                  f"{'keep' if evidence[n]['keeps'] else 'change' if evidence[n]['keeps'] is False else 'may keep'}"
                  f" the class" for n in ("vflip", "rot90") if n in evidence]
        return (f" ({evidence.get('decided_by', 'measured')}: {describe_symmetry('hflip', evidence)}"
                + (f"; {', '.join(others)}" if others else "") + ")")

    def summary_lines(self):
        """What `fer-kaggle data` prints: the spec in a few lines a person reads in five seconds."""
        classes = ", ".join(self.class_names[:12]) + (f", ... ({self.num_classes} in all)" if self.num_classes > 12 else "")
        if tuple(self.class_names) != tuple(self.labels) and self.label_kind == "number":
            classes = ", ".join(f"{lab} {name}" for lab, name in list(zip(self.labels, self.class_names))[:12])
        ids = {"column": f"column {self.id_column!r}", "file": "image file names",
               "row": f"row numbers from {self.id_start}"}[self.test_ids]
        submission = {"label": f"{self.label_column!r}, the class {'name' if self.label_kind == 'name' else 'number'}",
                      "probabilities": "one probability column per class",
                      "positive": f"{self.label_column!r}, the probability of "
                                  f"{self.labels[self.positive_code or 0]!r}"}[self.submission]
        lines = [
            f"  images: {self.height}x{self.width}, {'grayscale' if self.channels == 1 else 'RGB'}"
            + (", others resized to it" if self.resize == "resize" else ", all of this size"),
            f"  classes ({self.num_classes}): {classes}",
            f"  submission: {','.join(self.submission_columns[:4])}{',...' if len(self.submission_columns) > 4 else ''}"
            f" ({submission}); test ids from {ids}",
            f"  metric: {self.metric}; horizontal flips {'used' if self.flip else 'not used'} by augmentation and TTA"
            + self._flip_evidence(),
        ]
        if self.guessed:
            lines.append(f"  guessed: {', '.join(self.guessed)} (override with --metric, --no-flip/--flip, "
                         f"--image-size, --submission, or edit data/{SPEC_FILE} and run `fer-kaggle data --spec` on it)")
        return lines


def describe_symmetry(name, evidence):
    """One line of the evidence for a transform (fer_kaggle.data.symmetry measures it)."""
    e = evidence[name]
    return (f"a {'mirrored' if name == 'hflip' else 'flipped' if name == 'vflip' else 'turned'} held-out image keeps "
            f"{e['retained']:.0%} of a small classifier's skill; training on them changes its accuracy by "
            f"{e['augmented'] * 100:+.1f} points")


def is_integer_text(text):
    """Whether a label as the competition writes it is a whole number ('7', not 'frog')."""
    try:
        int(text)
        return True
    except (TypeError, ValueError):
        return False


def read_spec(path):
    from fer_kaggle import atomic

    try:
        obj = atomic.read_json(path)
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: not a readable spec file ({e})") from None
    try:
        return Spec.from_json(obj)
    except TypeError as e:
        raise ConfigError(f"{path}: {e}") from None
