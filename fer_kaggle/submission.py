"""The one place that turns class probabilities into what a competition is submitted: the
decision fitted for its metric (`fer_kaggle.decisions`) gives labels or probabilities, written
with the sample submission's columns, in its id order, labels as the competition writes them
(class names for CIFAR-10, numbers for Digit Recognizer), probability columns where the sample
has them. The validator checks a file against the spec and the test ids before it is written
and again before an upload; an invalid submission is never written."""

import csv
import hashlib
import io
import math
from pathlib import Path

import numpy as np

from fer_kaggle import atomic
from fer_kaggle.errors import SubmissionError


def submitted_rows(spec, ids, probs, decision=None):
    """The rows (lists of strings, the id first) of test images `ids` with probabilities `probs`."""
    probs = np.asarray(probs, dtype=np.float64)
    values = decision.apply(probs) if decision is not None else None
    if spec.submission == "label":
        codes = values if values is not None and np.ndim(values) == 1 else probs.argmax(axis=1)
        return [[str(i), spec.labels[int(c)]] for i, c in zip(ids, codes)]
    p = values if values is not None and np.ndim(values) == 2 else probs
    if spec.submission == "positive":  # the column's class, matched by its name (fer_kaggle.spec)
        code = spec.positive_code
        return [[str(i), _number(row[code])] for i, row in zip(ids, p)]
    column_of = {label: c for c, label in enumerate(spec.labels)}
    order = [column_of[name] for name in spec.submission_columns[1:]]
    return [[str(i), *(_number(row[c]) for c in order)] for i, row in zip(ids, p)]


def _number(value):
    return f"{float(value):.6g}"


def write_submission(path, spec, ids, probs, expected_ids, decision=None):
    """Validate, then write the submission atomically in `expected_ids`' order (the sample
    submission's); returns the file's sha256. Nothing is written when it is invalid."""
    rows = submitted_rows(spec, ids, probs, decision)
    order = {str(i): n for n, i in enumerate(expected_ids)}
    rows.sort(key=lambda r: order.get(r[0], len(order)))  # duplicates and strangers stay, for the check
    check_rows(spec, list(spec.submission_columns), rows, expected_ids, str(path))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(spec.submission_columns)
    writer.writerows(rows)
    atomic.write_text(path, out.getvalue())
    return sha256_file(path)


def check_rows(spec, header, rows, expected_ids, name, lines=None):
    """Raise SubmissionError unless (header, rows) is a complete, valid submission of `spec`."""
    if [h.strip() for h in header] != list(spec.submission_columns):
        shown = ",".join(spec.submission_columns[:6]) + (",..." if len(spec.submission_columns) > 6 else "")
        raise SubmissionError(f"{name}, line 1: header must be {shown!r} (the sample submission's)")
    lines = lines or list(range(2, len(rows) + 2))
    expected = [str(i) for i in expected_ids]
    wanted, seen = set(expected), {}
    for row, line in zip(rows, lines):
        where = f"{name}, line {line}"
        if len(row) != len(header):
            raise SubmissionError(f"{where}: {len(row)} fields, expected {len(header)}")
        i = row[0]
        if i in seen:
            raise SubmissionError(f"{name}: id {i} appears {1 + sum(r[0] == i for r in rows[seen[i] + 1:])} times")
        seen[i] = len(seen)
        if i not in wanted:
            raise SubmissionError(f"{name}: id {i} is not in the test set ({len(set(r[0] for r in rows) - wanted)} "
                                  f"unknown)")
        _check_values(spec, row[1:], i, where)
    missing = [i for i in expected if i not in seen]
    if missing:
        raise SubmissionError(f"{name}: id {missing[0]} of the test set is missing ({len(missing)} missing)")


def _check_values(spec, values, i, where):
    if spec.submission == "label":
        if values[0] not in spec.labels:
            shown = ", ".join(spec.labels[:10]) + (", ..." if spec.num_classes > 10 else "")
            raise SubmissionError(f"{where}: label {values[0]!r} of id {i} is not one of the classes ({shown})")
        return
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        raise SubmissionError(f"{where}: the values of id {i} must be probabilities, got {values[:3]}") from None
    if any(not math.isfinite(p) or p < 0 or p > 1 for p in numbers):
        raise SubmissionError(f"{where}: a probability of id {i} is outside 0-1 (or NaN)")
    if spec.submission == "probabilities" and abs(sum(numbers) - 1) > 1e-3:
        raise SubmissionError(f"{where}: the probabilities of id {i} sum to {sum(numbers):.4f}, not 1")


def read_submission(path, spec, expected_ids):
    """Read and validate a submission CSV; errors name the file and line. Returns its ids."""
    path = Path(path)
    if not path.exists():
        raise SubmissionError(f"{path}: no such file")
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise SubmissionError(f"{path}, line 1: empty file")
    rows, lines = [], []
    for number, row in enumerate(reader, start=2):
        if not row or all(not f.strip() for f in row):
            continue
        rows.append([f.strip() for f in row])
        lines.append(number)
    check_rows(spec, header, rows, expected_ids, str(path), lines)
    return [r[0] for r in rows]


def sha256_file(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
