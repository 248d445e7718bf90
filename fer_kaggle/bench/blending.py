"""Blend seconds for N members of a given size (synthetic OOF probabilities)."""

import time

import numpy as np


def synthetic_members(n_members, n_rows, n_classes, seed=0):
    """(members' OOF probabilities, labels, 5 folds): members of varied skill and noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n_rows)
    folds = rng.permutation(n_rows) % 5
    members = []
    for _ in range(n_members):
        logits = rng.normal(size=(n_rows, n_classes)).astype(np.float32)
        logits[np.arange(n_rows), y] += rng.uniform(0.5, 2.0)
        p = np.exp(logits)
        members.append(p / p.sum(axis=1, keepdims=True))
    return members, y, folds


def blend_seconds(n_members, n_rows, n_classes, metric):
    """Seconds of the blend stage's search (every method by nested CV on `metric`, then the refit)."""
    from fer_kaggle.ensemble import BestBlend

    members, y, folds = synthetic_members(n_members, n_rows, n_classes)
    t0 = time.perf_counter()
    best = BestBlend(folds, metric).fit(members, y)
    return time.perf_counter() - t0, best.method_
