import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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
