"""Decisions: what turns class probabilities into the values a metric scores and a submission
holds. Each is fitted on rows whose labels it may see and applied to others; `nested_decide`
fits the decision of fold k on the other folds' rows only, so that no held-out row's label
chooses its own submitted value.

- accuracy: the argmax (nothing to fit).
- log loss: the probabilities clipped at a floor (and renormalized); the floor is fitted.
- macro F1: the argmax of the probabilities times one weight per class (coordinate ascent).
- quadratic weighted kappa: cut-points on the expected class index (coordinate search).
- ROC AUC: the probabilities as they are.
"""

import numpy as np

from fer_kaggle.metrics import get_metric, log_loss, macro_f1, quadratic_weighted_kappa


class Argmax:
    kind = "labels"

    def fit(self, probs, labels):
        return self

    def apply(self, probs):
        return np.asarray(probs).argmax(axis=1)

    def describe(self):
        return "argmax"


class Probabilities:
    kind = "probabilities"

    def fit(self, probs, labels):
        return self

    def apply(self, probs):
        return np.asarray(probs, dtype=np.float32)

    def describe(self):
        return "probabilities as they are"


class ClippedProbabilities:
    """Probabilities raised to at least a floor, then renormalized: one confident mistake costs
    log loss without bound, and the floor that minimizes it on the fitting rows bounds it."""

    kind = "probabilities"
    FLOORS = (0.0, 1e-4, 1e-3, 3e-3, 1e-2, 2e-2, 5e-2)

    def fit(self, probs, labels):
        self.floor_ = min(self.FLOORS, key=lambda f: log_loss(self._clip(probs, f), labels))
        return self

    @staticmethod
    def _clip(probs, floor):
        p = np.maximum(np.asarray(probs, dtype=np.float64), floor)
        return p / p.sum(axis=1, keepdims=True)

    def apply(self, probs):
        return self._clip(probs, self.floor_).astype(np.float32)

    def describe(self):
        return f"probabilities clipped at {self.floor_:g}"


class ClassWeights:
    """The argmax of probabilities times a weight per class, the weights fitted by coordinate
    ascent on macro F1 over a log grid (rare classes are predicted more often when it pays)."""

    kind = "labels"
    GRID = np.exp(np.linspace(np.log(0.25), np.log(4.0), 17))

    def __init__(self, passes=2):
        self.passes = passes

    def fit(self, probs, labels):
        probs = np.asarray(probs, dtype=np.float64)
        n_classes = probs.shape[1]
        weights = np.ones(n_classes)
        best = macro_f1((probs * weights).argmax(axis=1), labels, n_classes)
        for _ in range(self.passes):
            for c in range(n_classes):
                for value in self.GRID:
                    trial = weights.copy()
                    trial[c] = value
                    score = macro_f1((probs * trial).argmax(axis=1), labels, n_classes)
                    if score > best + 1e-12:
                        best, weights = score, trial
        self.weights_ = weights
        return self

    def apply(self, probs):
        return (np.asarray(probs) * self.weights_).argmax(axis=1)

    def describe(self):
        return "argmax of class-weighted probabilities (" + ", ".join(f"{w:.2f}" for w in self.weights_) + ")"


class CutPoints:
    """Ordered classes: the expected class index under the probabilities, cut into classes at
    fitted points (starting halfway between classes; each point searched in turn)."""

    kind = "labels"

    def __init__(self, passes=2, steps=21):
        self.passes, self.steps = passes, steps

    def fit(self, probs, labels):
        probs = np.asarray(probs, dtype=np.float64)
        n_classes = probs.shape[1]
        expected = probs @ np.arange(n_classes)
        cuts = np.arange(n_classes - 1) + 0.5
        best = quadratic_weighted_kappa(np.searchsorted(cuts, expected), labels, n_classes)
        for _ in range(self.passes):
            for i in range(len(cuts)):
                low = cuts[i - 1] if i else -0.5
                high = cuts[i + 1] if i + 1 < len(cuts) else n_classes - 0.5
                for value in np.linspace(low, high, self.steps)[1:-1]:
                    trial = cuts.copy()
                    trial[i] = value
                    score = quadratic_weighted_kappa(np.searchsorted(trial, expected), labels, n_classes)
                    if score > best + 1e-12:
                        best, cuts = score, trial
        self.cuts_ = cuts
        return self

    def apply(self, probs):
        probs = np.asarray(probs, dtype=np.float64)
        return np.searchsorted(self.cuts_, probs @ np.arange(probs.shape[1]))

    def describe(self):
        return "cut-points " + ", ".join(f"{c:.2f}" for c in self.cuts_) + " on the expected class"


DECISIONS = {"accuracy": Argmax, "log_loss": ClippedProbabilities, "macro_f1": ClassWeights, "qwk": CutPoints,
             "roc_auc": Probabilities}


def decision_for(metric):
    return DECISIONS[get_metric(metric).name]()


def nested_decide(metric, probs, labels, folds):
    """The values each row is submitted as, its decision fitted on the other folds' rows only:
    (values, the metric's score of them)."""
    probs, labels, folds = np.asarray(probs), np.asarray(labels), np.asarray(folds)
    m = get_metric(metric)
    values = None
    for k in np.unique(folds):
        held = folds == k
        decided = decision_for(m.name).fit(probs[~held], labels[~held]).apply(probs[held])
        if values is None:
            values = np.zeros((len(probs),) + decided.shape[1:], dtype=decided.dtype)
        values[held] = decided
    return values, m.score(values, labels)


def score(metric, probs, labels, folds=None):
    """The metric of probabilities: through nested decisions where folds are given and the
    decision is fitted, else through the decision's plain form."""
    m = get_metric(metric)
    if folds is not None and DECISIONS[m.name] in (ClippedProbabilities, ClassWeights, CutPoints):
        return nested_decide(m.name, probs, labels, folds)[1]
    if m.needs == "labels":
        return m.score(np.asarray(probs).argmax(axis=1), labels)
    return m.score(probs, labels)
