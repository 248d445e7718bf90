"""Training and prediction read a memory-mapped cache in bounded chunks: a fold's rows stay
row numbers until a chunk gathers them, and a chunked epoch trains as the whole one does."""

import numpy as np
import pytest

from fer_kaggle import rows, training
from fer_kaggle.rows import Rows, rows_of
from fer_kaggle.training.augment import epoch_arrays, epoch_chunks


def memmapped(tmp_path, n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.uint8, shape=(n, 48, 48, 1))
    x[:] = rng.integers(0, 256, x.shape, dtype=np.uint8)
    x.flush()
    return np.load(tmp_path / "x.npy", mmap_mode="r"), rng.integers(0, 7, n)


def test_rows_gather_what_fancy_indexing_would_from_one_array_or_two(tmp_path):
    x, _ = memmapped(tmp_path)
    extra = np.random.default_rng(1).integers(0, 256, (20, 48, 48, 1), dtype=np.uint8)
    train_rows, test_rows = np.array([200, 3, 17, 3, 90]), np.array([19, 0, 5])
    view = Rows(x, train_rows, more=[(extra, test_rows)])
    expected = np.concatenate([x[train_rows], extra[test_rows]])
    assert len(view) == 8 and view.shape == (8, 48, 48, 1) and view.dtype == np.uint8
    positions = np.array([7, 0, 4, 5, 1, 1])
    assert np.array_equal(view[positions], expected[positions])
    assert np.array_equal(view[2:6], expected[2:6]) and np.array_equal(np.asarray(view), expected)
    with pytest.raises(ValueError, match="different image shapes"):
        Rows(x, train_rows, more=[(extra[:, :24], test_rows)])


def test_an_epoch_in_chunks_is_the_whole_epoch_in_the_same_order_each_chunk_within_its_bound(tmp_path):
    x, y = memmapped(tmp_path)
    view = rows_of(x, np.arange(10, 250))  # 240 rows: three whole batches of 64, 48 left for the next epoch
    cfg = training.resolve_config(batch_size=64, class_weight="balanced")
    whole = epoch_arrays(view, y[10:250], cfg, 3, 7)
    bound = 100 * 48 * 48  # bytes of 100 rows: chunks of one whole batch
    parts = list(epoch_chunks(view, y[10:250], cfg, 3, 7, max_bytes=bound))
    assert [len(p[0]) for p in parts] == [64, 64, 64] and all(p[0].nbytes <= bound for p in parts)
    for i in range(3):
        assert np.array_equal(np.concatenate([p[i] for p in parts]), whole[i])
    assert len(whole[0]) == 192


def test_training_and_prediction_in_small_chunks_end_with_the_weights_and_probabilities_of_one_chunk(
        tmp_path, monkeypatch):
    from fer_kaggle.models import create_model

    x, y = memmapped(tmp_path)
    cfg = training.resolve_config(epochs=2, batch_size=64, shift=0.1, flip=True)
    train, valid = rows_of(x, np.arange(192)), rows_of(x, np.arange(192, 256))

    def build():
        return create_model("cnn_tiny", (48, 48, 1), 7, filters=(4, 8))

    whole, state = training.fit(build, train, y[:192], valid, y[192:], cfg, tmp_path / "whole", 7)
    expected = training.predict(whole, valid, tta="flip+crops")
    monkeypatch.setattr(rows, "CHUNK_BYTES", 64 * 48 * 48)  # one batch of pixels at a time
    chunked, chunked_state = training.fit(build, train, y[:192], valid, y[192:], cfg, tmp_path / "chunked", 7)
    for a, b in zip(whole.get_weights(), chunked.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(training.predict(chunked, valid, tta="flip+crops"), expected, rtol=1e-5, atol=1e-6)
    assert [round(h["loss"], 4) for h in chunked_state.history] == [round(h["loss"], 4) for h in state.history]
