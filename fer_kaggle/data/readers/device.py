"""The device pack: a competition in one `.npz` of image bytes, to carry to a GPU machine.

Arrays: `jpeg` (every image file's bytes back to back, train rows then test rows; JPEG or
PNG), `offsets` (n+1: image i is `jpeg[offsets[i]:offsets[i+1]]`), `train_labels` (code per
training row), `test_ids`; a pack written by `fer-kaggle pack` adds `spec` (the competition
spec as JSON) and `train_sha256` (the data identity of the files it came from), so folds and
OOF made from the pack and from the competition's own files fit each other. A pack without
them is FER2013's (`fer2013-device.npz`): 48x48 grayscale, identity of its train.csv.
"""

import hashlib
import json
import zipfile

import numpy as np

from fer_kaggle.data.decode import decode_bytes
from fer_kaggle.data.readers.common import Raw
from fer_kaggle.data.readers.pixel_text import fer2013_facts
from fer_kaggle.errors import DataError

SUFFIX = ".npz"


class DevicePack:
    name = "device-pack"

    def detect(self, files):
        return files.zip is None and files.given is None and files.path.suffix.lower() == SUFFIX

    def read(self, path, options):
        try:
            with np.load(path, allow_pickle=False) as z:
                jpeg, offsets = z["jpeg"], z["offsets"]
                labels, test_ids = z["train_labels"].astype(np.int64), z["test_ids"]
                spec = json.loads(str(z["spec"])) if "spec" in z.files else None
                identity = str(z["train_sha256"]) if "train_sha256" in z.files else None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
            raise DataError(path, f"not a device pack with jpeg, offsets, train_labels and test_ids ({e})") from None
        n_train, n = len(labels), len(offsets) - 1
        if n != n_train + len(test_ids) or np.any(np.diff(offsets) <= 0) or offsets[-1] != len(jpeg):
            raise DataError(path, f"offsets describe {n} images, expected {n_train} train + {len(test_ids)} test")
        if spec is None:
            facts, h, w, c, label_values = fer2013_facts(48), 48, 48, 1, [str(i) for i in range(7)]
        else:
            facts = {k: spec[k] for k in ("labels", "class_names", "flip", "metric", "competition", "label_kind",
                                          "submission", "submission_columns", "label_column") if k in spec}
            h, w, c, label_values = spec["height"], spec["width"], spec["channels"], spec["labels"]
        bad = np.flatnonzero((labels < 0) | (labels >= len(label_values)))
        if len(bad):
            raise DataError(path, f"train label {labels[bad[0]]} of row {bad[0]} is outside 0-{len(label_values) - 1}")
        blobs = [jpeg[offsets[i]: offsets[i + 1]].tobytes() for i in range(n)]
        images = decode_bytes(blobs, path, c, h, w)
        x_train = images[:n_train]
        return Raw(layout=spec.get("layout", self.name) if spec else "ntu", x_train=x_train,
                   y_train=[label_values[v] for v in labels], x_test=images[n_train:],
                   test_ids=[str(i) for i in test_ids.tolist()],
                   train_sha256=identity or canonical_train_sha256(labels, x_train),
                   test_ids_kind=spec.get("test_ids", "column") if spec else "column",
                   id_column=spec.get("id_column", "id") if spec else "id", id_start=spec.get("id_start", 0) if spec else 0,
                   label_column=spec.get("label_column", "label") if spec else "label",
                   train_label_name=str(path), facts=facts)


def canonical_train_sha256(labels, images):
    """sha256 of the train.csv that Kaggle serves for these FER rows (`label,feature`, single
    spaces, LF): the identity of FER2013's device pack, so folds and OOF made from it match
    those made from the competition zip."""
    digits = [str(v).encode() for v in range(256)]
    h = hashlib.sha256(b"label,feature\n")
    for label, image in zip(labels.tolist(), images.reshape(len(labels), -1)):
        h.update(str(label).encode() + b"," + b" ".join([digits[v] for v in image.tolist()]) + b"\n")
    return h.hexdigest()


def write_pack(path, comp, image_format="PNG"):
    """The competition in use as a device pack (lossless PNG unless told): one file to carry."""
    import io

    from PIL import Image

    from fer_kaggle import atomic

    blobs = []
    for image in list(comp.x_train) + list(comp.x_test):
        buf = io.BytesIO()
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buf, format=image_format)
        blobs.append(np.frombuffer(buf.getvalue(), dtype=np.uint8))
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).astype(np.int64)
    atomic.write_npz(path, jpeg=np.concatenate(blobs), offsets=offsets, train_labels=comp.y_train.astype(np.int32),
                     test_ids=np.asarray(comp.test_ids, dtype=str), spec=np.array(json.dumps(comp.spec.to_json())),
                     train_sha256=np.array(comp.train_sha256))
    return path
