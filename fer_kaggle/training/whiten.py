"""Whitening initialization of a network's stem (the `whiten` setting): the convolution named
`stem` gets, as its filters, the eigenvectors of the training images' patch covariance scaled
by one over the square root of their eigenvalues, each with its negative (so that a GELU or
ReLU after it keeps both signs), and is then frozen. Its outputs start decorrelated with unit
variance: the first stage learns from whitened patches from the first step (the layout of
airbench, the fastest published CIFAR-10 trainers). The patches come from the fold's training
images only, not their labels."""

import numpy as np

WHITEN_IMAGES = 5000  # training images whose patches estimate the covariance
WHITEN_EPS = 5e-4  # added to the eigenvalues: the flattest directions are not blown up


def stem_of(model):
    """(the functional model that holds it, the layer) of the convolution named `stem` in
    `model` or a model nested in it; (None, None) where there is none."""
    for layer in model.layers:
        if layer.name == "stem" and hasattr(layer, "kernel"):
            return model, layer
        if hasattr(layer, "layers"):
            owner, stem = stem_of(layer)
            if stem is not None:
                return owner, stem
    return None, None


def patch_eigens(inputs, kernel_size, chunk=256):
    """Eigenvalues (largest first) and eigenvectors (columns) of the uncentered covariance of
    the (kh, kw, channels) patches of `inputs` (n, h, w, c), flattened in a Conv2D kernel's order
    (summed over chunks of images: the patches of all of them are never held at once)."""
    kh, kw = kernel_size
    n, h, w, c = inputs.shape
    moment, count = np.zeros((kh * kw * c,) * 2), 0
    for start in range(0, n, chunk):
        part = inputs[start:start + chunk]
        patches = np.stack([part[:, i:h - kh + 1 + i, j:w - kw + 1 + j, :] for i in range(kh) for j in range(kw)],
                           axis=3)
        flat = patches.reshape(-1, kh * kw * c).astype(np.float64)
        moment, count = moment + flat.T @ flat, count + len(flat)
    values, vectors = np.linalg.eigh(moment / count)
    return values[::-1], vectors[:, ::-1]


def whiten_stem(model, images, seed=0, batch_size=256):
    """Set the stem's filters of `model` (a built model or one behind its augmentation) from
    the patches of up to WHITEN_IMAGES of `images` (raw pixels, n, h, w, c), as they reach the
    stem through the model's normalization, and freeze the stem. The stem's filters are filled
    in pairs (vector, -vector), largest eigenvalue first, as many as it has room for; any left
    over keep their random start. Returns whether the model has a stem (nothing is changed
    where it has none)."""
    import keras

    owner, stem = stem_of(model)
    if stem is None:
        return False
    rows = np.random.default_rng(seed).permutation(len(images))[:WHITEN_IMAGES]
    to_stem = keras.Model(owner.inputs, stem.input)
    inputs = np.asarray(to_stem.predict(images[np.sort(rows)], batch_size=batch_size, verbose=0), dtype=np.float32)
    values, vectors = patch_eigens(inputs, stem.kernel_size)
    weights = stem.get_weights()
    kernel = np.array(weights[0])
    pairs = min(kernel.shape[-1] // 2, vectors.shape[1])
    scaled = (vectors[:, :pairs] / np.sqrt(np.maximum(values[:pairs], 0.0) + WHITEN_EPS)).reshape(*kernel.shape[:3], pairs)
    kernel[..., :pairs], kernel[..., pairs:2 * pairs] = scaled, -scaled
    stem.set_weights([kernel] + [np.zeros_like(w) for w in weights[1:]])
    stem.trainable = False
    return True
