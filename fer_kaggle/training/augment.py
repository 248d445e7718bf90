"""Augmentation inside the compiled training step, and the host-side epoch order.

`Augment` is a layer put in front of the model for training: horizontal flip, shift, zoom
and rotation as one affine warp per image, and random erasing, all drawn with keras.random
from a seed generator whose state the loop sets at every epoch's start to (seed, epoch):
every draw is a function of (seed, epoch, step), so a resumed run sees the same images.
It is the identity at inference, and the fold model is saved without it.
"""

import math

import keras
import numpy as np
from keras import layers, ops

EPOCH_STRIDE = 1 << 20  # seed-generator counter values reserved for one epoch's draws


@keras.saving.register_keras_serializable(package="fer_kaggle")
class Augment(layers.Layer):
    """Random flip/shift/zoom/rotation (one bilinear affine warp, edges repeated) and erasing,
    on raw pixels, in training only."""

    def __init__(self, flip=True, shift=0.1, zoom=0.1, rotation=0.05, erasing=0.0, seed=0, **kwargs):
        kwargs.setdefault("dtype", "float32")  # pixels and warps in float32 under any mixed-precision policy
        super().__init__(**kwargs)
        self.flip, self.shift, self.zoom, self.rotation, self.erasing = flip, shift, zoom, rotation, erasing
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    @property
    def warps(self):
        return bool(self.flip or self.shift or self.zoom or self.rotation)

    def start_epoch(self, epoch):
        """Make this epoch's draws depend on (seed, epoch) only."""
        self.generator.state.assign(np.array([self.seed, epoch * EPOCH_STRIDE], dtype=self.generator.state.dtype))

    def call(self, x, training=False):
        if not training or not (self.warps or self.erasing):
            return x
        x = ops.cast(x, self.compute_dtype)
        if self.warps:
            x = self._warp(x)
        if self.erasing:
            x = self._erase(x)
        return x

    def _uniform(self, n, low, high):
        return keras.random.uniform((n,), low, high, seed=self.generator)

    def _warp(self, x):
        n, h, w = ops.shape(x)[0], x.shape[1], x.shape[2]
        one, zero = ops.ones((n,)), ops.zeros((n,))
        mirror = ops.where(self._uniform(n, 0.0, 1.0) < 0.5, -one, one) if self.flip else one
        scale = self._uniform(n, 1.0 - self.zoom, 1.0 + self.zoom) if self.zoom else one
        angle = self._uniform(n, -2 * math.pi * self.rotation, 2 * math.pi * self.rotation) if self.rotation else zero
        # whole-pixel shifts: without zoom or rotation the warp then moves pixels exactly, with no blur
        tx = ops.round(self._uniform(n, -self.shift * w, self.shift * w)) if self.shift else zero
        ty = ops.round(self._uniform(n, -self.shift * h, self.shift * h)) if self.shift else zero
        cos, sin = ops.cos(angle) / scale, ops.sin(angle) / scale
        # output pixel (px, py) samples the input at A @ ((px, py) - c) + c + t, A = rotation / zoom, x mirrored
        a0, a1, b0, b1 = cos * mirror, -sin, sin * mirror, cos
        cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
        a2 = cx - a0 * cx - a1 * cy + tx
        b2 = cy - b0 * cx - b1 * cy + ty
        transform = ops.stack([a0, a1, a2, b0, b1, b2, zero, zero], axis=1)
        return ops.image.affine_transform(x, transform, interpolation="bilinear", fill_mode="nearest",
                                          data_format="channels_last")

    def _erase(self, x):
        """With probability `erasing`, one rectangle (10-40% of each side) set to the image's mean."""
        n, h, w = ops.shape(x)[0], x.shape[1], x.shape[2]
        apply = ops.cast(self._uniform(n, 0.0, 1.0) < self.erasing, x.dtype)
        eh, ew = self._uniform(n, 0.1, 0.4) * h, self._uniform(n, 0.1, 0.4) * w
        y0, x0 = self._uniform(n, 0.0, 1.0) * (h - eh), self._uniform(n, 0.0, 1.0) * (w - ew)
        rows = ops.cast(ops.arange(h), x.dtype)[None, :, None]
        cols = ops.cast(ops.arange(w), x.dtype)[None, None, :]
        inside = ((rows >= y0[:, None, None]) & (rows < (y0 + eh)[:, None, None])
                  & (cols >= x0[:, None, None]) & (cols < (x0 + ew)[:, None, None]))
        mask = ops.cast(inside, x.dtype)[..., None] * apply[:, None, None, None]
        mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
        return x * (1 - mask) + mean * mask

    def get_config(self):
        return {**super().get_config(), "flip": self.flip, "shift": self.shift, "zoom": self.zoom,
                "rotation": self.rotation, "erasing": self.erasing, "seed": self.seed}


def with_augmentation(model, cfg):
    """The training model: `Augment` in front of `model` (which stays a layer of it, saved alone)."""
    inputs = keras.Input(shape=model.input_shape[1:], name="pixels")
    augment = Augment(cfg["flip"], cfg["shift"], cfg["zoom"], cfg["rotation"], cfg["erasing"], seed=cfg["seed"],
                      name="augment")
    return keras.Model(inputs, model(augment(inputs)), name="training")


def inner_model(training_model):
    """The model without its augmentation layer: what predicts and is saved."""
    return training_model.layers[-1]


def class_weights(labels, num_classes):
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    return (len(labels) / (num_classes * np.maximum(counts, 1))).astype(np.float32)


def epoch_arrays(x, y, cfg, epoch, num_classes, sample_weight=None):
    """The host side of one epoch: (images, targets, sample weights or None) in batch order,
    whole batches only (the rows left over are others in the next epoch's order). `y` holds
    labels (n,) or soft targets (n, classes); `sample_weight` (n,) weighs rows (pseudo-labels).
    The order and any mixup depend only on (seed, epoch)."""
    bs = cfg["batch_size"]
    order = np.random.default_rng([cfg["seed"], epoch, 0]).permutation(len(x))
    order = order[: max(1, len(x) // bs) * bs] if len(x) >= bs else order
    images = x[order, :, :, None].astype("float32")
    soft = np.ndim(y) == 2
    targets = y[order].astype("float32") if soft else np.eye(num_classes, dtype="float32")[y[order]]
    if cfg["mixup"]:  # each batch mixed with a permutation of itself
        for i, start in enumerate(range(0, len(images), bs)):
            batch = slice(start, start + bs)
            rng = np.random.default_rng([cfg["seed"], epoch, 0, i])
            lam = np.float32(rng.beta(cfg["mixup"], cfg["mixup"]))
            partner = rng.permutation(len(images[batch]))
            images[batch] = lam * images[batch] + (1 - lam) * images[batch][partner]
            targets[batch] = lam * targets[batch] + (1 - lam) * targets[batch][partner]
    weights = None
    if cfg["class_weight"] == "balanced":
        labels = np.argmax(y, axis=1) if soft else y
        weights = class_weights(labels, num_classes)[labels[order]]
    if sample_weight is not None:
        row_weights = np.asarray(sample_weight, dtype="float32")[order]
        weights = row_weights if weights is None else weights * row_weights
    return images, targets, weights
