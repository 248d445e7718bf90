"""The data folder: which competition the later stages read, and getting one there.

`<data_dir>/competition.json` names the source in use (a zip, directory or CSV, the
demo competition, or a Kaggle download); `<data_dir>/cache/` holds its parsed arrays.
"""

from pathlib import Path

from fer_kaggle import atomic
from fer_kaggle.data.cache import load_cached
from fer_kaggle.data.demo import write_demo_competition
from fer_kaggle.data.download import download_competition
from fer_kaggle.errors import DataError

POINTER = "competition.json"


def prepare(data_dir="data", source=None, download=None, demo=False, credentials=None):
    """Choose the competition and parse it (validating every row, filling the cache).

    Order: an explicit `source`; `demo`; a `download` slug; the source already in use;
    a Kaggle download of `credentials`'s competition when credentials exist; else the demo.
    Returns (competition, kind); `kind` is one of local, kaggle, demo.
    The pointer is written only after the data parsed, so bad input leaves no artifact.
    """
    data_dir = Path(data_dir)
    if source is not None:
        kind, path = "local", Path(source).resolve()
    elif demo:
        kind, path = "demo", _demo_dir(data_dir)
    elif download:
        kind, path = "kaggle", _download(download, data_dir)
    elif (data_dir / POINTER).exists():
        pointer = atomic.read_json(data_dir / POINTER)
        kind, path = pointer["kind"], Path(pointer["source"])
        if kind == "demo" and not path.exists():
            path = _demo_dir(data_dir)
    elif credentials:
        kind, path = "kaggle", _download(credentials, data_dir)
    else:
        kind, path = "demo", _demo_dir(data_dir)
    comp = load_cached(path, data_dir / "cache")
    comp.is_demo = kind == "demo"
    atomic.write_json(data_dir / POINTER, {"kind": kind, "source": str(path), "train_sha256": comp.train_sha256})
    return comp, kind


def load(data_dir="data"):
    """The competition in use, as `prepare` chose it (fast: from the cache)."""
    pointer_path = Path(data_dir) / POINTER
    if not pointer_path.exists():
        raise DataError(pointer_path, "no competition chosen yet: run `fer-kaggle data` (or `make data`) first")
    pointer = atomic.read_json(pointer_path)
    comp = load_cached(pointer["source"], Path(data_dir) / "cache")
    comp.is_demo = pointer["kind"] == "demo"
    return comp


def _demo_dir(data_dir):
    directory = Path(data_dir) / "demo"
    if not (directory / "train.csv").exists():
        write_demo_competition(directory)
    return directory.resolve()


def _download(competition, data_dir):
    return download_competition(competition, Path(data_dir) / competition)
