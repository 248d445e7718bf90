"""A fast, strict reader for the pixel CSV files of FER-style competitions (one field of
space-separated pixels per row, a square image of any side: 2,304 pixels for FER2013's 48x48).

The per-row metadata (label, id, usage) is read in Python; the pixels of every row
are parsed with vectorised numpy over the raw bytes, a chunk of rows at a time. When the
vectorised pass flags a row, a slow per-row check finds the exact problem for the message.
"""

import re
from dataclasses import dataclass

import numpy as np

from fer_kaggle.errors import DataError

CHUNK_ROWS = 2048
_BOM = b"\xef\xbb\xbf"
_PIXEL_TOKEN = re.compile(r"^[0-9]{1,3}$")


@dataclass
class PixelTable:
    """The rows of one pixel CSV: the key column (label or id), pixels, and optional usage."""

    keys: np.ndarray  # int64 (n,)
    pixels: np.ndarray  # uint8 (n, side, side, 1)
    lines: np.ndarray  # int64 (n,), 1-based line number of each row in the file
    usage: list = None  # str per row, only for the fer2013.csv layout


def parse_header(data: bytes, name):
    """Return (fields, body_offset) of a CSV given as bytes; the BOM is skipped."""
    start = len(_BOM) if data.startswith(_BOM) else 0
    if not data[start : start + 4096].strip() and not data[start:].strip():
        raise DataError(name, "empty file: no header and no rows", line=1)
    end = data.find(b"\n", start)
    end = len(data) if end < 0 else end
    try:
        header = data[start:end].decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(name, "header is not UTF-8 text (is this really a CSV file?)", line=1) from None
    fields = [f.strip().strip('"').strip().lower() for f in header.strip().split(",")]
    return fields, end + 1


def check_header(fields, expected, name):
    if fields != list(expected):
        raise DataError(name, f"header is {','.join(fields)!r}, expected {','.join(expected)!r}", line=1)


def _line_spans(data: bytes, offset: int):
    """Start, end (exclusive, surrounding whitespace and CR excluded) and 1-based line number
    of each non-blank line after the header."""
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines, position = [], data.find(b"\n", offset)
    while position >= 0:  # memchr per line: faster than comparing every byte in numpy
        newlines.append(position)
        position = data.find(b"\n", position + 1)
    newlines = np.asarray(newlines, dtype=np.int64)
    starts = np.concatenate([[offset], newlines + 1])
    ends = np.concatenate([newlines, [len(data)]])
    line_numbers = np.arange(2, len(starts) + 2)  # the header is line 1
    space = np.zeros(256, dtype=bool)
    space[[9, 13, 32]] = True
    while True:  # strip trailing whitespace and CR, a character per pass, all lines at once
        more = (ends > starts) & space[buf[np.maximum(ends - 1, 0)]]
        if not more.any():
            break
        ends[more] -= 1
    while True:
        more = (ends > starts) & space[buf[np.minimum(starts, len(buf) - 1)]]
        if not more.any():
            break
        starts[more] += 1
    keep = ends > starts
    return starts[keep], ends[keep], line_numbers[keep]


def _parse_int_field(raw: bytes, name, line, what):
    text = raw.strip().strip(b'"').strip()
    if not text:
        raise DataError(name, f"{what} is missing", line=line)
    try:
        return int(text)
    except ValueError:
        raise DataError(name, f"{what} {text.decode('utf-8', 'replace')!r} is not an integer", line=line) from None


def read_pixel_csv(data: bytes, name, columns, key_range=None, n_pixels=None):
    """Parse a CSV whose columns are `columns`: (key, pixels) or (key, pixels, usage).

    `key_range` (lo, hi) bounds the key column inclusively (used for labels). Every row holds
    `n_pixels` pixels (None: as many as the first row, a square number).
    Raises DataError naming the file, the line and the problem.
    """
    fields, offset = parse_header(data, name)
    check_header(fields, columns, name)
    with_usage = len(columns) == 3
    starts, ends, lines = _line_spans(data, offset)
    if len(starts) == 0:
        raise DataError(name, "no data rows after the header", line=2)

    n = len(starts)
    keys = np.empty(n, dtype=np.int64)
    pix_start = np.empty(n, dtype=np.int64)
    pix_end = np.empty(n, dtype=np.int64)
    usage = [] if with_usage else None
    for i in range(n):
        s, e, line = int(starts[i]), int(ends[i]), int(lines[i])
        c1 = data.find(b",", s, e)
        if c1 < 0:
            raise DataError(name, f"expected {len(columns)} comma-separated fields, found 1", line=line)
        keys[i] = key = _parse_int_field(data[s:c1], name, line, columns[0])
        if key_range is not None and not key_range[0] <= key <= key_range[1]:
            raise DataError(name, f"{columns[0]} {key} is outside {key_range[0]}-{key_range[1]}", line=line)
        if with_usage:
            c2 = data.rfind(b",", c1 + 1, e)
            if c2 < 0:
                raise DataError(name, f"expected {len(columns)} comma-separated fields, found 2", line=line)
            usage.append(data[c2 + 1 : e].strip().strip(b'"').decode("utf-8", "replace"))
            pix_start[i], pix_end[i] = c1 + 1, c2
        else:
            pix_start[i], pix_end[i] = c1 + 1, e

    if n_pixels is None:
        n_pixels = len(data[pix_start[0] : pix_end[0]].split())
        side = int(round(n_pixels**0.5))
        if side * side != n_pixels or side < 8:
            raise DataError(name, f"{columns[1]} has {n_pixels} values: not a square image of at least 8x8 pixels",
                            line=int(lines[0]))
    side = int(round(n_pixels**0.5))
    pixels = np.empty((n, n_pixels), dtype=np.uint8)
    for lo in range(0, n, CHUNK_ROWS):
        hi = min(lo + CHUNK_ROWS, n)
        values, bad = _parse_pixel_chunk(data, pix_start[lo:hi], pix_end[lo:hi], n_pixels)
        if bad is not None:
            row = lo + bad
            problem = _diagnose_pixels(data[pix_start[row] : pix_end[row]], columns[1], n_pixels)
            raise DataError(name, problem, line=int(lines[row]))
        pixels[lo:hi] = values
    return PixelTable(keys=keys, pixels=pixels.reshape(n, side, side, 1), lines=lines, usage=usage)


def _parse_pixel_chunk(data: bytes, rs: np.ndarray, re_: np.ndarray, n_pixels):
    """Vectorised parse of the pixel fields [rs[i], re_[i]) of consecutive rows.

    Returns (uint8 values of shape (rows, n_pixels), None) or (None, index of the first bad row).
    """
    base = int(rs[0])
    buf = np.frombuffer(data, dtype=np.uint8, count=int(re_[-1]) - base, offset=base)
    rel_s, rel_e = rs - base, re_ - base
    rows = len(rs)

    inside = np.ones(len(buf), dtype=bool)
    for gap_start, gap_end in zip(rel_e[:-1].tolist(), rel_s[1:].tolist()):
        inside[gap_start:gap_end] = False  # line ends, and the next row's other fields

    digit = (buf >= 48) & (buf <= 57)
    allowed = digit | (buf == 32) | (buf == 9) | (buf == 34)
    bad_chars = np.flatnonzero(inside & ~allowed)
    bad_rows = set()
    if len(bad_chars):
        bad_rows.add(int(np.searchsorted(rel_s, bad_chars[0], side="right") - 1))

    digit &= inside
    padded = np.zeros(len(buf) + 2, dtype=np.int8)
    padded[1:-1] = digit
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    tok_s, tok_e = edges[0::2], edges[1::2]  # each token is buf[tok_s:tok_e]
    # Row boundaries in the token list; a token never crosses a row's pixel field.
    bounds = np.searchsorted(tok_s, np.concatenate([rel_s, [len(buf)]]))
    counts = np.diff(bounds)
    if np.any(counts != n_pixels):
        bad_rows.add(int(np.flatnonzero(counts != n_pixels)[0]))

    length = tok_e - tok_s
    last = len(buf) - 1
    d0 = buf[tok_s].astype(np.int16) - 48
    d1 = buf[np.minimum(tok_s + 1, last)].astype(np.int16) - 48
    d2 = buf[np.minimum(tok_s + 2, last)].astype(np.int16) - 48
    value = np.where(length == 1, d0, np.where(length == 2, d0 * 10 + d1, d0 * 100 + d1 * 10 + d2))
    too_long = length > 3
    out_of_range = too_long | (value > 255)
    if np.any(out_of_range):
        first_tok = int(np.flatnonzero(out_of_range)[0])
        bad_rows.add(int(np.searchsorted(bounds, first_tok, side="right") - 1))

    if bad_rows:
        return None, min(bad_rows)
    return value.astype(np.uint8).reshape(rows, n_pixels), None


def _diagnose_pixels(field: bytes, column, n_pixels):
    """The precise problem of one row's pixel field, for the error message."""
    tokens = field.decode("utf-8", "replace").strip().strip('"').split()
    for j, tok in enumerate(tokens, start=1):
        if not _PIXEL_TOKEN.match(tok) or int(tok) > 255:
            return f"{column} value {j} is {tok!r}, not an integer in 0-255"
    side = int(round(n_pixels**0.5))
    return f"{column} has {len(tokens)} values, expected {n_pixels} ({side}x{side})"


def read_id_label_csv(data: bytes, name, columns=("id", "label")):
    """Parse a small `id,label` CSV (sample submission, demo test labels): (ids, labels, lines)."""
    fields, offset = parse_header(data, name)
    check_header(fields, columns, name)
    starts, ends, lines = _line_spans(data, offset)
    ids, labels = [], []
    for s, e, line in zip(starts.tolist(), ends.tolist(), lines.tolist()):
        parts = data[s:e].split(b",")
        if len(parts) != 2:
            raise DataError(name, f"expected 2 comma-separated fields, found {len(parts)}", line=line)
        ids.append(_parse_int_field(parts[0], name, line, columns[0]))
        labels.append(_parse_int_field(parts[1], name, line, columns[1]))
    return np.asarray(ids, dtype=np.int64), np.asarray(labels, dtype=np.int64), lines
