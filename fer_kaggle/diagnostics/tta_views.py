"""What each test-time augmentation returns and costs on a fold model's held-out rows: the
same model and rows for every set of views, so the differences are paired."""

import time

from fer_kaggle import metrics
from fer_kaggle.training.tta import TTA_VIEWS, predict, usable_ttas


def tta_rows(model, images, labels, ttas=None):
    """One row per TTA (default: each whose views fit the images): (tta, views, accuracy, log
    loss, seconds per 1,000 images)."""
    predict(model, images[:64], tta="none")  # traces the forward pass before anything is timed
    rows = []
    for tta in ttas or usable_ttas(*images.shape[1:3]):
        started = time.perf_counter()
        probs = predict(model, images, tta=tta)
        seconds = time.perf_counter() - started
        rows.append((tta, TTA_VIEWS[tta], metrics.accuracy(probs, labels), metrics.log_loss(probs, labels),
                     1000 * seconds / max(1, len(labels))))
    return rows
