import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Pretrained networks converted by the tests are cached in a folder of the run, not the user's.
os.environ.setdefault("FER_KAGGLE_CACHE", tempfile.mkdtemp(prefix="fer-kaggle-cache-"))

SHARED_ZIP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fer2013.zip"


def pixel_row(rng):
    return " ".join(map(str, rng.integers(0, 256, 2304).tolist()))


def ntu_files(n_train=30, n_test=10, seed=0):
    """Small NTU-layout CSV texts: {name: text}, plus the arrays they hold."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n_train) % 7
    train_rows = [(int(c), pixel_row(rng)) for c in labels]
    test_rows = [(i, pixel_row(rng)) for i in range(n_test)]
    files = {
        "train.csv": "label,feature\n" + "".join(f"{c},{p}\n" for c, p in train_rows),
        "test.csv": "id,feature\n" + "".join(f"{i},{p}\n" for i, p in test_rows),
        "sample_submission.csv": "id,label\n" + "".join(f"{i},0\n" for i in range(n_test)),
    }
    return files, train_rows, test_rows


def write_files(directory, files):
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_bytes(text.encode() if isinstance(text, str) else text)
    return directory


def write_zip(path, files):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            z.writestr(name, text)
    return path


@pytest.fixture
def ntu(tmp_path):
    files, train_rows, test_rows = ntu_files()
    return write_files(tmp_path / "ntu", files), train_rows, test_rows


def requires_shared_data():
    return pytest.mark.skipif(not SHARED_ZIP.exists(), reason="../shared/data/fer2013.zip is not here")


@pytest.fixture
def tiny_comp(tmp_path):
    """A small demo competition, chosen in tmp/data, with 3 folds in tmp/oof."""
    from fer_kaggle.atomic import read_json
    from fer_kaggle.data import store, write_folds
    from fer_kaggle.data.demo import write_demo_competition

    write_demo_competition(tmp_path / "demo", n_train=300, n_test=40, seed=3)
    comp, _ = store.prepare(tmp_path / "data", source=tmp_path / "demo")
    folds, _ = write_folds(tmp_path / "oof", comp.y_train, comp.identity, k=3)
    return comp, folds, read_json(tmp_path / "oof" / "folds.json"), tmp_path


def tiny_variant(name="cnn_tiny", **train):
    from fer_kaggle.variant import Variant
    from fer_kaggle.training import resolve_config

    cfg = resolve_config(**{"epochs": 2, "batch_size": 64, "early_stopping_patience": 0, **train})
    return Variant(name=name, model="cnn_tiny", model_hp={"filters": (4, 8)}, train=cfg)


@pytest.fixture(autouse=True, scope="session")
def one_thread_backend():
    """Every in-process test trains with one backend thread, as the fold jobs of the
    parallel-equality test do: TensorFlow keeps the thread count of its first op, so a test
    that trained first with more threads would change the serial run's last bits."""
    from fer_kaggle.training import configure_backend

    configure_backend(1)
