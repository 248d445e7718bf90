"""The parsed-array cache, the data folder, the folds, and the demo generator."""

import numpy as np
import pytest

from conftest import ntu_files, write_files
from fer_kaggle.data import cache, load_folds, make_folds, write_folds
from fer_kaggle.data import source as source_module
from fer_kaggle.data import store
from fer_kaggle.data.folds import inner_folds, rare_classes
from fer_kaggle.data.demo import FER2013_COUNTS, generate
from fer_kaggle.errors import DataError, FoldsError


def test_cache_hit_skips_parsing_and_a_changed_file_invalidates_it(tmp_path, monkeypatch):
    files, _, _ = ntu_files()
    directory = write_files(tmp_path / "comp", files)
    first = cache.load_cached(directory, tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*/spec.json"))) == 1
    assert isinstance(first.x_train, np.memmap)  # the cache is opened memory-mapped

    def no_parse(*args, **kwargs):
        raise AssertionError("parsed again despite a valid cache")

    monkeypatch.setattr(cache, "read_competition", no_parse)
    hit = cache.load_cached(directory, tmp_path / "cache")
    assert np.array_equal(hit.x_train, first.x_train) and hit.train_sha256 == first.train_sha256
    assert np.array_equal(hit.sample_ids, first.sample_ids)

    monkeypatch.setattr(cache, "read_competition", source_module.read_competition)
    text = files["train.csv"].replace("\n0,", "\n1,", 1)
    (directory / "train.csv").write_text(text)
    changed = cache.load_cached(directory, tmp_path / "cache")
    assert changed.y_train[0] == 1 and first.y_train[0] == 0
    assert changed.train_sha256 != first.train_sha256
    assert len(list((tmp_path / "cache").glob("*/spec.json"))) == 2


def test_prepare_writes_no_pointer_or_cache_for_bad_data(tmp_path):
    files, _, _ = ntu_files()
    files["train.csv"] = files["train.csv"].replace("\n3,", "\n9,", 1)
    bad = write_files(tmp_path / "bad", files)
    with pytest.raises(DataError, match="label 9"):
        store.prepare(tmp_path / "data", source=bad)
    assert not (tmp_path / "data").exists()


def test_prepare_falls_back_to_the_demo_and_remembers_the_source(tmp_path):
    comp, kind = store.prepare(tmp_path / "data")
    assert kind == "demo" and comp.is_demo
    assert comp.test_labels is not None and len(comp.test_labels) == len(comp.test_ids)
    again = store.load(tmp_path / "data")
    assert again.is_demo and again.train_sha256 == comp.train_sha256
    files, _, _ = ntu_files()
    real = write_files(tmp_path / "real", files)
    comp, kind = store.prepare(tmp_path / "data", source=real)
    assert kind == "local" and store.load(tmp_path / "data").train_sha256 == comp.train_sha256
    assert store.prepare(tmp_path / "data")[1] == "local"  # kept, not replaced by the demo


def test_load_without_data_says_what_to_run(tmp_path):
    with pytest.raises(DataError, match="fer-kaggle data"):
        store.load(tmp_path / "data")


def test_folds_are_stratified_and_deterministic():
    labels = np.repeat(np.arange(7), [50, 6, 40, 90, 60, 35, 61])
    folds = make_folds(labels, k=5, seed=0)
    assert np.array_equal(folds, make_folds(labels, k=5, seed=0))
    assert not np.array_equal(folds, make_folds(labels, k=5, seed=1))
    for c in range(7):
        per_fold = np.bincount(folds[labels == c], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1, (c, per_fold)


def test_a_class_of_fewer_rows_than_folds_has_each_row_in_a_fold_of_its_own():
    labels = np.array([0] * 40 + [1] * 3 + [2] + [3] * 30)
    folds = make_folds(labels, k=5, seed=0)
    assert len(set(folds[labels == 1])) == 3  # three rows, three folds
    for c in (0, 3):
        assert np.ptp(np.bincount(folds[labels == c], minlength=5)) <= 1  # the others stratified as before
    assert rare_classes(labels, 5).tolist() == [1, 2]
    with pytest.raises(FoldsError, match="no class has 5 rows"):
        make_folds(np.array([0] * 4 + [1] * 4), k=5)
    # a holdout's rows with a rare class: its inner folds are stratified all the same
    inner = inner_folds(np.zeros(len(labels), int), labels, k=5)
    assert np.ptp(np.bincount(inner[labels == 0], minlength=5)) <= 1 and len(set(inner[labels == 1])) == 3


def test_stale_folds_are_refused_with_a_fix(tmp_path):
    labels = np.arange(40) % 4
    a, b = {"train_sha256": "a" * 64, "spec_sha256": "s" * 64}, {"train_sha256": "b" * 64, "spec_sha256": "s" * 64}
    folds, written = write_folds(tmp_path, labels, a, k=4, seed=3)
    assert written and (tmp_path / "folds.csv").read_text().startswith("row,fold\n0,")
    assert np.array_equal(load_folds(tmp_path, a, 40), folds)
    assert not write_folds(tmp_path, labels, a, k=4, seed=3)[1]  # kept
    with pytest.raises(FoldsError, match="other train data.*--force"):
        load_folds(tmp_path, b, 40)
    with pytest.raises(FoldsError, match="another competition spec.*--force"):
        load_folds(tmp_path, {**a, "spec_sha256": "t" * 64}, 40)
    with pytest.raises(FoldsError, match="--force"):
        write_folds(tmp_path, labels, a, k=5, seed=3)
    folds5, written = write_folds(tmp_path, labels, b, k=5, seed=3, force=True)
    assert written and folds5.max() == 4


def test_demo_is_deterministic_imbalanced_like_fer2013_and_varied():
    x1, y1 = generate(700, seed=4)
    x2, y2 = generate(700, seed=4)
    assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    assert not np.array_equal(generate(50, seed=5)[0], x1[:50])
    share = np.bincount(y1, minlength=7) / len(y1)
    expected = FER2013_COUNTS / FER2013_COUNTS.sum()
    assert np.abs(share - expected).max() < 0.05
    assert x1.dtype == np.uint8 and x1.shape == (700, 48, 48) and x1.std() > 30
