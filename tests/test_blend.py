"""Blenders fit on OOF only: weights where they belong, optimism caught by nested CV."""

import numpy as np
import pytest

from fer_kaggle.ensemble import (BestBlend, CaruanaBlend, MeanBlend, RankBlend, StackBlend, WeightedBlend,
                                 accuracy, log_loss, nested_cv)


def synthetic_members(n=900, c=7, quality=(0.8, 0.25, 0.2, 0.15), seed=0):
    """Members whose probabilities put `quality` extra mass on the true class (plus noise)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    members = []
    for q in quality:
        logits = rng.normal(size=(n, c))
        logits[np.arange(n), y] += 6 * q
        p = np.exp(logits)
        members.append((p / p.sum(1, keepdims=True)).astype(np.float32))
    return members, y, np.arange(n) % 5


@pytest.mark.parametrize("blender", [WeightedBlend(), CaruanaBlend()], ids=["weighted", "caruana"])
def test_the_much_better_member_gets_most_weight(blender):
    members, y, _ = synthetic_members()
    blender.fit(members, y)
    w = blender.weights_
    assert np.all(w >= 0) and w.sum() == pytest.approx(1.0)
    assert w[0] > 0.5 and w[0] == w.max()
    blended = blender.predict_proba(members)
    assert blended.shape == members[0].shape and np.allclose(blended.sum(1), 1, atol=1e-5)
    assert log_loss(blended, y) <= log_loss(members[0], y) + 1e-6


def test_bagged_caruana_favours_the_better_member_and_is_seeded():
    members, y, _ = synthetic_members()
    a = CaruanaBlend(bags=20, seed=1).fit(members, y).weights_
    assert np.all(a >= 0) and a.sum() == pytest.approx(1.0) and a[0] == a.max()
    assert np.array_equal(a, CaruanaBlend(bags=20, seed=1).fit(members, y).weights_)


def test_caruana_keeps_the_best_prefix_of_its_trajectory():
    members, y, _ = synthetic_members()
    b = CaruanaBlend(n_iter=30).fit(members, y)
    assert log_loss(b.predict_proba(members), y) == pytest.approx(min(b.trajectory_), abs=1e-6)


def test_mean_stack_and_rank_give_valid_probabilities():
    members, y, _ = synthetic_members(n=500)
    for blender in (MeanBlend(), StackBlend(), RankBlend()):
        p = blender.fit(members, y).predict_proba(members)
        assert p.shape == (500, 7) and np.all(p >= 0) and np.allclose(p.sum(1), 1, atol=1e-5)
        assert accuracy(p, y) > 0.5
    assert np.allclose(MeanBlend().fit(members, y).weights_, 0.25)


def test_noise_members_score_above_chance_in_sample_but_at_chance_in_nested_cv():
    rng = np.random.default_rng(3)
    n, c = 600, 7
    y = rng.integers(0, c, n)
    folds = np.arange(n) % 5
    noise = [rng.dirichlet(np.ones(c), n).astype(np.float32) for _ in range(25)]
    stack = StackBlend(Cs=(100.0,), inner_folds=3).fit(noise, y)
    in_sample = accuracy(stack.predict_proba(noise), y)
    nested = accuracy(nested_cv("stack", noise, y, folds), y)
    assert in_sample > 1 / c + 0.1  # the fitted blend looks good on the rows it saw...
    assert abs(nested - 1 / c) < 0.05  # ...and nested CV shows it is chance


def test_best_is_reproducible_and_reports_every_method():
    members, y, folds = synthetic_members(n=600)
    a = BestBlend(folds, "log_loss", seed=4).fit(members, y)
    b = BestBlend(folds, "log_loss", seed=4).fit(members, y)
    assert a.method_ == b.method_ and a.scores_ == b.scores_
    assert set(a.scores_) == {"mean", "weighted", "caruana", "stack", "rank"}
    assert np.array_equal(a.predict_proba(members), b.predict_proba(members))
    best = min(a.scores_.values(), key=lambda s: s["log_loss"])
    assert a.scores_[a.method_] == best


def test_stack_learns_a_calibration_that_averages_cannot():
    """An underconfident member: the logistic regression on log-probabilities sharpens it."""
    rng = np.random.default_rng(4)
    n, c = 1500, 7
    y = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c))
    logits[np.arange(n), y] += 3.0
    flat = np.exp(logits / 4)
    member = [(flat / flat.sum(1, keepdims=True)).astype(np.float32)]
    folds = np.arange(n) % 5
    stacked = nested_cv("stack", member, y, folds)
    assert log_loss(stacked, y) < log_loss(member[0], y) - 0.1
    assert StackBlend().fit(member, y).C_ in StackBlend().Cs
