"""What each test-time augmentation returns and costs on a fold model's held-out rows: the
same model and rows for every set of views, so the differences are paired."""

import time

from fer_kaggle import metrics
from fer_kaggle.training.tta import TTA_VIEWS, predict


def tta_rows(model, images, labels, ttas=tuple(TTA_VIEWS)):
    """One row per TTA: (tta, views, accuracy, log loss, seconds per 1,000 images)."""
    predict(model, images[:64], tta="none")  # traces the forward pass before anything is timed
    rows = []
    for tta in ttas:
        started = time.perf_counter()
        probs = predict(model, images, tta=tta)
        seconds = time.perf_counter() - started
        rows.append((tta, TTA_VIEWS[tta], metrics.accuracy(probs, labels), metrics.log_loss(probs, labels),
                     1000 * seconds / max(1, len(labels))))
    return rows
