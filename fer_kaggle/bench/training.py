"""Training and prediction throughput: the toolkit's step against plain `model.fit`."""

import tempfile
import time

import numpy as np


def _images(n, shape, num_classes, seed=0):
    """Random images of the competition's shape (h, w, c) and labels of its classes."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, *shape), dtype=np.uint8), rng.integers(0, num_classes, n)


def _shape_of(model):
    return tuple(model.input_shape[1:]), int(model.output_shape[-1])


TIMED_EPOCHS = 2  # epochs timed after the one that traces; the faster counts (this machine has slow spells)


def plain_fit_images_per_second(build_model, batch_size, steps):
    """The baseline: `model.fit` on in-memory float32 arrays, no augmentation, Adam; the
    faster of TIMED_EPOCHS epochs after the first (which traces)."""
    import keras

    model = build_model()
    shape, num_classes = _shape_of(model)
    x, y = _images(batch_size * steps, shape, num_classes)
    images, targets = x.astype("float32"), np.eye(num_classes, dtype="float32")[y]
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
    shape, num_classes = _shape_of(build_model())
    x, y = _images(cfg["batch_size"] * steps + 8, shape, num_classes)
    with tempfile.TemporaryDirectory() as tmp:
        _, state = training.fit(build_model, x[:-8], y[:-8], x[-8:], y[-8:], cfg, tmp, num_classes)
    return cfg["batch_size"] * steps / min(h["seconds"] for h in state.history[1:])


def prediction_images_per_second(build_model, n=2048):
    """Images per second of `predict` with each TTA (views counted once per image)."""
    from fer_kaggle.training import predict
    from fer_kaggle.training.tta import usable_ttas

    model = build_model()
    x, _ = _images(n, *_shape_of(model))
    predict(model, x[:256], tta="none")  # trace
    out = {}
    for tta in usable_ttas(*x.shape[1:3]):
        t0 = time.perf_counter()
        predict(model, x, tta=tta)
        out[tta] = n / (time.perf_counter() - t0)
    return out
