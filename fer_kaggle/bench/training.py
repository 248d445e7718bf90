"""Training and prediction throughput: the toolkit's step against plain `model.fit`."""

import tempfile
import time

import numpy as np


def _images(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 48, 48), dtype=np.uint8), rng.integers(0, 7, n)


TIMED_EPOCHS = 2  # epochs timed after the one that traces; the faster counts (this machine has slow spells)


def plain_fit_images_per_second(build_model, batch_size, steps):
    """The baseline: `model.fit` on in-memory float32 arrays, no augmentation, Adam; the
    faster of TIMED_EPOCHS epochs after the first (which traces)."""
    import keras

    x, y = _images(batch_size * steps)
    images, targets = x[..., None].astype("float32"), np.eye(7, dtype="float32")[y]
    model = build_model()
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.CategoricalCrossentropy(), metrics=["accuracy"])
    model.fit(images, targets, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    seconds = []
    for _ in range(TIMED_EPOCHS):
        t0 = time.perf_counter()
        model.fit(images, targets, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
        seconds.append(time.perf_counter() - t0)
    return len(images) / min(seconds)


def toolkit_images_per_second(build_model, cfg, steps):
    """The toolkit's training epoch as `fit` runs it (host order, augmentation in the step,
    per-step schedule, step timer): the faster of TIMED_EPOCHS epochs after the first (which
    traces), validation left out."""
    from fer_kaggle import training

    cfg = training.resolve_config(**{**cfg, "epochs": 1 + TIMED_EPOCHS, "val_every": 1000, "checkpoint_seconds": 1e9,
                                     "early_stopping_patience": 0, "select": "last"})
    x, y = _images(cfg["batch_size"] * steps + 8)
    with tempfile.TemporaryDirectory() as tmp:
        _, state = training.fit(build_model, x[:-8], y[:-8], x[-8:], y[-8:], cfg, tmp)
    return cfg["batch_size"] * steps / min(h["seconds"] for h in state.history[1:])


def prediction_images_per_second(build_model, n=2048):
    """Images per second of `predict` with each TTA (views counted once per image)."""
    from fer_kaggle.training import TTA_VIEWS, predict

    model = build_model()
    x, _ = _images(n)
    predict(model, x[:256], tta="none")  # trace
    out = {}
    for tta in TTA_VIEWS:
        t0 = time.perf_counter()
        predict(model, x, tta=tta)
        out[tta] = n / (time.perf_counter() - t0)
    return out
