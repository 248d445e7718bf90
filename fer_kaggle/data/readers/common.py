"""What every reader shares: the options a user gives, the raw competition a reader returns,
small CSV tables read strictly, the sample submission, and a set of image files decoded."""

import csv
import hashlib
import io
from dataclasses import dataclass, field

import numpy as np

from fer_kaggle.data import decode
from fer_kaggle.errors import DataError


@dataclass
class Options:
    image_size: tuple = None  # (height, width) to bring every image to; None: inferred
    channels: int = None  # 1 or 3; None: inferred from the images' modes
    resize: str = None  # 'fixed' (refuse other sizes) or 'resize'; None: inferred
    allocate: object = None  # allocate(name, shape) -> a uint8 array to decode into (a memmap), or None


@dataclass
class Sample:
    """The sample submission: its columns and, per row, the id and the values."""

    name: str  # its label for messages
    columns: list
    ids: list
    values: list  # per row, the fields after the id
    lines: list


@dataclass
class Raw:
    """A competition as one reader read it, before the spec is settled."""

    layout: str
    x_train: np.ndarray  # uint8 (n, h, w, c)
    y_train: list  # the label of every training row, as the competition writes it
    x_test: np.ndarray
    test_ids: list  # str, in the order of x_test
    train_sha256: str
    resize: str = "fixed"
    test_ids_kind: str = "column"
    id_column: str = "id"
    id_start: int = 0
    label_column: str = "label"
    train_label_name: str = ""  # the file the labels came from, for messages
    train_lines: list = None  # the line (or file) of each training row, for messages
    sample: Sample = None
    test_labels: list = None  # demo only: the test rows' labels
    facts: dict = field(default_factory=dict)  # what the layout itself settles (known labels, flip)


def read_table(files, name, required_columns=None):
    """(header, rows, line numbers) of a small CSV read strictly: the BOM, CRLF, surrounding
    whitespace and quotes are accepted; an empty file, a header only, or a row of the wrong
    width is a DataError naming the line."""
    label = files.label(name)
    data = files.read(name)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(label, "is not UTF-8 text (is this really a CSV file?)", line=1) from None
    if not text.strip():
        raise DataError(label, "empty file: no header and no rows", line=1)
    if "\0" in text:
        raise DataError(label, "holds a NUL byte: not a text CSV", line=text[: text.index("\0")].count("\n") + 1)
    reader = csv.reader(io.StringIO(text))
    rows, lines = [], []
    try:
        header = [h.strip() for h in next(reader)]
        for row in reader:
            if not row or all(not f.strip() for f in row):
                continue
            if len(row) != len(header):
                raise DataError(label, f"expected {len(header)} comma-separated fields, found {len(row)}",
                                line=reader.line_num)
            rows.append([f.strip() for f in row])
            lines.append(reader.line_num)
    except csv.Error as e:  # a field over the csv module's limit, an unclosed quote at the end
        raise DataError(label, f"is not a readable CSV ({short(e, 100)})", line=reader.line_num) from None
    if not rows:
        raise DataError(label, "no data rows after the header", line=2)
    if required_columns and len(header) < required_columns:
        raise DataError(label, f"header {short(','.join(header))!r} has {len(header)} columns, expected at least "
                               f"{required_columns}", line=1)
    return header, rows, lines


def short(text, limit=80):
    """Text for a one-line message: at most `limit` characters."""
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


SAMPLE_NAMES = ("sample_submission.csv", "sampleSubmission.csv", "sample_submission_file.csv", "sample.csv")


def find_sample(files):
    name = files.find(*SAMPLE_NAMES)
    if name is None:
        candidates = [n for n in files.csvs() if "sample" in n.lower() or "submission" in n.lower()]
        name = candidates[0] if len(candidates) == 1 else None
    return name


def read_sample(files):
    name = find_sample(files)
    if name is None:
        return None
    header, rows, lines = read_table(files, name)
    if len(header) < 2:
        raise DataError(files.label(name), f"header {short(','.join(header))!r}: a sample submission has an id column "
                                           f"and at least one more (a label, or a probability per class)", line=1)
    ids = [r[0] for r in rows]
    check_unique(ids, lines, files.label(name))
    return Sample(files.label(name), header, ids, [r[1:] for r in rows], lines)


def check_unique(ids, lines, where, what="id"):
    seen = {}
    for i, line in zip(ids, lines):
        if i in seen:
            raise DataError(where, f"duplicate {what} {short(i)} (first on line {seen[i]})", line=line)
        seen[i] = line


def read_test_labels(files, ids):
    """The demo's `test_labels.csv` (id,label), in the order of `ids`; None elsewhere."""
    name = files.find("test_labels.csv")
    if name is None:
        return None
    _, rows, _ = read_table(files, name)
    by_id = {r[0]: r[1] for r in rows}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise DataError(files.label(name), f"has no label for test id {missing[0]!r}")
    return [by_id[i] for i in ids]


def decode_sets(files, train_names, test_names, options):
    """(x_train, x_test, resize policy): both sets probed first, so one size and one channel
    count serve both (the training images' size decides, the test images are brought to it)."""
    train_sizes = decode.probe(files, train_names)
    test_sizes = decode.probe(files, test_names)
    everything = train_sizes + test_sizes
    h, w, policy = decode.training_size([s[:2] for s in train_sizes], options.image_size)
    if policy == "fixed" and any((sw, sh) != (w, h) for sw, sh, _ in test_sizes):
        policy = "resize"
    if options.resize == "fixed" and policy != "fixed":
        odd = next((n, s) for n, s in zip(train_names + test_names, everything) if (s[1], s[0]) != (h, w))
        raise DataError(files.label(odd[0]), f"is {odd[1][0]}x{odd[1][1]}, but the spec says every image is {w}x{h} "
                                             f"(resize 'fixed'): pass --image-size to resize them all")
    policy = options.resize or policy
    channels = options.channels or decode.channels_of([s[2] for s in everything])
    fixed = policy == "fixed"
    x_train = decode.decode_into(_allocate(options, "x_train", (len(train_names), h, w, channels)), files, train_names,
                                 (h, w), channels, fixed)
    x_test = decode.decode_into(_allocate(options, "x_test", (len(test_names), h, w, channels)), files, test_names,
                                (h, w), channels, fixed)
    return x_train, x_test, policy


def _allocate(options, what, shape):
    if options.allocate is not None:
        return options.allocate(what, shape)
    return np.empty(shape, dtype=np.uint8)


def identity_of(files, label_name, image_names):
    """The training data's identity: sha256 over the labels file and every training image's bytes."""
    h = hashlib.sha256(files.read(label_name) if label_name else b"")
    for name in image_names:
        h.update(name.encode() + b"\0" + hashlib.sha256(files.read(name)).digest())
    return h.hexdigest()


def match_test_files(files, test_names, sample, where):
    """The test ids of image files `test_names`: the sample submission's ids where it has them
    (a file name with or without its extension), else the file names without extension. A
    sample id with no test image, or a test image the sample does not name, is a DataError."""
    from pathlib import PurePosixPath

    stems = [PurePosixPath(n).stem for n in test_names]
    bases = [PurePosixPath(n).name for n in test_names]
    if sample is None:
        check_unique(stems, list(range(1, len(stems) + 1)), where, "test image name")
        return stems
    by_name = {}
    for i, (stem, base) in enumerate(zip(stems, bases)):
        by_name.setdefault(base, i)
        by_name.setdefault(stem, i)
    ids, used = [None] * len(test_names), set()
    for sid, line in zip(sample.ids, sample.lines):
        i = by_name.get(sid)
        if i is None:
            raise DataError(sample.name, f"id {short(sid)!r} has no test image in {where} ({len(sample.ids)} ids, "
                                         f"{len(test_names)} images)", line=line)
        ids[i] = sid
        used.add(i)
    if len(used) != len(test_names):
        extra = next(n for i, n in enumerate(test_names) if i not in used)
        raise DataError(files.label(extra), f"is a test image that {sample.name} does not list "
                                            f"({len(test_names) - len(used)} such images)")
    return ids
