"""Augmentation inside the compiled training step, and the host-side epoch order.

`Augment` is a layer put in front of the model for training: horizontal flip, shift, zoom
and rotation as one affine warp per image, random erasing, and mixup/cutmix with a partner
from the same batch, all drawn with keras.random from a seed generator whose state the loop
sets at every epoch's start to (seed, epoch): every draw is a function of (seed, epoch,
step), so a resumed run sees the same images. Mixing also mixes the targets: the training
model's loss takes them from the layer's draws of the same step (`mix_targets_in_loss`).
Last, with progressive resizing, the batch is scaled down to the epoch's size (`resolution`).
It is the identity at inference, and the fold model is saved without it.
"""

import math

import keras
import numpy as np
from keras import layers, ops

from fer_kaggle.rows import chunk_rows

EPOCH_STRIDE = 1 << 20  # seed-generator counter values reserved for one epoch's draws


@keras.saving.register_keras_serializable(package="fer_kaggle")
class Augment(layers.Layer):
    """Random flip/shift/zoom/rotation (one bilinear affine warp, edges repeated), erasing, and
    mixup/cutmix (Beta(alpha, alpha) shares; with both on, each image gets one of the two at
    random), on raw pixels, in training only."""

    def __init__(self, flip=True, shift=0.1, zoom=0.1, rotation=0.05, erasing=0.0, mixup=0.0, cutmix=0.0, seed=0,
                 vflip=False, rot90=False, **kwargs):
        kwargs.setdefault("dtype", "float32")  # pixels and warps in float32 under any mixed-precision policy
        super().__init__(**kwargs)
        self.flip, self.shift, self.zoom, self.rotation, self.erasing = flip, shift, zoom, rotation, erasing
        self.mixup, self.cutmix = mixup, cutmix
        self.vflip, self.rot90 = vflip, rot90
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)
        self._set_mixed(None)
        self.size = None  # pixels per side the training images leave at (progressive resizing); None: as they come

    @property
    def warps(self):
        return bool(self.flip or self.shift or self.zoom or self.rotation or self.vflip or self.rot90)

    @property
    def mixes(self):
        return bool(self.mixup or self.cutmix)

    def _set_mixed(self, value):
        """This step's (partner row, own share) per image, for `mix_targets` in the same traced
        step (a plain attribute: not a tracked layer state)."""
        object.__setattr__(self, "_mixed", value)

    def start_epoch(self, epoch, size=None):
        """Make this epoch's draws depend on (seed, epoch) only; its images leave at `size`
        pixels per side (None: their own). Returns whether the size changed: a traced training
        step must then be traced again."""
        self.generator.state.assign(np.array([self.seed, epoch * EPOCH_STRIDE], dtype=self.generator.state.dtype))
        changed, self.size = size != self.size, size
        return changed

    def call(self, x, training=False):
        self._set_mixed(None)
        resizes = self.size is not None and self.size != x.shape[1]
        if not training or not (self.warps or self.erasing or self.mixes or resizes):
            return x
        x = ops.cast(x, self.compute_dtype)
        if self.warps:
            x = self._warp(x)
        if self.erasing:
            x = self._erase(x)
        if self.mixes:
            x = self._mix(x)
        if resizes:
            x = ops.image.resize(x, (self.size, self.size), interpolation="bilinear", antialias=True,
                                 data_format="channels_last")
        return x

    def mix_targets(self, y):
        """The targets of the images this step's `call` mixed: each row's own share of its
        target plus the rest of its partner's (unchanged when nothing was mixed)."""
        if self._mixed is None:
            return y
        partner, own = self._mixed
        self._set_mixed(None)
        own = ops.cast(own, y.dtype)[:, None]
        return own * y + (1 - own) * ops.take(y, partner, axis=0)

    def _uniform(self, n, low, high):
        return keras.random.uniform((n,), low, high, seed=self.generator)

    def _warp(self, x):
        n, h, w = ops.shape(x)[0], x.shape[1], x.shape[2]
        one, zero = ops.ones((n,)), ops.zeros((n,))
        mirror = ops.where(self._uniform(n, 0.0, 1.0) < 0.5, -one, one) if self.flip else one
        scale = self._uniform(n, 1.0 - self.zoom, 1.0 + self.zoom) if self.zoom else one
        angle = self._uniform(n, -2 * math.pi * self.rotation, 2 * math.pi * self.rotation) if self.rotation else zero
        if self.rot90:  # a quarter turn, 0-3 of them (drawn after the others: their draws stay as they were)
            angle = angle + ops.floor(self._uniform(n, 0.0, 4.0)) * (math.pi / 2)
        flipped = ops.where(self._uniform(n, 0.0, 1.0) < 0.5, -one, one) if self.vflip else one
        # whole-pixel shifts: without zoom or rotation the warp then moves pixels exactly, with no blur
        tx = ops.round(self._uniform(n, -self.shift * w, self.shift * w)) if self.shift else zero
        ty = ops.round(self._uniform(n, -self.shift * h, self.shift * h)) if self.shift else zero
        cos, sin = ops.cos(angle) / scale, ops.sin(angle) / scale
        # output pixel (px, py) samples the input at A @ ((px, py) - c) + c + t, A = rotation / zoom, x mirrored
        a0, a1, b0, b1 = cos * mirror, -sin * flipped, sin * mirror, cos * flipped
        cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
        a2 = cx - a0 * cx - a1 * cy + tx
        b2 = cy - b0 * cx - b1 * cy + ty
        if keras.backend.backend() != "tensorflow":  # JAX's affine_transform (map_coordinates) is 9x slower
            return _bilinear_warp(x, a0, a1, a2, b0, b1, b2)
        transform = ops.stack([a0, a1, a2, b0, b1, b2, zero, zero], axis=1)  # a fused kernel: 2.4x the gathers
        return ops.image.affine_transform(x, transform, interpolation="bilinear", fill_mode="nearest",
                                          data_format="channels_last")

    def _erase(self, x):
        """With probability `erasing`, one rectangle (10-40% of each side) set to the image's mean."""
        n, h, w = ops.shape(x)[0], x.shape[1], x.shape[2]
        apply = ops.cast(self._uniform(n, 0.0, 1.0) < self.erasing, x.dtype)
        eh, ew = self._uniform(n, 0.1, 0.4) * h, self._uniform(n, 0.1, 0.4) * w
        y0, x0 = self._uniform(n, 0.0, 1.0) * (h - eh), self._uniform(n, 0.0, 1.0) * (w - ew)
        mask = _box_mask(x, y0, y0 + eh, x0, x0 + ew) * apply[:, None, None, None]
        mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
        return x * (1 - mask) + mean * mask

    def _mix(self, x):
        """Each image mixed with a partner from the same batch (a random permutation): mixup
        blends the two by a share drawn from Beta(mixup, mixup); cutmix pastes the partner's
        pixels into a box whose area is a share drawn from Beta(cutmix, cutmix) (clipped at the
        edges: the image's own share is counted from the pixels it keeps)."""
        n, h, w = ops.shape(x)[0], x.shape[1], x.shape[2]
        partner = keras.random.shuffle(ops.arange(n), seed=self.generator)
        other = ops.take(x, partner, axis=0)
        if self.mixup:
            lam = keras.random.beta((n,), self.mixup, self.mixup, seed=self.generator)
            blended, blended_own = x + (1 - lam)[:, None, None, None] * (other - x), lam
        if self.cutmix:
            side = ops.sqrt(1 - keras.random.beta((n,), self.cutmix, self.cutmix, seed=self.generator))
            cy, cx = self._uniform(n, 0.0, float(h)), self._uniform(n, 0.0, float(w))
            mask = _box_mask(x, cy - side * h / 2, cy + side * h / 2, cx - side * w / 2, cx + side * w / 2)
            pasted, pasted_own = x * (1 - mask) + other * mask, 1 - ops.mean(mask, axis=(1, 2, 3))
        if self.mixup and self.cutmix:
            cut = self._uniform(n, 0.0, 1.0) < 0.5
            x, own = ops.where(cut[:, None, None, None], pasted, blended), ops.where(cut, pasted_own, blended_own)
        else:
            x, own = (blended, blended_own) if self.mixup else (pasted, pasted_own)
        self._set_mixed((partner, own))
        return x

    def get_config(self):
        return {**super().get_config(), "flip": self.flip, "shift": self.shift, "zoom": self.zoom,
                "rotation": self.rotation, "erasing": self.erasing, "mixup": self.mixup, "cutmix": self.cutmix,
                "seed": self.seed, "vflip": self.vflip, "rot90": self.rot90}


def _bilinear_warp(x, a0, a1, a2, b0, b1, b2):
    """Each image (n, h, w, c) sampled at (a0 px + a1 py + a2, b0 px + b1 py + b2) for output
    pixel (px, py), bilinear, edges repeated: four gathers from the flattened image."""
    n, h, w, c = ops.shape(x)[0], x.shape[1], x.shape[2], x.shape[3]
    py = ops.cast(ops.arange(h), x.dtype)[None, :, None]
    px = ops.cast(ops.arange(w), x.dtype)[None, None, :]
    sx = a0[:, None, None] * px + a1[:, None, None] * py + a2[:, None, None]
    sy = b0[:, None, None] * px + b1[:, None, None] * py + b2[:, None, None]
    x0, y0 = ops.floor(sx), ops.floor(sy)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
    flat = ops.reshape(x, (n, h * w, c))

    def at(yy, xx):
        yy = ops.cast(ops.clip(yy, 0, h - 1), "int32")
        xx = ops.cast(ops.clip(xx, 0, w - 1), "int32")
        index = ops.reshape(yy * w + xx, (n, h * w, 1))
        return ops.reshape(ops.take_along_axis(flat, ops.broadcast_to(index, (n, h * w, c)), axis=1), (n, h, w, c))

    top = at(y0, x0) * (1 - fx) + at(y0, x0 + 1) * fx
    bottom = at(y0 + 1, x0) * (1 - fx) + at(y0 + 1, x0 + 1) * fx
    return top * (1 - fy) + bottom * fy


def _box_mask(x, y0, y1, x0, x1):
    """(n, h, w, 1): 1 inside each image's box [y0, y1) x [x0, x1) (pixel rows and columns), else 0."""
    h, w = x.shape[1], x.shape[2]
    rows = ops.cast(ops.arange(h), x.dtype)[None, :, None]
    cols = ops.cast(ops.arange(w), x.dtype)[None, None, :]
    inside = ((rows >= y0[:, None, None]) & (rows < y1[:, None, None])
              & (cols >= x0[:, None, None]) & (cols < x1[:, None, None]))
    return ops.cast(inside, x.dtype)[..., None]


def with_augmentation(model, cfg):
    """The training model: `Augment` in front of `model` (which stays a layer of it, saved alone)."""
    inputs = keras.Input(shape=model.input_shape[1:], name="pixels")
    augment = Augment(cfg["flip"], cfg["shift"], cfg["zoom"], cfg["rotation"], cfg["erasing"], cfg["mixup"],
                      cfg["cutmix"], seed=cfg["seed"], vflip=cfg["vflip"], rot90=cfg["rot90"], name="augment")
    return keras.Model(inputs, model(augment(inputs)), name="training")


def mix_targets_in_loss(training_model):
    """Make the training model's loss see the targets its `Augment` layer mixed in the same step
    (Keras's `compute_loss`, wrapped on this instance: again after every load of a checkpoint)."""
    augment = training_model.get_layer("augment")
    if not augment.mixes:
        return
    compute_loss = training_model.compute_loss

    def mixed_compute_loss(x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if training:
            y = augment.mix_targets(y)
        return compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)

    training_model.compute_loss = mixed_compute_loss


def inner_model(training_model):
    """The model without its augmentation layer: what predicts and is saved."""
    return training_model.layers[-1]


def class_weights(labels, num_classes):
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    return (len(labels) / (num_classes * np.maximum(counts, 1))).astype(np.float32)


def epoch_order(n, cfg, epoch):
    """The rows of one epoch in batch order: whole batches only (the rows left over are others
    in the next epoch's order); depends only on (seed, epoch)."""
    bs = cfg["batch_size"]
    order = np.random.default_rng([cfg["seed"], epoch, 0]).permutation(n)
    return order[: max(1, n // bs) * bs] if n >= bs else order


def epoch_chunks(x, y, cfg, epoch, num_classes, sample_weight=None, max_bytes=None):
    """The host side of one epoch, in consecutive chunks of whole batches holding at most
    `max_bytes` of pixels (rows.CHUNK_BYTES): (images, targets, sample weights or None) each,
    the images gathered from `x` (an array, a memory map, or `Rows` of them) in the data's
    dtype (the training step casts them on the device that trains). `y` holds labels (n,) or
    soft targets (n, classes); `sample_weight` (n,) weighs rows (pseudo-labels)."""
    order = epoch_order(len(x), cfg, epoch)
    soft = np.ndim(y) == 2
    row_weights = None
    if cfg["class_weight"] == "balanced":
        labels = np.argmax(y, axis=1) if soft else np.asarray(y)
        row_weights = class_weights(labels, num_classes)[labels]
    if sample_weight is not None:
        given = np.asarray(sample_weight, dtype="float32")
        row_weights = given if row_weights is None else row_weights * given
    y, step = np.asarray(y), chunk_rows(x, cfg["batch_size"], max_bytes)
    for start in range(0, len(order), step):
        rows = order[start: start + step]
        images = x[rows]  # (rows, h, w, c) in the pixels' own dtype (uint8: a quarter of float32's bytes)
        targets = y[rows].astype("float32") if soft else np.eye(num_classes, dtype="float32")[y[rows]]
        yield images, targets, None if row_weights is None else row_weights[rows].astype("float32")


def epoch_arrays(x, y, cfg, epoch, num_classes, sample_weight=None):
    """One epoch's (images, targets, weights) in one piece, whatever its size (a step's probe)."""
    return next(epoch_chunks(x, y, cfg, epoch, num_classes, sample_weight, max_bytes=float("inf")))
