"""FER2013's two pixel-CSV layouts: one field of space-separated pixels per row.

- NTU: `train.csv` (label,feature), `test.csv` (id,feature), optional `sample_submission.csv`
  (id,label); the demo competition adds `test_labels.csv` (id,label).
- The original `fer2013.csv` (emotion,pixels,Usage): Training rows are the training set,
  PublicTest and PrivateTest rows the test set, with ids numbered 0.. in file order.

FER2013's classes (0 angry ... 6 neutral) and its symmetries are the known facts of a 48x48
competition in either layout; another side in the same layout gets its classes from the data.
"""

import hashlib

import numpy as np

from fer_kaggle.data.parse import parse_header, read_pixel_csv
from fer_kaggle.data.readers.common import Raw, check_unique, read_sample, read_test_labels
from fer_kaggle.errors import DataError

FER2013_CLASS_NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER2013_FILE = "fer2013.csv"
FER2013_USAGE = {"Training": "train", "PublicTest": "test", "PrivateTest": "test"}


def fer2013_facts(side):
    if side != 48:
        return {}
    return {"labels": tuple(str(i) for i in range(7)), "class_names": FER2013_CLASS_NAMES, "flip": True,
            "metric": "accuracy", "competition": "FER2013"}


def _header(files, name):
    return parse_header(files.head(name, 65536), files.label(name))[0]


class NTU:
    name = "ntu"

    def detect(self, files):
        name = files.find("train.csv")
        return name is not None and _header(files, name) == ["label", "feature"]

    def read(self, files, options):
        if files.find("test.csv") is None:
            raise DataError(files.path, "has train.csv (label,feature) but no test.csv")
        train_name, test_name = files.find("train.csv"), files.find("test.csv")
        train_bytes = files.read(train_name)
        train = read_pixel_csv(train_bytes, files.label(train_name), ("label", "feature"))
        side = train.pixels.shape[1]
        facts = fer2013_facts(side)
        if facts:
            _check_labels(train.keys, train.lines, files.label(train_name), len(facts["labels"]))
        test = read_pixel_csv(files.read(test_name), files.label(test_name), ("id", "feature"), n_pixels=side * side)
        check_unique(test.keys.tolist(), test.lines.tolist(), files.label(test_name))
        ids = [str(i) for i in test.keys.tolist()]
        return Raw(layout=self.name, x_train=train.pixels, y_train=[str(v) for v in train.keys.tolist()],
                   x_test=test.pixels, test_ids=ids, train_sha256=hashlib.sha256(train_bytes).hexdigest(),
                   train_label_name=files.label(train_name), train_lines=train.lines.tolist(),
                   sample=read_sample(files), test_labels=read_test_labels(files, ids), facts=facts)


class FER2013:
    name = "fer2013"

    def detect(self, files):
        if files.find(FER2013_FILE):
            return True
        if files.given and files.given.lower().endswith(".csv"):
            return _header(files, files.given)[:2] == ["emotion", "pixels"]
        return False

    def read(self, files, options):
        name = files.find(FER2013_FILE) or files.given
        data = files.read(name)
        label = files.label(name)
        table = read_pixel_csv(data, label, ("emotion", "pixels", "usage"))
        facts = fer2013_facts(table.pixels.shape[1])
        if facts:
            _check_labels(table.keys, table.lines, label, len(facts["labels"]))
        for usage, line in zip(table.usage, table.lines.tolist()):
            if usage not in FER2013_USAGE:
                raise DataError(label, f"Usage {usage!r} is not one of {', '.join(FER2013_USAGE)}", line=line)
        is_train = np.array([FER2013_USAGE[u] == "train" for u in table.usage])
        if not is_train.any() or is_train.all():
            raise DataError(label, "needs both Training rows and PublicTest/PrivateTest rows")
        n_test = int((~is_train).sum())
        return Raw(layout=self.name, x_train=table.pixels[is_train], y_train=[str(v) for v in table.keys[is_train]],
                   x_test=table.pixels[~is_train], test_ids=[str(i) for i in range(n_test)],
                   train_sha256=hashlib.sha256(data).hexdigest(), test_ids_kind="row", id_start=0,
                   train_label_name=label, train_lines=table.lines[is_train].tolist(),
                   test_labels=[str(v) for v in table.keys[~is_train]], facts=facts)


def _check_labels(labels, lines, where, n_classes):
    bad = np.flatnonzero((labels < 0) | (labels >= n_classes))
    if len(bad):
        raise DataError(where, f"label {labels[bad[0]]} is outside 0-{n_classes - 1}", line=int(lines[bad[0]]))
