"""The parsed-array cache: `<data_dir>/cache/<key>.npz`, keyed by the source files' sha256."""

import hashlib
from pathlib import Path

import numpy as np

from fer_kaggle import atomic
from fer_kaggle.data.source import Competition, fingerprint, read_competition

PARSER_VERSION = "1"  # bump when parsing changes, so old caches are not trusted
_ARRAYS = ("x_train", "y_train", "x_test", "test_ids", "sample_ids", "test_labels")


def cache_path(source, cache_dir) -> Path:
    key = hashlib.sha256(f"{fingerprint(source)}:{PARSER_VERSION}".encode()).hexdigest()
    return Path(cache_dir) / f"{key}.npz"


def load_cached(source, cache_dir) -> Competition:
    """Read the competition at `source`, from the cache when its files are unchanged."""
    path = cache_path(source, cache_dir)
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in _ARRAYS if k in z.files}
            return Competition(train_sha256=str(z["train_sha256"]), source=str(source), **arrays)
    comp = read_competition(source)
    arrays = {k: getattr(comp, k) for k in _ARRAYS if getattr(comp, k) is not None}
    atomic.write_npz(path, train_sha256=np.array(comp.train_sha256), **arrays)
    return comp
