"""Reading a competition from what a user has (the Kaggle zip, an extracted directory, the CSV
files, or the device pack) into a `Competition`: arrays of one shape in every layout, and the
spec settled from the files (`fer_kaggle.data.readers` reads, `fer_kaggle.data.infer` settles)."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_kaggle.spec import Spec


@dataclass
class Competition:
    """A parsed competition: what every later stage reads."""

    x_train: np.ndarray  # uint8 (n, height, width, channels)
    y_train: np.ndarray  # int64 (n,): codes into spec.labels
    x_test: np.ndarray  # uint8 (m, height, width, channels)
    test_ids: np.ndarray  # str (m,): the ids as the competition writes them, in the order of x_test
    train_sha256: str  # the training data's identity (its files' bytes): what folds are tied to
    spec: Spec
    source: str = ""
    sample_ids: np.ndarray = None  # str: the sample submission's ids in its order, when there is one
    test_labels: np.ndarray = None  # codes, only where the source holds them (demo, fer2013.csv)
    is_demo: bool = False
    reread: object = None  # reread(image_size): the same competition read at another size (the cache's)
    test_sha256: str = None  # the test set's identity (ids, their order, images): what test predictions are of

    def __post_init__(self):
        if self.test_sha256 is None:
            self.test_sha256 = test_identity(self.test_ids, self.x_test)

    def at_size(self, height, width):
        """The same competition with its images at `height` x `width` (a pretrained network's
        side): itself when that is its size, else read again from the source files into a cache
        of its own, so large photographs are not first brought down to the training size."""
        from fer_kaggle.errors import ConfigError

        if (height, width) == (self.spec.height, self.spec.width):
            return self
        if self.reread is None:
            raise ConfigError(f"this competition ({self.source or 'in memory'}) cannot be read again at {height}x{width}")
        other = self.reread((height, width))
        if not (np.array_equal(other.y_train, self.y_train) and np.array_equal(other.test_ids, self.test_ids)):
            raise ConfigError(f"{self.source}: read at {height}x{width}, its labels or test ids differ")
        other.is_demo = self.is_demo
        return other

    @property
    def class_names(self):
        return self.spec.class_names

    @property
    def identity(self):
        """What folds, OOF and blends are tied to: the training data and the spec's identity."""
        return {"train_sha256": self.train_sha256, "spec_sha256": self.spec.identity_sha256}


def test_identity(test_ids, x_test, chunk=256):
    """sha256 over the test ids in their order and the test images' pixels: predictions of a test
    set are tied to it, so a changed, reordered or re-imaged test set is never given stale ones."""
    import hashlib

    digest = hashlib.sha256("\n".join(map(str, test_ids)).encode("utf-8") + b"\0")
    digest.update(repr((x_test.shape, str(x_test.dtype))).encode())
    for start in range(0, len(x_test), chunk):
        digest.update(np.ascontiguousarray(x_test[start: start + chunk]).tobytes())
    return digest.hexdigest()


ARRAY_OVERRIDES = ("image_size", "channels", "resize", "submission")  # those that change what is read


def read_competition(path, overrides=None, allocate=None) -> Competition:
    """Parse the competition at `path`, validating every row and image; `overrides` (metric,
    image_size, flip, ...) win over what the files say."""
    from fer_kaggle.data import infer
    from fer_kaggle.data.files import CompetitionFiles
    from fer_kaggle.data.readers import Options, read_raw

    overrides = dict(overrides or {})
    path = Path(path)
    options = Options(image_size=overrides.get("image_size"), channels=overrides.get("channels"),
                      resize=overrides.get("resize"), allocate=allocate)
    raw = read_raw(path, options)
    names = CompetitionFiles(path).names() if not (path.is_file() and path.suffix.lower() == ".npz") else []
    spec, codes, test_codes = infer.settle(raw, {"submission": overrides.get("submission")}, names)
    spec = infer.apply_overrides(spec, overrides)
    return Competition(x_train=raw.x_train, y_train=codes, x_test=raw.x_test, test_ids=np.asarray(raw.test_ids, str),
                       train_sha256=raw.train_sha256, spec=spec, source=str(path),
                       sample_ids=None if raw.sample is None else np.asarray(raw.sample.ids, str),
                       test_labels=test_codes)
