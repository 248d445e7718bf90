"""Pixel CSVs with one column per pixel, as Kaggle's Digit Recognizer: `train.csv` =
`label,pixel0,...,pixel783` (or `pixel1..pixelN`, with or without an id column), `test.csv`
= the pixel columns with or without an id column, `sample_submission.csv` = `ImageId,Label`
counting from 1. The image is square unless --image-size says its height and width."""

import hashlib
import io
import re

import numpy as np

from fer_kaggle.data.parse import parse_header
from fer_kaggle.data.readers.common import Raw, check_unique, read_sample, read_test_labels, short
from fer_kaggle.errors import DataError

PIXEL = re.compile(r"^(pixel|px|p)_?\d+$")
ID_NAMES = ("id", "imageid", "image_id")


def _split(fields):
    pixels = [i for i, f in enumerate(fields) if PIXEL.match(f)]
    others = [i for i, f in enumerate(fields) if not PIXEL.match(f)]
    return pixels, others


class PixelColumns:
    name = "pixel-columns"

    def _train_name(self, files):
        name = files.find("train.csv")
        if name is None:
            candidates = [n for n in files.csvs() if "train" in n.lower()]
            name = candidates[0] if len(candidates) == 1 else None
        return name

    def detect(self, files):
        name = self._train_name(files)
        if name is None:
            return False
        fields = parse_header(files.head(name, 1 << 20), files.label(name))[0]
        pixels, others = _split(fields)
        return len(pixels) >= 64 and 1 <= len(others) <= 2

    def read(self, files, options):
        train_name = self._train_name(files)
        test_name = files.find("test.csv") or next((n for n in files.csvs() if "test" in n.lower()), None)
        if test_name is None:
            raise DataError(files.path, f"has {train_name} (one column per pixel) but no test.csv")
        train_bytes = files.read(train_name)
        fields, table, lines = _numbers(train_bytes, files.label(train_name))
        pixels, others = _split(fields)
        label_col = next((i for i in others if fields[i] not in ID_NAMES), others[-1])
        h, w = _image_shape(len(pixels), options, files.label(train_name))
        x_train = _pixels(table[:, pixels], lines, fields, pixels, files.label(train_name)).reshape(-1, h, w, 1)
        labels = table[:, label_col]
        bad = np.flatnonzero(~np.isfinite(labels) | (labels != np.round(labels)))
        if len(bad):
            raise DataError(files.label(train_name), f"{fields[label_col]} {table[bad[0], label_col]!r} is not an "
                                                     f"integer class", line=int(lines[bad[0]]))
        test_fields, test_table, test_lines = _numbers(files.read(test_name), files.label(test_name))
        t_pixels, t_others = _split(test_fields)
        if len(t_pixels) != len(pixels):
            raise DataError(files.label(test_name), f"has {len(t_pixels)} pixel columns, {train_name} has "
                                                    f"{len(pixels)}", line=1)
        x_test = _pixels(test_table[:, t_pixels], test_lines, test_fields, t_pixels,
                         files.label(test_name)).reshape(-1, h, w, 1)
        sample = read_sample(files)
        if t_others:  # an id column
            ids = [_id_text(v) for v in test_table[:, t_others[0]]]
            check_unique(ids, test_lines, files.label(test_name))
            kind, id_column, start = "column", test_fields[t_others[0]], 0
        else:  # ids are the row numbers, counted from the sample's first id (1 in Digit Recognizer)
            start = int(sample.ids[0]) if sample is not None and sample.ids and sample.ids[0].isdigit() else 1
            ids = [str(start + i) for i in range(len(x_test))]
            kind, id_column = "row", sample.columns[0] if sample is not None else "ImageId"
        return Raw(layout=self.name, x_train=x_train, y_train=[str(int(v)) for v in labels], x_test=x_test,
                   test_ids=ids, train_sha256=hashlib.sha256(train_bytes).hexdigest(), test_ids_kind=kind,
                   id_column=id_column, id_start=start, train_label_name=files.label(train_name),
                   train_lines=lines.tolist(), sample=sample, test_labels=read_test_labels(files, ids),
                   facts={"flip": False})


def _id_text(value):
    return str(int(value)) if float(value).is_integer() else str(value)


def _numbers(data, where):
    """(fields, float table, line numbers) of a numeric CSV; a DataError names the first bad cell."""
    import pandas as pd

    fields, _ = parse_header(data, where)
    if b"\0" in data:
        raise DataError(where, "holds a NUL byte: not a text CSV", line=data[: data.index(b"\0")].count(b"\n") + 1)
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=np.float64, skipinitialspace=True, encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(where, f"is not UTF-8 text at byte {e.start}",
                        line=data[: e.start].count(b"\n") + 1) from None
    except ValueError:  # a cell that is not a number: find it for the message
        frame = pd.read_csv(io.BytesIO(data), dtype=str, skipinitialspace=True, encoding="utf-8-sig",
                            keep_default_na=False)
        for row, values in enumerate(frame.itertuples(index=False)):
            for column, value in zip(fields, values):
                try:
                    float(value)
                except ValueError:
                    raise DataError(where, f"{column} is {short(value, 20)!r}, not a number", line=row + 2) from None
        raise DataError(where, "cannot be read as numbers") from None
    except pd.errors.ParserError as e:
        found = re.search(r"line (\d+)", str(e))
        raise DataError(where, f"a row has the wrong number of fields ({short(e, 120)})",
                        line=int(found.group(1)) if found else None) from None
    except pd.errors.EmptyDataError:
        raise DataError(where, "empty file: no header and no rows", line=1) from None
    if len(frame) == 0:
        raise DataError(where, "no data rows after the header", line=2)
    table = frame.to_numpy()
    missing = np.argwhere(np.isnan(table))
    if len(missing):
        row, column = missing[0]
        raise DataError(where, f"{fields[column]} is missing", line=int(row) + 2)
    return fields, table, np.arange(2, len(table) + 2)


def _pixels(values, lines, fields, columns, where):
    bad = np.argwhere((values < 0) | (values > 255) | (values != np.round(values)))
    if len(bad):
        row, column = bad[0]
        raise DataError(where, f"{fields[columns[column]]} is {values[row, column]:g}, not an integer in 0-255",
                        line=int(lines[row]))
    return values.astype(np.uint8)


def _image_shape(n_pixels, options, where):
    if options.image_size is not None:
        h, w = options.image_size
        if h * w != n_pixels:
            raise DataError(where, f"{n_pixels} pixel columns do not make a {h}x{w} image (--image-size)", line=1)
        return h, w
    side = int(round(n_pixels**0.5))
    if side * side != n_pixels:
        raise DataError(where, f"{n_pixels} pixel columns are not a square image: give its size with --image-size HxW",
                        line=1)
    return side, side
