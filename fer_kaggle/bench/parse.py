"""Reading benchmark. For FER's pixel CSVs: the fast reader and the cache against pandas plus a
split per row. For any other layout: reading the competition cold (decoding every image)
against a start from the cache (memory-mapped arrays)."""

import tempfile
import time
from pathlib import Path

import numpy as np

from fer_kaggle.data.cache import load_cached
from fer_kaggle.data.files import CompetitionFiles
from fer_kaggle.data.parse import read_pixel_csv
from fer_kaggle.data.readers import NTU


def naive_read_train(path):
    """The baseline: pandas.read_csv, then a Python split per row."""
    import pandas as pd

    frame = pd.read_csv(path)
    pixels = np.array([np.array(s.split(), dtype=np.uint8) for s in frame["feature"]])
    side = int(round(pixels.shape[1] ** 0.5))
    return frame["label"].to_numpy(), pixels.reshape(-1, side, side, 1)


def fast_read_train(path):
    table = read_pixel_csv(Path(path).read_bytes(), str(path), ("label", "feature"))
    return table.keys, table.pixels


def _timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def bench_parse(source, repeats=1):
    """Rows of (name, seconds, ratio to the baseline) for reading `source`'s competition."""
    source = Path(source)
    files = None if source.suffix.lower() == ".npz" else CompetitionFiles(source)
    if files is None or not NTU().detect(files):
        with tempfile.TemporaryDirectory() as tmp:
            cold_s, _ = _timed(load_cached, source, Path(tmp) / "cache")
            cache_s, _ = min((_timed(load_cached, source, Path(tmp) / "cache") for _ in range(repeats)),
                             key=lambda r: r[0])
        return [("read and decode, cold (baseline)", cold_s, 1.0),
                ("cache load (sha256 + memory map)", cache_s, cold_s / cache_s)]
    with tempfile.TemporaryDirectory() as tmp:
        train_csv = Path(tmp) / "train.csv"
        train_csv.write_bytes(files.read(files.find("train.csv")))
        naive_s, (naive_y, naive_x) = min((_timed(naive_read_train, train_csv) for _ in range(repeats)), key=lambda r: r[0])
        fast_s, (fast_y, fast_x) = min((_timed(fast_read_train, train_csv) for _ in range(repeats)), key=lambda r: r[0])
        if not (np.array_equal(naive_y, fast_y) and np.array_equal(naive_x, fast_x)):
            raise AssertionError("the fast reader disagrees with the naive reader")
        side = fast_x.shape[1]
        (Path(tmp) / "test.csv").write_bytes(b"id,feature\n0," + b" ".join([b"0"] * side * side) + b"\n")
        load_cached(tmp, Path(tmp) / "cache")  # fill the cache
        cache_s, _ = _timed(load_cached, tmp, Path(tmp) / "cache")
    return [
        ("pandas + split per row (baseline)", naive_s, 1.0),
        ("fer_kaggle parser, cold", fast_s, naive_s / fast_s),
        ("cache load (sha256 + memory map)", cache_s, naive_s / cache_s),
    ]
