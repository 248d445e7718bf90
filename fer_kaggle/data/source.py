"""Reading a competition from what a user has: the Kaggle zip, an extracted directory, CSVs,
or the compact `.npz` of JPEG bytes carried to GPU machines.

Two layouts are understood:
- NTU: `train.csv` (label,feature), `test.csv` (id,feature), optional `sample_submission.csv`
  (id,label); the demo competition adds `test_labels.csv` (id,label).
- The original `fer2013.csv` (emotion,pixels,Usage): Training rows are the training set,
  PublicTest and PrivateTest rows the test set, with ids numbered in file order.
"""

import hashlib
import io
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_kaggle import CLASS_NAMES
from fer_kaggle.data.parse import read_id_label_csv, read_pixel_csv
from fer_kaggle.errors import DataError

NTU_FILES = ("train.csv", "test.csv", "sample_submission.csv", "test_labels.csv")
FER2013_FILE = "fer2013.csv"
FER2013_USAGE = {"Training": "train", "PublicTest": "test", "PrivateTest": "test"}
DEVICE_SUFFIX = ".npz"


@dataclass
class Competition:
    """A parsed competition: what every later stage reads."""

    x_train: np.ndarray  # uint8 (n, 48, 48)
    y_train: np.ndarray  # int64 (n,)
    x_test: np.ndarray  # uint8 (m, 48, 48)
    test_ids: np.ndarray  # int64 (m,)
    train_sha256: str  # sha256 of the train file's bytes: what folds are tied to
    source: str = ""
    class_names: tuple = CLASS_NAMES
    sample_ids: np.ndarray = None  # ids of sample_submission.csv, when there is one
    test_labels: np.ndarray = None  # only where the source holds them (demo, fer2013.csv)
    is_demo: bool = False


class CompetitionFiles:
    """Uniform access to competition files inside a zip, a directory, or beside a CSV."""

    def __init__(self, path: Path):
        self.path = path
        self.zip = None
        if not path.exists():
            raise DataError(path, "no such file or directory")
        if path.is_dir():
            self.names = {p.name: p for p in path.iterdir() if p.is_file()}
            zips = [p for p in path.glob("*.zip")]
            if not (set(self.names) & set(NTU_FILES + (FER2013_FILE,))) and len(zips) == 1:
                self.__init__(zips[0])
        elif path.suffix.lower() == ".zip":
            try:
                self.zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as e:
                raise DataError(path, f"not a readable zip file ({e})") from None
            self.names = {Path(i.filename).name: i.filename for i in self.zip.infolist() if not i.is_dir()}
        else:
            if path.name == FER2013_FILE or path.name not in NTU_FILES:
                self.names = {FER2013_FILE if _is_fer2013(path) else path.name: path}
            else:
                self.names = {p.name: p for p in path.parent.iterdir() if p.name in NTU_FILES}

    def label(self, name):
        return f"{self.path}:{name}" if self.zip else str(self.names[name])

    def read(self, name) -> bytes:
        try:
            if self.zip:
                return self.zip.read(self.names[name])
            return Path(self.names[name]).read_bytes()
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
            raise DataError(self.label(name), f"cannot be read, the zip is truncated or corrupt ({e})") from None


def _is_fer2013(path: Path):
    with open(path, "rb") as f:
        head = f.read(64).lstrip(b"\xef\xbb\xbf").lower()
    return head.startswith(b"emotion,")


def fingerprint(path) -> str:
    """sha256 over the bytes of every competition file the source holds."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == DEVICE_SUFFIX:
        return _sha256_file(path)
    files = CompetitionFiles(path)
    h = hashlib.sha256()
    if files.zip is None:
        for name in sorted(n for n in files.names if n in NTU_FILES + (FER2013_FILE,)):
            h.update(name.encode() + b"\0" + _sha256_file(files.names[name]).encode())
    else:
        h.update(_sha256_file(files.path).encode())
    return h.hexdigest()


def _sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def read_competition(path) -> Competition:
    """Parse the competition at `path` (zip, directory or CSV), validating every row."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == DEVICE_SUFFIX:
        return _read_device_npz(path)
    files = CompetitionFiles(path)
    if "train.csv" in files.names:
        return _read_ntu(files)
    if FER2013_FILE in files.names:
        return _read_fer2013(files)
    raise DataError(path, f"holds neither train.csv (NTU layout) nor {FER2013_FILE}; found: {sorted(files.names) or 'nothing'}")


def _read_ntu(files: CompetitionFiles) -> Competition:
    if "test.csv" not in files.names:
        raise DataError(files.path, "has train.csv but no test.csv")
    train_bytes = files.read("train.csv")
    train = read_pixel_csv(train_bytes, files.label("train.csv"), ("label", "feature"), (0, len(CLASS_NAMES) - 1))
    test = read_pixel_csv(files.read("test.csv"), files.label("test.csv"), ("id", "feature"))
    _check_unique_ids(test.keys, test.lines, files.label("test.csv"))
    comp = Competition(
        x_train=train.pixels,
        y_train=train.keys,
        x_test=test.pixels,
        test_ids=test.keys,
        train_sha256=hashlib.sha256(train_bytes).hexdigest(),
        source=str(files.path),
    )
    if "sample_submission.csv" in files.names:
        name = files.label("sample_submission.csv")
        ids, _, lines = read_id_label_csv(files.read("sample_submission.csv"), name)
        _check_unique_ids(ids, lines, name)
        _check_same_ids(test.keys, ids, files.label("test.csv"), name)
        comp.sample_ids = ids
    if "test_labels.csv" in files.names:
        name = files.label("test_labels.csv")
        ids, labels, _ = read_id_label_csv(files.read("test_labels.csv"), name)
        _check_same_ids(test.keys, ids, files.label("test.csv"), name)
        order = {v: i for i, v in enumerate(ids.tolist())}
        comp.test_labels = labels[[order[i] for i in test.keys.tolist()]]
    return comp


def _read_fer2013(files: CompetitionFiles) -> Competition:
    data = files.read(FER2013_FILE)
    name = files.label(FER2013_FILE)
    table = read_pixel_csv(data, name, ("emotion", "pixels", "usage"), (0, len(CLASS_NAMES) - 1))
    for usage, line in zip(table.usage, table.lines.tolist()):
        if usage not in FER2013_USAGE:
            raise DataError(name, f"Usage {usage!r} is not one of {', '.join(FER2013_USAGE)}", line=line)
    is_train = np.array([FER2013_USAGE[u] == "train" for u in table.usage])
    if not is_train.any() or is_train.all():
        raise DataError(name, "needs both Training rows and PublicTest/PrivateTest rows")
    n_test = int((~is_train).sum())
    return Competition(
        x_train=table.pixels[is_train],
        y_train=table.keys[is_train],
        x_test=table.pixels[~is_train],
        test_ids=np.arange(n_test, dtype=np.int64),
        train_sha256=hashlib.sha256(data).hexdigest(),
        source=str(files.path),
        test_labels=table.keys[~is_train],
    )


def _read_device_npz(path: Path) -> Competition:
    """The compact form carried to GPU machines: the JPEG bytes of every image back to back
    (train rows, then test rows), their offsets, the train labels and the test ids."""
    try:
        with np.load(path, allow_pickle=False) as z:
            jpeg, offsets = z["jpeg"], z["offsets"]
            labels, test_ids = z["train_labels"].astype(np.int64), z["test_ids"].astype(np.int64)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise DataError(path, f"not a device npz with jpeg, offsets, train_labels and test_ids ({e})") from None
    n_train, n = len(labels), len(offsets) - 1
    if n != n_train + len(test_ids) or np.any(np.diff(offsets) <= 0) or offsets[-1] != len(jpeg):
        raise DataError(path, f"offsets describe {n} images, expected {n_train} train + {len(test_ids)} test")
    bad = np.flatnonzero((labels < 0) | (labels >= len(CLASS_NAMES)))
    if len(bad):
        raise DataError(path, f"train label {labels[bad[0]]} of row {bad[0]} is outside 0-{len(CLASS_NAMES) - 1}")
    images = np.stack([_decode_jpeg(jpeg[offsets[i] : offsets[i + 1]], path, i) for i in range(n)])
    return Competition(
        x_train=images[:n_train],
        y_train=labels,
        x_test=images[n_train:],
        test_ids=test_ids,
        train_sha256=canonical_train_sha256(labels, images[:n_train]),
        source=str(path),
    )


def _decode_jpeg(data, path, index):
    from PIL import Image

    try:
        image = np.asarray(Image.open(io.BytesIO(data.tobytes())).convert("L"))
    except Exception as e:
        raise DataError(path, f"image {index} is not a readable JPEG ({e})") from None
    if image.shape != (48, 48):
        raise DataError(path, f"image {index} is {image.shape[1]}x{image.shape[0]}, expected 48x48")
    return image


def canonical_train_sha256(labels, images):
    """sha256 of the train.csv that Kaggle serves for these rows (`label,feature`, single
    spaces, LF): the data identity of a source that holds no train.csv, so folds and OOF made
    from the device npz match those made from the competition zip."""
    digits = [str(v).encode() for v in range(256)]
    h = hashlib.sha256(b"label,feature\n")
    for label, image in zip(labels.tolist(), images.reshape(len(labels), -1)):
        h.update(str(label).encode() + b"," + b" ".join([digits[v] for v in image.tolist()]) + b"\n")
    return h.hexdigest()


def _check_unique_ids(ids, lines, name):
    seen = {}
    for i, line in zip(ids.tolist(), lines.tolist()):
        if i in seen:
            raise DataError(name, f"duplicate id {i} (first on line {seen[i]})", line=line)
        seen[i] = line


def _check_same_ids(test_ids, other_ids, test_name, other_name):
    missing = np.setdiff1d(other_ids, test_ids)
    if len(missing):
        raise DataError(test_name, f"id {missing[0]} of {other_name} is missing ({len(missing)} ids missing)")
    extra = np.setdiff1d(test_ids, other_ids)
    if len(extra):
        raise DataError(other_name, f"id {extra[0]} of {test_name} is missing ({len(extra)} ids missing)")
