"""The parsed-array cache: `<data_dir>/cache/<key>/`, keyed by the source files' sha256 and the
options that change what is read. The images are `.npy` files opened memory-mapped, so a
second run starts in seconds and a large competition is never wholly in memory; the rest
(labels, ids, the spec) sit beside them. A cache is written into a temporary folder and
renamed into place: a killed run leaves none half-written."""

import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from fer_kaggle import atomic
from fer_kaggle.data.files import CompetitionFiles, sha256_file
from fer_kaggle.data.source import ARRAY_OVERRIDES, Competition, read_competition
from fer_kaggle.errors import DataError
from fer_kaggle.spec import Spec

PARSER_VERSION = "2"  # bump when reading changes, so old caches are not trusted
_META = ("y_train", "test_ids", "sample_ids", "test_labels")
DISK_MARGIN = 256 * 2**20  # bytes of free disk a cache leaves


def fingerprint(source) -> str:
    source = Path(source)
    if source.is_file() and source.suffix.lower() == ".npz":
        return sha256_file(source)
    return CompetitionFiles(source).fingerprint()


def cache_dir(source, cache_root, overrides=None) -> Path:
    reading = {k: overrides.get(k) for k in ARRAY_OVERRIDES if (overrides or {}).get(k) is not None}
    key = hashlib.sha256(f"{fingerprint(source)}:{PARSER_VERSION}:{json.dumps(reading, sort_keys=True)}".encode())
    return Path(cache_root) / key.hexdigest()


def load_cached(source, cache_root, overrides=None) -> Competition:
    """The competition at `source`, from the cache when its files and reading options are unchanged."""
    from fer_kaggle.data.infer import apply_overrides

    overrides = overrides or {}
    directory = cache_dir(source, cache_root, overrides)
    if (directory / "spec.json").exists():
        return _read(directory, source, overrides, apply_overrides)
    created = [p for p in (Path(cache_root).parent, Path(cache_root)) if not p.exists()]
    Path(cache_root).mkdir(parents=True, exist_ok=True)
    _sweep_stopped_builds(cache_root)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name[:16]}.", dir=cache_root))
    building = _hold(tmp)  # while this process builds it, no other sweeps it away
    try:
        reading = {k: v for k, v in overrides.items() if k in ARRAY_OVERRIDES}  # the rest apply on every load
        comp = read_competition(source, reading, allocate=_allocator(tmp))
        for name in ("x_train", "x_test"):
            array = getattr(comp, name)
            if not isinstance(array, np.memmap):
                np.save(tmp / f"{name}.npy", np.ascontiguousarray(array))
            else:
                array.flush()
        meta = {k: getattr(comp, k) for k in _META if getattr(comp, k) is not None}
        np.savez(tmp / "meta.npz", train_sha256=np.array(comp.train_sha256), test_sha256=np.array(comp.test_sha256),
                 **meta)
        atomic.write_json(tmp / "spec.json", comp.spec.to_json())  # last: a cache with spec.json is complete
        try:
            os.replace(tmp, directory)
        except OSError:  # another process cached the same source first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in reversed(created):  # bad input leaves nothing behind, not even the folders
            if folder.exists() and not any(folder.iterdir()):
                folder.rmdir()
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            raise DataError(cache_root, f"the disk filled up while the cache of {source} was written (nothing of it "
                                        f"was kept): free some, or pass a smaller --image-size") from None
        raise
    finally:
        os.close(building)
    return _read(directory, source, overrides, apply_overrides)


BUILDING = ".building"  # the flock a cache build holds in its temporary folder


def _hold(directory):
    fd = os.open(Path(directory) / BUILDING, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _sweep_stopped_builds(cache_root):
    """Remove the temporary folders of cache builds that were killed (a build alive holds its
    folder's lock): they can hold gigabytes, and nothing else would remove them."""
    for folder in Path(cache_root).glob(".*"):
        if not folder.is_dir():
            continue
        try:
            fd = os.open(folder / BUILDING, os.O_RDWR)
        except FileNotFoundError:  # one just being made (its lock comes next), or not a build's
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # alive
        finally:
            os.close(fd)
        shutil.rmtree(folder, ignore_errors=True)


def _read(directory, source, overrides, apply_overrides):
    spec = Spec.from_json(atomic.read_json(directory / "spec.json"))
    with np.load(directory / "meta.npz", allow_pickle=False) as z:
        meta = {k: z[k] for k in _META if k in z.files}
        train_sha256 = str(z["train_sha256"])
        test_sha256 = str(z["test_sha256"]) if "test_sha256" in z.files else None  # None: computed on reading
    cache_root = directory.parent

    def reread(image_size):
        return load_cached(source, cache_root, {**overrides, "image_size": list(image_size), "resize": "resize"})

    return Competition(x_train=np.load(directory / "x_train.npy", mmap_mode="r"),
                       x_test=np.load(directory / "x_test.npy", mmap_mode="r"), train_sha256=train_sha256,
                       test_sha256=test_sha256,
                       spec=apply_overrides(spec, overrides), source=str(source), reread=reread, **meta)


def _allocator(directory):
    def allocate(name, shape):
        needed = int(np.prod(shape))
        free = shutil.disk_usage(directory).free
        if needed + DISK_MARGIN > free:
            raise DataError(directory.parent, f"the cache of {name} ({shape[0]:,} images of {shape[1]}x{shape[2]}x"
                                              f"{shape[3]}, {needed / 2**30:.1f} GiB) would not fit the free disk "
                                              f"({free / 2**30:.1f} GiB): free some, or pass a smaller --image-size")
        path = directory / f"{name}.npy"
        array = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
        try:  # reserve the blocks now: a write into a sparse map on a full disk kills the process (SIGBUS)
            with open(path, "r+b") as f:
                os.posix_fallocate(f.fileno(), 0, os.path.getsize(path))
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
            raise DataError(directory.parent, f"the cache of {name} ({needed / 2**30:.1f} GiB) does not fit the free "
                                              f"disk beside what this cache already holds: free some, or pass a "
                                              f"smaller --image-size") from None
        return array

    return allocate
