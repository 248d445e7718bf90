"""Submissions: the validated `id,label` CSV writer and reader, the manifest, the Kaggle client.

The kaggle package authenticates when it is imported and exits the process without
credentials, so it is imported only inside `KaggleClient`, after credentials are known to
exist. Credentials are never printed, logged or written: messages name the file or the
variable to set, never a value.
"""

import hashlib
import time
from pathlib import Path

import numpy as np

from fer_kaggle import atomic
from fer_kaggle.data.download import CREDENTIALS_HELP, kaggle_credentials_present
from fer_kaggle.errors import SubmissionError


def check_submission(ids, labels, expected_ids, n_classes, name="submission"):
    """Raise SubmissionError unless (ids, labels) is a complete, valid submission."""
    ids, labels, expected = np.asarray(ids), np.asarray(labels), np.asarray(expected_ids)
    if len(ids) != len(labels):
        raise SubmissionError(f"{name}: {len(ids)} ids but {len(labels)} labels")
    if labels.dtype.kind == "f":
        if np.isnan(labels).any():
            raise SubmissionError(f"{name}: label of id {ids[np.flatnonzero(np.isnan(labels))[0]]} is NaN")
        if np.any(labels != np.round(labels)):
            raise SubmissionError(f"{name}: labels must be integers, got {labels[labels != np.round(labels)][0]}")
    unique, counts = np.unique(ids, return_counts=True)
    if np.any(counts > 1):
        raise SubmissionError(f"{name}: id {unique[counts > 1][0]} appears {counts[counts > 1][0]} times")
    missing = np.setdiff1d(expected, ids)
    if len(missing):
        raise SubmissionError(f"{name}: id {missing[0]} of the test set is missing ({len(missing)} missing)")
    extra = np.setdiff1d(ids, expected)
    if len(extra):
        raise SubmissionError(f"{name}: id {extra[0]} is not in the test set ({len(extra)} unknown)")
    bad = np.flatnonzero((labels < 0) | (labels >= n_classes))
    if len(bad):
        raise SubmissionError(f"{name}: label {labels[bad[0]]} of id {ids[bad[0]]} is outside 0-{n_classes - 1}")


def write_submission(path, ids, labels, expected_ids, n_classes):
    """Validate, then write `id,label` atomically (nothing is written when invalid)."""
    check_submission(ids, labels, expected_ids, n_classes, name=str(path))
    text = "id,label\n" + "".join(f"{int(i)},{int(c)}\n" for i, c in zip(ids, labels))
    atomic.write_text(path, text)
    return sha256_file(path)


def read_submission(path, expected_ids, n_classes):
    """Read and validate a submission CSV; errors name the file and line."""
    path = Path(path)
    if not path.exists():
        raise SubmissionError(f"{path}: no such file")
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    if not lines or [f.strip().lower() for f in lines[0].split(",")] != ["id", "label"]:
        raise SubmissionError(f"{path}, line 1: header must be 'id,label'")
    ids, labels = [], []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        try:
            if len(parts) != 2:
                raise ValueError
            ids.append(int(parts[0]))
            labels.append(int(parts[1]))
        except ValueError:
            raise SubmissionError(f"{path}, line {number}: expected two integers 'id,label', got {line!r}") from None
    check_submission(ids, labels, expected_ids, n_classes, name=str(path))
    return np.asarray(ids), np.asarray(labels)


def sha256_file(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- Kaggle


class KaggleClient:
    """Uploads a submission and polls for its score, retrying HTTP 429 and 5xx answers.

    `api` is a kaggle `KaggleApi` (made and authenticated on first use) or any object with
    `competition_submit(file, message, competition)` and `competition_submissions(competition)`.
    """

    def __init__(self, api=None, retries=4, backoff=2.0, sleep=time.sleep):
        self._api, self.retries, self.backoff, self.sleep = api, retries, backoff, sleep

    @property
    def api(self):
        if self._api is None:
            if not kaggle_credentials_present():
                raise SubmissionError(f"no Kaggle credentials: {CREDENTIALS_HELP}")
            try:
                from kaggle.api.kaggle_api_extended import KaggleApi

                api = KaggleApi()
                api.authenticate()
            except SystemExit:
                raise SubmissionError(f"Kaggle refused the credentials: {CREDENTIALS_HELP}") from None
            except Exception as e:
                raise SubmissionError(f"could not start the Kaggle client: {type(e).__name__}") from None
            self._api = api
        return self._api

    def submit(self, path, competition, message):
        return self._call(lambda: self.api.competition_submit(str(path), message, competition), competition)

    def submissions(self, competition):
        return self._call(lambda: self.api.competition_submissions(competition), competition)

    def _call(self, fn, competition):
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except SubmissionError:
                raise
            except Exception as e:  # the kaggle client raises requests/HTTP errors of several kinds
                status = _http_status(e)
                if (status == 429 or (status is not None and status >= 500)) and attempt < self.retries:
                    self.sleep(self.backoff * 2**attempt)
                    continue
                raise SubmissionError(_explain(e, status, competition)) from None
        raise AssertionError("unreachable")


def _http_status(error):
    for candidate in (getattr(error, "status", None), getattr(getattr(error, "response", None), "status_code", None),
                      getattr(error, "status_code", None)):
        if isinstance(candidate, int):
            return candidate
    return None


def _explain(error, status, competition):
    text = str(error).lower()
    if status == 401 or (status == 403 and "rules" not in text):
        return f"Kaggle refused the credentials (HTTP {status}): {CREDENTIALS_HELP}"
    if status == 403:
        return f"accept the rules of {competition!r} on its Kaggle page before submitting (HTTP 403)"
    if status == 404:
        return f"unknown competition {competition!r} (HTTP 404): check the slug in its URL"
    if status == 400 and ("limit" in text or "maximum" in text):
        return f"the daily submission limit of {competition!r} is reached: try again tomorrow (HTTP 400)"
    if status == 429:
        return "Kaggle keeps answering 'too many requests' (HTTP 429) after retries: try again later"
    if status is not None and status >= 500:
        return f"Kaggle's server failed (HTTP {status}) after retries: try again later"
    if status is None and any(w in text for w in ("connection", "resolve", "timed out", "network", "unreachable")):
        return "cannot reach Kaggle: the network is down or blocked"
    return f"Kaggle answered {('HTTP ' + str(status)) if status else type(error).__name__}: {str(error)[:200]}"


def wait_for_score(client, competition, file_name, poll_seconds=10, timeout=600, sleep=time.sleep):
    """Poll the competition's submissions until ours (newest with this file name) is scored.

    Returns {"status", "public_score", "private_score", "ref"} or None when the time ran out."""
    waited = 0.0
    while waited <= timeout:
        for sub in client.submissions(competition) or []:
            name = _field(sub, "file_name", "fileName")
            if name and Path(str(name)).name == Path(file_name).name:
                status = str(_field(sub, "status") or "").lower()
                public = _field(sub, "public_score", "publicScore")
                if "error" in status:
                    raise SubmissionError(f"Kaggle could not score {file_name}: {_field(sub, 'error_description', 'errorDescription') or status}")
                if public not in (None, ""):
                    return {"status": status or "complete", "public_score": float(public),
                            "private_score": _maybe_float(_field(sub, "private_score", "privateScore")),
                            "ref": str(_field(sub, "ref") or "")}
                break
        sleep(poll_seconds)
        waited += poll_seconds
    return None


def _field(obj, *names):
    for name in names:
        value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
        if value is not None:
            return value
    return None


def _maybe_float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
