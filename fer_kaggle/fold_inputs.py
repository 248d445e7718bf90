"""A fold's own training data, when it is more or less than the fold's training rows with their
labels: `oof/<variant>/fold<k>/inputs.npz`, written before the fold trains by the stage that
makes the variant (pseudo-labeling, distillation, a label-fraction experiment).

- `train_rows`: the training-set rows the fold trains on (never one of fold k's rows)
- `train_targets`: their targets, rows of class probabilities (one-hot for true labels)
- `test_rows`, `test_targets`: the test images it trains on, and theirs
- `weights`: one per training row, then one per test image
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_kaggle import atomic
from fer_kaggle.errors import IntegrityError
from fer_kaggle.rows import Rows

INPUTS = "inputs.npz"


@dataclass
class FoldInputs:
    train_rows: np.ndarray
    train_targets: np.ndarray
    test_rows: np.ndarray
    test_targets: np.ndarray
    weights: np.ndarray

    def arrays(self, x_train, x_test):
        """(images, targets, weights) to train on: the images gathered when read."""
        images = Rows(x_train, self.train_rows, more=[(x_test, self.test_rows)])
        targets = np.concatenate([self.train_targets, self.test_targets]).astype(np.float32)
        return images, targets, self.weights.astype(np.float32)

    def check(self, folds, k, where):
        """Refuse inputs that would make fold k's OOF dishonest or that cannot train."""
        held_out = np.flatnonzero(folds == k)
        leaked = np.intersect1d(self.train_rows, held_out)
        if len(leaked):
            raise IntegrityError(f"{where}: {len(leaked)} of fold {k}'s held-out rows are in its training inputs "
                                 f"(row {leaked[0]} first): its OOF would leak")
        n = len(self.train_rows) + len(self.test_rows)
        if len(self.train_targets) != len(self.train_rows) or len(self.test_targets) != len(self.test_rows) \
                or len(self.weights) != n:
            raise IntegrityError(f"{where}: rows, targets and weights differ in length")
        targets = np.concatenate([self.train_targets, self.test_targets])
        if n and (not np.all(np.isfinite(targets)) or np.any(targets < 0)
                  or not np.allclose(targets.sum(axis=1), 1, atol=1e-3) or np.any(self.weights < 0)):
            raise IntegrityError(f"{where}: targets are not probability rows, or a weight is negative")


def one_hot(labels, n_classes):
    return np.eye(n_classes, dtype=np.float32)[labels]


def write_inputs(fold_dir, inputs, folds, k):
    """Check, then write fold k's inputs atomically."""
    path = Path(fold_dir) / INPUTS
    inputs.check(folds, k, path)
    atomic.write_npz(path, train_rows=np.asarray(inputs.train_rows, np.int64),
                     train_targets=np.asarray(inputs.train_targets, np.float32),
                     test_rows=np.asarray(inputs.test_rows, np.int64),
                     test_targets=np.asarray(inputs.test_targets, np.float32),
                     weights=np.asarray(inputs.weights, np.float32))


def read_inputs(fold_dir):
    """Fold inputs written for this fold, or None."""
    path = Path(fold_dir) / INPUTS
    if not path.exists():
        return None
    with np.load(path) as f:
        return FoldInputs(*(f[name] for name in ("train_rows", "train_targets", "test_rows", "test_targets",
                                                  "weights")))
