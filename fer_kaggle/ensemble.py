"""Blenders of out-of-fold predictions, with the shape of scikit-learn estimators.

`fit(oofs, y)` takes a list of (n, C) probability arrays (one per member) and returns self;
`predict_proba(probs)` blends a list of arrays of the same members; learned attributes end
in `_`. They are fit on OOF predictions only. `nested_cv` scores a blender honestly: its
weights are fit on the other folds' OOF rows and scored on the held-out fold's rows.
"""

import numpy as np

from fer_kaggle.errors import ConfigError
from fer_kaggle.metrics import accuracy, log_loss

EPS = 1e-7  # the floor of a probability inside the blenders' fits (numerics, not the scored log loss)


def _stack(probs):
    arr = np.stack([np.asarray(p, dtype=np.float64) for p in probs])
    if arr.ndim != 3:
        raise ConfigError(f"members must be (n, classes) arrays of one shape, got {[np.shape(p) for p in probs]}")
    return arr  # (members, n, C)


def _normalize(p):
    p = np.clip(p, 0.0, None)
    return p / np.maximum(p.sum(axis=1, keepdims=True), EPS)


class _WeightedAverage:
    """A blend that is a convex combination of the members (weights_ sum to 1)."""

    def predict_proba(self, probs):
        return _normalize(np.tensordot(self.weights_, _stack(probs), axes=1)).astype(np.float32)


class MeanBlend(_WeightedAverage):
    """The plain average of the members' probabilities."""

    def fit(self, oofs, y):
        self.weights_ = np.full(len(oofs), 1.0 / len(oofs))
        return self


class WeightedBlend(_WeightedAverage):
    """Non-negative weights summing to 1 that minimize the OOF log loss (SLSQP)."""

    def __init__(self, max_iter=200):
        self.max_iter = max_iter

    def fit(self, oofs, y):
        from scipy.optimize import minimize

        stacked = _stack(oofs)
        m = len(stacked)
        picked = stacked[:, np.arange(len(y)), y]  # (members, n): probability of the true class

        def loss(w):
            return -np.mean(np.log(np.clip(w @ picked, EPS, None)))

        def grad(w):
            return -(picked / np.clip(w @ picked, EPS, None)).mean(axis=1)

        result = minimize(loss, np.full(m, 1.0 / m), jac=grad, method="SLSQP", bounds=[(0.0, 1.0)] * m,
                          constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0}],
                          options={"maxiter": self.max_iter})
        w = np.clip(result.x, 0.0, None)
        self.weights_ = w / w.sum()
        self.loss_ = float(loss(self.weights_))
        return self


class CaruanaBlend(_WeightedAverage):
    """Ensemble selection (Caruana et al. 2004): greedy forward selection with replacement,
    initialized with the `n_init` best members, keeping the best prefix of the trajectory;
    with `bags` > 0, the weights are averaged over selections on random member subsets."""

    def __init__(self, n_iter=50, n_init=3, bags=0, bag_fraction=0.5, seed=0):
        self.n_iter, self.n_init, self.bags, self.bag_fraction, self.seed = n_iter, n_init, bags, bag_fraction, seed

    def fit(self, oofs, y):
        stacked = _stack(oofs)
        if not self.bags:
            self.weights_, self.trajectory_ = self._select(stacked, y, np.arange(len(stacked)))
            return self
        rng = np.random.default_rng(self.seed)
        size = max(1, int(round(self.bag_fraction * len(stacked))))
        weights = np.zeros(len(stacked))
        for _ in range(self.bags):
            members = np.sort(rng.choice(len(stacked), size=size, replace=False))
            weights += self._select(stacked, y, members)[0]
        self.weights_ = weights / weights.sum()
        return self

    def _select(self, stacked, y, members):
        # The members' rows sum to 1, so an average's log loss needs only the true class's probabilities.
        picked = stacked[:, np.arange(len(y)), y]

        def loss(total, count):
            return float(-np.mean(np.log(np.clip(total / count, EPS, 1.0))))

        ranked = [members[i] for i in np.argsort([loss(picked[i], 1) for i in members])]
        # Sorted initialization: the best few, as many of them as score best together.
        starts = [ranked[:n] for n in range(1, max(1, min(self.n_init, len(members))) + 1)]
        chosen = min(starts, key=lambda c: loss(picked[c].sum(axis=0), len(c)))
        total = picked[chosen].sum(axis=0)
        trajectory = [(loss(total, len(chosen)), list(chosen))]
        candidates = picked[members]
        for _ in range(self.n_iter):
            scores = -np.mean(np.log(np.clip((total + candidates) / (len(chosen) + 1), EPS, 1.0)), axis=1)
            best = members[int(np.argmin(scores))]
            chosen.append(best)
            total = total + picked[best]
            trajectory.append((float(scores.min()), list(chosen)))
        best_loss, best_prefix = min(trajectory, key=lambda t: t[0])
        weights = np.bincount(best_prefix, minlength=len(stacked)).astype(np.float64)
        return weights / weights.sum(), [t[0] for t in trajectory]


class StackBlend:
    """A multinomial logistic regression on the members' OOF log-probabilities (standardized,
    L2-penalized, fit by L-BFGS, each C warm-started from the last); its regularization
    strength C is chosen by its own inner cross-validation. With more than `max_members`
    members it stacks the `max_members` of lowest log loss on the rows it is fit on (so
    nested CV stays honest), which keeps 100 members fast."""

    def __init__(self, Cs=(0.1, 1.0), inner_folds=3, seed=0, max_iter=200, max_members=20):
        self.Cs, self.inner_folds, self.seed, self.max_iter = Cs, inner_folds, seed, max_iter
        self.max_members = max_members

    def _features(self, stacked):
        x = np.log(np.clip(stacked, EPS, 1.0)).transpose(1, 0, 2).reshape(stacked.shape[1], -1)
        return (x - self.mean_) / self.scale_

    def fit(self, oofs, y):
        stacked = _stack(oofs)
        n_classes = stacked.shape[2]
        losses = [log_loss(member, y) for member in stacked]
        self.members_ = np.sort(np.argsort(losses)[: self.max_members])
        raw = np.log(np.clip(stacked[self.members_], EPS, 1.0)).transpose(1, 0, 2).reshape(len(y), -1)
        self.mean_, self.scale_ = raw.mean(axis=0), raw.std(axis=0) + EPS
        x = (raw - self.mean_) / self.scale_
        inner = np.random.default_rng(self.seed).permutation(len(y)) % self.inner_folds
        scores, starts = np.zeros(len(self.Cs)), [None] * self.inner_folds
        for i, C in enumerate(self.Cs):
            for k in range(self.inner_folds):
                starts[k] = _fit_logistic(x[inner != k], y[inner != k], n_classes, C, self.max_iter, starts[k])
                scores[i] += log_loss(_softmax(_logits(starts[k], x[inner == k])), y[inner == k]) * np.sum(inner == k)
        self.C_ = float(self.Cs[int(np.argmin(scores))])
        self.coef_ = _fit_logistic(x, y, n_classes, self.C_, self.max_iter)
        self.classes_ = np.arange(n_classes)
        return self

    def predict_proba(self, probs):
        x = self._features(_stack(probs)[self.members_])
        return _normalize(_softmax(_logits(self.coef_, x))).astype(np.float32)


def _logits(coef, x):
    return x @ coef[:-1] + coef[-1]


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _fit_logistic(x, y, n_classes, C, max_iter, start=None):
    """Weights (features + 1, classes) minimizing the mean log loss + |W|^2 / (2 C n)."""
    from scipy.optimize import minimize

    n, f = x.shape
    rows = np.arange(n)

    def loss_and_grad(flat):
        coef = flat.reshape(f + 1, n_classes)
        z = _logits(coef, x)
        z -= z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        diff = np.exp(log_p)
        diff[rows, y] -= 1.0
        diff /= n
        grad = np.vstack([x.T @ diff + coef[:-1] / (C * n), diff.sum(axis=0)])
        return -log_p[rows, y].mean() + 0.5 * np.sum(coef[:-1] ** 2) / (C * n), grad.ravel()

    start = np.zeros((f + 1) * n_classes) if start is None else start.ravel()
    result = minimize(loss_and_grad, start, jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    return result.x.reshape(f + 1, n_classes)


class RankBlend:
    """Rank averaging: each member's probabilities of each class become ranks in [0, 1]
    over the rows being blended, the ranks are averaged, and rows are normalized."""

    def fit(self, oofs, y):
        self.n_members_ = len(oofs)
        return self

    def predict_proba(self, probs):
        stacked = _stack(probs)
        ranks = stacked.argsort(axis=1).argsort(axis=1) / max(1, stacked.shape[1] - 1)
        return _normalize(ranks.mean(axis=0) + EPS).astype(np.float32)


BLENDERS = {
    "mean": lambda seed: MeanBlend(),
    "weighted": lambda seed: WeightedBlend(),
    "caruana": lambda seed: CaruanaBlend(seed=seed),
    "stack": lambda seed: StackBlend(seed=seed),
    "rank": lambda seed: RankBlend(),
}


def make_blender(method, seed=0):
    if method not in BLENDERS:
        raise ConfigError(f"unknown blend method {method!r}; choose one of {', '.join(list(BLENDERS) + ['best'])}")
    return BLENDERS[method](seed)


def nested_cv(method, oofs, y, folds, seed=0):
    """Blend OOF predictions honestly: for each fold, fit the blender on the other folds'
    rows and predict this fold's rows. Returns the (n, C) nested predictions."""
    return nested_decisions(method, "log_loss", oofs, y, folds, seed)[0]


def nested_decisions(method, metric, oofs, y, folds, seed=0):
    """(nested predictions, nested submitted values) of a blend and the decision of `metric`:
    for each fold, the blender is fit on the other folds' rows, the decision (thresholds,
    cut-points, a clip) on the blender's predictions of those rows, and both are applied to
    this fold's rows: nothing a held-out row is submitted as depends on its label."""
    from fer_kaggle.decisions import decision_for

    stacked = _stack(oofs)
    out = np.zeros(stacked.shape[1:], dtype=np.float32)
    values = None
    for k in np.unique(folds):
        inner, outer = folds != k, folds == k
        blender = make_blender(method, seed).fit(list(stacked[:, inner]), y[inner])
        out[outer] = blender.predict_proba(list(stacked[:, outer]))
        decision = decision_for(metric).fit(blender.predict_proba(list(stacked[:, inner])), y[inner])
        decided = decision.apply(out[outer])
        if values is None:
            values = np.zeros((len(y),) + decided.shape[1:], dtype=decided.dtype)
        values[outer] = decided
    return out, values


def _difference(metric, values, best, y, rows):
    """The metric of `values` minus that of `best` on resampled `rows` (None where the metric
    is undefined there: a resample of a tiny set without one of two classes, for ROC AUC)."""
    try:
        return metric.score(values[rows], y[rows]) - metric.score(best[rows], y[rows])
    except ValueError:
        return None


class BestBlend:
    """Picks among the methods by the competition's `metric` in nested cross-validation (the
    decision the metric needs fitted inside it), then refits the chosen method, and its
    decision, on all OOF rows. Methods whose score is within `noise` paired standard errors of
    the best (a bootstrap of the rows, the same resamples for every method) are ties, and the
    one of lowest log loss among them is chosen: a method whose lead is within noise (rank
    averaging ahead by 45 of 50,000 rows on accuracy, its log loss three times the others') is
    not worth its worse probabilities. `scores_` holds every method's nested-CV score, accuracy,
    log loss and standard error of its difference to the best; `nested_` and `nested_values_`
    its nested predictions and values."""

    def __init__(self, folds, metric, methods=("mean", "weighted", "caruana", "stack", "rank"), seed=0, noise=2.0,
                 resamples=100):
        self.folds, self.metric, self.methods, self.seed = np.asarray(folds), metric, tuple(methods), seed
        self.noise, self.resamples = noise, resamples

    def fit(self, oofs, y, progress=None):
        """`progress(message, fraction)`, when given, hears of each method as it is scored."""
        from fer_kaggle.decisions import decision_for
        from fer_kaggle.metrics import get_metric

        metric = get_metric(self.metric)
        self.scores_, self.nested_, self.nested_values_ = {}, {}, {}
        for i, method in enumerate(self.methods):
            if progress:
                progress(f"scoring {method} by nested CV ({i + 1}/{len(self.methods)})", i / len(self.methods))
            nested, values = nested_decisions(method, metric.name, oofs, y, self.folds, self.seed)
            self.nested_[method], self.nested_values_[method] = nested, values
            self.scores_[method] = {"score": metric.score(values, y), "accuracy": accuracy(nested, y),
                                    "log_loss": log_loss(nested, y)}
        self.method_ = self._choose(metric, y)
        self.selection_nested_score_ = self._selection_nested(metric, y)
        self.blender_ = make_blender(self.method_, self.seed).fit(oofs, y)
        # the decision is fitted on the method's nested predictions, which (as the test set's) come
        # from blenders that never saw those rows: a stacker's in-sample predictions are overconfident
        self.decision_ = decision_for(metric.name).fit(self.nested_[self.method_], y)
        return self

    def predict_proba(self, probs):
        return self.blender_.predict_proba(probs)

    def _selection_nested(self, metric, y):
        """The score of choosing the method fold by fold, each fold's rows scored with the method
        that led on the other folds' rows: beside the chosen method's nested-CV score (the best
        of several, so optimistic by the choice), what the choice itself is worth."""
        if len(self.methods) == 1:
            return self.scores_[self.method_]["score"]
        combined = np.array(self.nested_values_[self.methods[0]], copy=True)
        for k in np.unique(self.folds):
            outside = self.folds != k
            leader = min(self.methods, key=lambda m: metric.sort_key(metric.score(self.nested_values_[m][outside],
                                                                                   y[outside])))
            combined[~outside] = self.nested_values_[leader][~outside]
        return float(metric.score(combined, y))

    def _choose(self, metric, y):
        """The best by the metric, or the lowest log loss among the methods tied with it."""
        leader = min(self.methods, key=lambda m: (metric.sort_key(self.scores_[m]["score"]), self.scores_[m]["log_loss"]))
        rng = np.random.default_rng(self.seed)
        samples = [rng.integers(0, len(y), len(y)) for _ in range(self.resamples)] if len(self.methods) > 1 else []
        best = self.nested_values_[leader]
        tied = []
        for m in self.methods:
            if m == leader:
                self.scores_[m]["difference_se"] = 0.0
                tied.append(m)
                continue
            values = self.nested_values_[m]
            differences = [_difference(metric, values, best, y, r) for r in samples]
            differences = [d for d in differences if d is not None]
            se = float(np.std(differences)) if differences else 0.0
            self.scores_[m]["difference_se"] = se
            if abs(self.scores_[m]["score"] - self.scores_[leader]["score"]) <= self.noise * se:
                tied.append(m)
        return min(tied, key=lambda m: self.scores_[m]["log_loss"])

