"""Every metric against scikit-learn's implementation, the decisions each metric needs, and
that a decision is fitted inside the nested CV, never on the rows it is scored on."""

import numpy as np
import pytest
from sklearn import metrics as sk

from fer_kaggle import decisions
from fer_kaggle.errors import ConfigError
from fer_kaggle.metrics import METRICS, get_metric


def random_probs(n, c, seed=0, skill=1.0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c))
    logits[np.arange(n), y] += skill
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True), y


@pytest.mark.parametrize("c", [2, 3, 7, 10])
def test_each_metric_equals_scikit_learns(c):
    probs, y = random_probs(400, c, seed=c)
    pred = probs.argmax(axis=1)
    labels = np.arange(c)
    assert METRICS["accuracy"].score(pred, y) == pytest.approx(sk.accuracy_score(y, pred))
    assert METRICS["log_loss"].score(probs, y) == pytest.approx(sk.log_loss(y, probs, labels=labels), rel=1e-9)
    assert METRICS["macro_f1"].score(pred, y) == pytest.approx(sk.f1_score(y, pred, average="macro", zero_division=0))
    assert METRICS["qwk"].score(pred, y) == pytest.approx(sk.cohen_kappa_score(y, pred, weights="quadratic",
                                                                               labels=labels))
    expected_auc = sk.roc_auc_score(y, probs[:, 1]) if c == 2 else sk.roc_auc_score(y, probs, multi_class="ovr")
    assert METRICS["roc_auc"].score(probs, y) == pytest.approx(expected_auc)


def test_macro_f1_counts_a_class_never_predicted_as_scikit_learn_does():
    y = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 0, 1, 0, 0, 1])
    assert METRICS["macro_f1"].score(pred, y) == pytest.approx(sk.f1_score(y, pred, average="macro", zero_division=0))


def test_the_registry_knows_direction_and_aliases():
    assert get_metric("logloss").name == "log_loss" and not get_metric("log_loss").greater_is_better
    assert get_metric("AUC").name == "roc_auc" and get_metric("kappa").name == "qwk"
    assert get_metric("log_loss").better(0.5, 0.6) and get_metric("accuracy").better(0.6, 0.5)
    with pytest.raises(ConfigError, match="unknown metric 'rmse'"):
        get_metric("rmse")


def test_fitted_decisions_beat_the_argmax_where_the_metric_wants_them():
    # An imbalanced problem with miscalibrated probabilities: class 2 is under-predicted.
    rng = np.random.default_rng(3)
    y = rng.choice(3, size=3000, p=[0.6, 0.3, 0.1])
    probs = np.full((3000, 3), 0.1)
    probs[np.arange(3000), y] += rng.uniform(0, 0.6, 3000)
    probs[:, 2] *= 0.35
    probs /= probs.sum(axis=1, keepdims=True)
    half = np.arange(3000) < 1500
    weights = decisions.ClassWeights().fit(probs[half], y[half])
    f1 = lambda v: METRICS["macro_f1"].score(v, y[~half])  # noqa: E731
    assert f1(weights.apply(probs[~half])) > f1(probs[~half].argmax(axis=1)) + 0.01
    # Ordered classes: cut-points on the expected class do better than the argmax on kappa.
    cuts = decisions.CutPoints().fit(probs[half], y[half])
    kappa = lambda v: METRICS["qwk"].score(v, y[~half])  # noqa: E731
    assert kappa(cuts.apply(probs[~half])) >= kappa(probs[~half].argmax(axis=1))
    # A confident mistake costs log loss without bound; the fitted floor bounds it.
    confident = np.where(np.arange(3000)[:, None] % 50 == 0, np.roll(np.eye(3)[y], 1, axis=1), probs)
    clip = decisions.ClippedProbabilities().fit(confident[half], y[half])
    loss = lambda v: METRICS["log_loss"].score(v, y[~half])  # noqa: E731
    assert clip.floor_ > 0 and loss(clip.apply(confident[~half])) < loss(confident[~half])


def test_nested_decisions_never_see_the_rows_they_decide():
    """Labels of fold k changed: fold k's submitted values stay the same (their decision was
    fitted on the other folds only), while the other folds' may change."""
    probs, y = random_probs(600, 4, seed=5, skill=0.7)
    folds = np.arange(600) % 3
    values, _ = decisions.nested_decide("macro_f1", probs, y, folds)
    flipped = y.copy()
    flipped[folds == 0] = (flipped[folds == 0] + 1) % 4
    again, _ = decisions.nested_decide("macro_f1", probs, flipped, folds)
    assert np.array_equal(values[folds == 0], again[folds == 0])
    assert not np.array_equal(values[folds != 0], again[folds != 0])


def test_a_blend_chosen_by_the_metric_fits_its_decision_inside_nested_cv():
    from fer_kaggle.ensemble import BestBlend, nested_decisions

    members = [random_probs(600, 3, seed=s, skill=1.0)[0] for s in (1, 2)]
    _, y = random_probs(600, 3, seed=1)
    folds = np.arange(600) % 4
    best = BestBlend(folds, "macro_f1", methods=("mean", "weighted")).fit(members, y)
    assert set(best.scores_) == {"mean", "weighted"} and "score" in best.scores_["mean"]
    top = max(best.scores_, key=lambda m: best.scores_[m]["score"])
    chosen, leader = best.scores_[best.method_], best.scores_[top]
    # the blend's rule: the top score, or a method within two paired standard errors of it with lower log loss
    assert best.method_ == top or (leader["score"] - chosen["score"] <= 2 * max(chosen["difference_se"],
                                                                                 leader["difference_se"])
                                   and chosen["log_loss"] < leader["log_loss"])
    flipped = y.copy()
    flipped[folds == 2] = (flipped[folds == 2] + 1) % 3
    a = nested_decisions("mean", "macro_f1", members, y, folds)[1]
    b = nested_decisions("mean", "macro_f1", members, flipped, folds)[1]
    assert np.array_equal(a[folds == 2], b[folds == 2])


def test_a_lead_within_noise_goes_to_the_method_of_lower_log_loss():
    from fer_kaggle.ensemble import BestBlend

    probs, y = random_probs(2000, 4, seed=8, skill=1.2)
    folds = np.arange(2000) % 4
    # rank averaging of one member keeps nearly the same argmax (a tiny accuracy edge either way)
    # with far worse probabilities: within noise, the mean (lower log loss) is chosen
    best = BestBlend(folds, "accuracy", methods=("mean", "rank")).fit([probs], y)
    assert best.method_ == "mean" and best.scores_["rank"]["log_loss"] > best.scores_["mean"]["log_loss"]
    assert abs(best.scores_["rank"]["score"] - best.scores_["mean"]["score"]) <= 2 * max(
        best.scores_["rank"]["difference_se"], best.scores_["mean"]["difference_se"])
    # a lead far beyond noise wins: a member that under-predicts one class, which rank averaging
    # (per-class ranks) repairs for the argmax
    skewed = probs.copy()
    skewed[:, 3] *= 0.15
    skewed /= skewed.sum(axis=1, keepdims=True)
    clear = BestBlend(folds, "accuracy", methods=("mean", "rank")).fit([skewed], y)
    assert clear.scores_["rank"]["score"] > clear.scores_["mean"]["score"] + 2 * clear.scores_["mean"]["difference_se"]
    assert clear.method_ == "rank"
