"""The data folder: which competition the later stages read, and getting one there.

`<data_dir>/competition.json` names the source in use (a zip, directory or CSV, a demo
competition, or a Kaggle download) and the user's overrides of the spec; `<data_dir>/spec.json`
is the spec settled for it (for a person to read, or to edit and give back with `--spec`);
`<data_dir>/cache/` holds its parsed arrays.
"""

from pathlib import Path

from fer_kaggle import atomic
from fer_kaggle.data.cache import load_cached
from fer_kaggle.data.download import download_competition
from fer_kaggle.data.files import sha256_file
from fer_kaggle.errors import DataError
from fer_kaggle.spec import SPEC_FILE

POINTER = "competition.json"


def prepare(data_dir="data", source=None, download=None, demo=None, credentials=None, overrides=None):
    """Choose the competition and parse it (validating every row and image, filling the cache).

    Order: an explicit `source`; `demo` (a demo layout's name, True for the FER one); a
    `download` slug; the source already in use; a Kaggle download of `credentials`'s
    competition when credentials exist; else the demo. `overrides` change the spec (None:
    those already in use for the same source). Returns (competition, kind); `kind` is one of
    local, kaggle, demo. The pointer and spec are written only after the data parsed, so bad
    input leaves no artifact."""
    data_dir = Path(data_dir)
    pointer = atomic.read_json(data_dir / POINTER) if (data_dir / POINTER).exists() else None
    if source is not None:
        kind, path = "local", Path(source).resolve()
    elif demo:
        kind, path = "demo", _demo_dir(data_dir, "ntu" if demo is True else demo)
    elif download:
        kind, path = "kaggle", _download(download, data_dir)
    elif pointer is not None:
        kind, path = pointer["kind"], Path(pointer["source"])
        if kind == "demo" and not path.exists():
            path = _demo_dir(data_dir, pointer.get("demo", "ntu"))
    elif credentials:
        kind, path = "kaggle", _download(credentials, data_dir)
    else:
        kind, path = "demo", _demo_dir(data_dir, "ntu")
    if overrides is None:
        same = pointer is not None and Path(pointer["source"]) == path
        overrides = pointer.get("overrides", {}) if same else {}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    comp = load_cached(path, data_dir / "cache", overrides)
    comp.is_demo = kind == "demo"
    atomic.write_json(data_dir / SPEC_FILE, comp.spec.to_json())
    atomic.write_json(data_dir / POINTER, {"kind": kind, "source": str(path), "train_sha256": comp.train_sha256,
                                           "overrides": overrides, "demo": path.name if kind == "demo" else None,
                                           "spec_file_sha256": sha256_file(data_dir / SPEC_FILE)})  # last: commits both
    return comp, kind


def spec_in_use(data_dir="data"):
    """The spec of the competition in use, as `spec.json` shows it, or None where no competition
    was chosen (or `spec.json` is not the one its pointer committed: a stopped `data` run)."""
    from fer_kaggle.spec import read_spec

    pointer_path, spec_path = Path(data_dir) / POINTER, Path(data_dir) / SPEC_FILE
    if not pointer_path.exists() or not spec_path.exists():
        return None
    committed = atomic.read_json(pointer_path).get("spec_file_sha256")
    if committed is not None and committed != sha256_file(spec_path):
        return None
    return read_spec(spec_path)


def load(data_dir="data"):
    """The competition in use, as `prepare` chose it (fast: from the cache)."""
    pointer_path = Path(data_dir) / POINTER
    if not pointer_path.exists():
        raise DataError(pointer_path, "no competition chosen yet: run `fer-kaggle data` (or `make data`) first")
    pointer = atomic.read_json(pointer_path)
    comp = load_cached(pointer["source"], Path(data_dir) / "cache", pointer.get("overrides", {}))
    comp.is_demo = pointer["kind"] == "demo"
    return comp


def _demo_dir(data_dir, layout):
    from fer_kaggle.data.synthetic import DEMO_LAYOUTS, write_demo

    if layout not in DEMO_LAYOUTS:
        from fer_kaggle.errors import ConfigError

        raise ConfigError(f"unknown demo layout {layout!r}; choose one of {', '.join(DEMO_LAYOUTS)}")
    directory = Path(data_dir) / ("demo" if layout == "ntu" else f"demo-{layout}")
    if not (directory / "train.csv").exists() and not (directory / "COMPLETE").exists():
        write_demo(directory, layout)
    return directory.resolve()


def _download(competition, data_dir):
    return download_competition(competition, Path(data_dir) / competition)
