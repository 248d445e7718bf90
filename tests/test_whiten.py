"""The `whiten` setting: the stem convolution starts from the training patches' whitening and
stays frozen; networks without a stem are left as they are."""

import keras
import numpy as np

from fer_kaggle import training
from fer_kaggle.models import create_model
from fer_kaggle.training.whiten import stem_of, whiten_stem


def correlated_images(n=96, side=16, seed=0):
    """RGB images whose channels and neighbouring pixels are strongly correlated (as photos are)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, side // 2, side // 2, 1)).repeat(2, axis=1).repeat(2, axis=2)
    pixels = 128 + 40 * base + rng.normal(scale=8, size=(n, side, side, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8), rng.integers(0, 3, n)


def stem_pre_activations(model, images):
    owner, stem = stem_of(model)
    return np.asarray(keras.Model(owner.inputs, stem.output).predict(images, verbose=0), np.float64)


def test_the_whitened_stem_outputs_decorrelated_unit_variance_patches_and_stays_frozen(tmp_path):
    x, y = correlated_images()
    model = create_model("pool_first16", x.shape[1:], 3)
    assert whiten_stem(model, x)
    out = stem_pre_activations(model, x).reshape(-1, 24)
    cov = out[:, :12].T @ out[:, :12] / len(out)  # the 12 eigen-filters of 2x2x3 patches
    values = np.diag(cov)
    assert np.allclose(out[:, 12:], -out[:, :12])  # each filter's negative beside it
    assert np.abs(cov - np.diag(values)).max() < 1e-3  # decorrelated
    big = values > 0.5  # unit variance, but for directions with eigenvalues near WHITEN_EPS
    assert big.sum() >= 6 and np.allclose(values[big], 1.0, atol=0.05)
    assert np.all(values <= 1.0 + 1e-6)  # lambda / (lambda + WHITEN_EPS)

    cfg = training.resolve_config(epochs=1, batch_size=32, whiten=True, val_every=1)
    fitted, _ = training.fit(lambda: create_model("pool_first16", x.shape[1:], 3), x[:64], y[:64], x[64:], y[64:],
                             cfg, tmp_path / "run", 3)
    kernel = stem_of(fitted)[1].get_weights()[0]
    fresh = create_model("pool_first16", x.shape[1:], 3)
    whiten_stem(fresh, x[:64])  # the fold's training rows only: what fit whitened on
    assert np.allclose(kernel, stem_of(fresh)[1].get_weights()[0], atol=1e-5)  # frozen through training
    fitted.save(tmp_path / "saved.keras")  # what a checkpoint keeps: a resumed run trains it no more
    assert not stem_of(keras.models.load_model(tmp_path / "saved.keras"))[1].trainable


def test_a_network_without_a_stem_is_left_as_it_is():
    x, _ = correlated_images()
    model = create_model("cnn_tiny", x.shape[1:], 3, filters=(4, 8))
    before = [w.copy() for w in model.get_weights()]
    assert not whiten_stem(model, x)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
