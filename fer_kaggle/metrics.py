"""The competitions' metrics: one registry of named metrics, each knowing whether greater is
better and whether it scores class labels or class probabilities (as scikit-learn's
`get_scorer`). What turns probabilities into the values a metric scores (an argmax, clipped
probabilities, thresholds, cut-points) is a decision, fitted in `fer_kaggle.decisions`.

Every score takes `(values, labels)`: values are class probabilities (n, C) for the
probability metrics, class codes (n,) for the label metrics (or probabilities, argmaxed).
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np

EPS = 1e-15  # Kaggle's clip of a probability in its log loss (a floor fitted for the submission is a decision)


def log_loss(probs, labels):
    """Multi-class log loss as Kaggle computes it: probabilities clipped to [EPS, 1 - EPS], each
    row renormalized, the mean negative log of the true class's."""
    probs = np.clip(np.asarray(probs, dtype=np.float64), EPS, 1 - EPS)
    probs = probs / probs.sum(axis=1, keepdims=True)
    p = probs[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(p)))


def _codes(values):
    values = np.asarray(values)
    return values.argmax(axis=1) if values.ndim == 2 else values.astype(np.int64)


def accuracy(values, labels):
    return float(np.mean(_codes(values) == np.asarray(labels)))


def _confusion(pred, labels, n_classes):
    return np.bincount(np.asarray(labels) * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes,
                                                                                                       n_classes)


def macro_f1(values, labels, n_classes=None):
    """The unweighted mean over classes of F1 (a class neither present nor predicted counts 0,
    as scikit-learn's `f1_score(average='macro', zero_division=0)` over the classes present in
    either)."""
    pred, labels = _codes(values), np.asarray(labels)
    n_classes = n_classes or int(max(pred.max(initial=0), labels.max(initial=0))) + 1
    counts = _confusion(pred, labels, n_classes)
    tp = np.diag(counts).astype(np.float64)
    predicted, actual = counts.sum(axis=0), counts.sum(axis=1)
    present = (predicted + actual) > 0
    f1 = np.where(predicted + actual > 0, 2 * tp / np.maximum(predicted + actual, 1), 0.0)
    return float(f1[present].mean())


def quadratic_weighted_kappa(values, labels, n_classes=None):
    """Cohen's kappa with quadratic weights between ordered classes (as scikit-learn's
    `cohen_kappa_score(weights='quadratic')`)."""
    pred, labels = _codes(values), np.asarray(labels)
    n_classes = n_classes or int(max(pred.max(initial=0), labels.max(initial=0))) + 1
    observed = _confusion(pred, labels, n_classes).astype(np.float64)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / max(observed.sum(), 1)
    i, j = np.indices((n_classes, n_classes))
    weights = (i - j) ** 2
    denominator = (weights * expected).sum()
    return float(1.0 - (weights * observed).sum() / denominator) if denominator > 0 else 0.0


def roc_auc(probs, labels):
    """Area under the ROC curve: of the positive class's probability for two classes, else the
    mean one-vs-rest area over the classes (scikit-learn's `roc_auc_score`, multi_class='ovr')."""
    from sklearn.metrics import roc_auc_score

    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    present = np.unique(labels)
    if len(present) < 2:
        return float("nan")  # undefined on rows of one class (a small fold): never a traceback
    if probs.shape[1] == 2:
        return float(roc_auc_score(labels, probs[:, 1]))
    return float(np.mean([roc_auc_score(labels == c, probs[:, c]) for c in present]))


@dataclass(frozen=True)
class Metric:
    name: str
    score_fn: Callable
    greater_is_better: bool
    needs: str  # labels or probabilities: what the submission gives the metric
    title: str

    def score(self, values, labels):
        values = np.asarray(values)
        if self.needs == "probabilities" and values.ndim != 2:
            raise ValueError(f"{self.name} scores class probabilities (n, classes), got shape {values.shape}")
        return self.score_fn(values, labels)

    def sort_key(self, value):
        """Ascending sort key: the best score first."""
        return -float(value) if self.greater_is_better else float(value)

    def better(self, a, b):
        return self.sort_key(a) < self.sort_key(b)


METRICS = {
    "accuracy": Metric("accuracy", accuracy, True, "labels", "accuracy"),
    "log_loss": Metric("log_loss", log_loss, False, "probabilities", "multi-class log loss"),
    "macro_f1": Metric("macro_f1", macro_f1, True, "labels", "macro F1"),
    "roc_auc": Metric("roc_auc", roc_auc, True, "probabilities", "ROC AUC"),
    "qwk": Metric("qwk", quadratic_weighted_kappa, True, "labels", "quadratic weighted kappa"),
}
ALIASES = {"logloss": "log_loss", "mlogloss": "log_loss", "f1": "macro_f1", "f1_macro": "macro_f1", "auc": "roc_auc",
           "kappa": "qwk", "quadratic_weighted_kappa": "qwk", "categorizationaccuracy": "accuracy"}


def get_metric(name):
    from fer_kaggle.errors import ConfigError

    key = ALIASES.get(str(name).lower().replace("-", "_").replace(" ", ""), str(name).lower())
    if key not in METRICS:
        raise ConfigError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")
    return METRICS[key]
