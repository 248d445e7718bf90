"""Atomic writes: every artifact goes to a temporary file first, then is renamed into place,
so a killed run never leaves a half-written file that a later stage would trust."""

import errno
import glob
import io
import json
import os
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from fer_kaggle.errors import FerKaggleError


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        _fsync_file(tmp)  # whoever wrote it (numpy, Keras, a zip): its bytes reach the disk before its name
        fault_point(path)
        os.replace(tmp, path)
        fsync_dir(path.parent)  # and the rename itself survives a power cut
    except OSError as e:
        if e.errno == errno.ENOSPC:
            raise DiskFullError(f"the disk is full: {path} could not be written (nothing half-written was kept); "
                                f"free some space and run the same command again to resume") from None
        raise
    finally:
        for left in Path(tmp).parent.glob(glob.escape(Path(tmp).name) + "*"):  # and siblings a writer named from it
            left.unlink()


class DiskFullError(FerKaggleError):
    """A write found no space left; the artifact it was writing was not committed."""


# Fault injection, for the test suite: with FER_KAGGLE_FAULT_AT=N, the run's whole process group
# is killed (-9) at its N-th commit point (just before an artifact's rename), as a user's kill or
# a power cut would stop it there; FER_KAGGLE_FAULT_LOG=FILE lists the commit points of a run.
FAULT_AT, FAULT_LOG = "FER_KAGGLE_FAULT_AT", "FER_KAGGLE_FAULT_LOG"
_commit_points = 0


def fault_point(path):
    global _commit_points
    if not (os.environ.get(FAULT_AT) or os.environ.get(FAULT_LOG)):
        return
    _commit_points += 1
    if os.environ.get(FAULT_LOG):
        with open(os.environ[FAULT_LOG], "a") as log:
            log.write(f"{os.getpid()} {_commit_points} {path}\n")
    if os.environ.get(FAULT_AT) and _commit_points == int(os.environ[FAULT_AT]):
        os.killpg(os.getpgid(0), signal.SIGKILL)


def _fsync_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory):
    """Make a rename or removal in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


TEMPORARY_PATTERNS = (".*.tmp", ".*.tmp.*")  # atomic_path's names, and the suffixed siblings Keras insists on


def sweep_temporaries(directory):
    """Remove what killed writers left in `directory` (not below it): their temporary files.
    Only for a process that holds the folder's lock (no live writer can own them)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = sorted({p for pattern in TEMPORARY_PATTERNS for p in directory.glob(pattern) if p.is_file()})
    for path in removed:
        path.unlink()
    return removed


def write_with(path, save, suffix):
    """Commit what `save(temporary path)` writes, for a writer that insists on a file suffix
    (Keras: `.keras`, `.weights.h5`): one atomic save for every model and weights file."""
    with atomic_path(path) as tmp:
        named = Path(str(tmp) + suffix)
        save(named)
        os.replace(named, tmp)
    return path


def write_bytes(path, data: bytes):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def write_text(path, text: str):
    write_bytes(path, text.encode("utf-8"))


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def write_npy(path, array):
    buf = io.BytesIO()
    np.save(buf, np.asarray(array))
    write_bytes(path, buf.getvalue())


def write_npz(path, **arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes(path, buf.getvalue())


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")
