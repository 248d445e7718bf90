"""Uploading submissions: the Kaggle client (the submission's values, writer and validator are
in `fer_kaggle.submission`).

The kaggle package authenticates when it is imported and exits the process without
credentials, so it is imported only inside `KaggleClient`, after credentials are known to
exist. Credentials are never printed, logged or written: messages name the file or the
variable to set, never a value.
"""

import time
from pathlib import Path

from fer_kaggle.data.download import CREDENTIALS_HELP, kaggle_credentials_present
from fer_kaggle.errors import SubmissionError


# ----------------------------------------------------------------------------- Kaggle


class TransientUploadError(SubmissionError):
    """An upload answered HTTP 429/5xx or lost its connection: Kaggle may have accepted the file."""


class KaggleClient:
    """Uploads a submission and polls for its score. Reading calls retry HTTP 429 and 5xx
    answers; an upload does not (it is not idempotent: `upload_once` decides).

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
        """One upload attempt; TransientUploadError where its fate is unknown."""
        return self._call(lambda: self.api.competition_submit(str(path), message, competition), competition,
                          retry=False)

    def submissions(self, competition):
        return self._call(lambda: self.api.competition_submissions(competition), competition)

    def _call(self, fn, competition, retry=True):
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except SubmissionError:
                raise
            except Exception as e:  # the kaggle client raises requests/HTTP errors of several kinds
                status = _http_status(e)
                transient = status == 429 or (status is not None and status >= 500) or _lost_connection(e, status)
                if transient and not retry:
                    raise TransientUploadError(_explain(e, status, competition)) from None
                if transient and status is not None and attempt < self.retries:
                    self.sleep(self.backoff * 2**attempt)
                    continue
                raise SubmissionError(_explain(e, status, competition)) from None
        raise AssertionError("unreachable")


def uploads_of(client, competition, file_name):
    """How many of the competition's submissions (as Kaggle lists them) are of `file_name`."""
    return sum(1 for sub in client.submissions(competition) or []
               if Path(str(_field(sub, "file_name", "fileName") or "")).name == Path(file_name).name)


def upload_once(client, path, competition, message, uploads_before, retries=4, backoff=2.0, sleep=time.sleep):
    """Upload `path` so that Kaggle holds exactly one more submission of it than `uploads_before`
    (counted before the first attempt): after an answer that leaves the upload's fate unknown
    (HTTP 429/5xx, a lost connection), the competition's list says whether it went through
    before any retry. Returns the number of attempts made."""
    for attempt in range(retries + 1):
        try:
            client.submit(path, competition, message)
            return attempt + 1
        except TransientUploadError:
            if uploads_of(client, competition, Path(path).name) > uploads_before:
                return attempt + 1  # Kaggle accepted it before the answer failed
            if attempt == retries:
                raise
            sleep(backoff * 2**attempt)
    raise AssertionError("unreachable")


def _http_status(error):
    for candidate in (getattr(error, "status", None), getattr(getattr(error, "response", None), "status_code", None),
                      getattr(error, "status_code", None)):
        if isinstance(candidate, int):
            return candidate
    return None


def _lost_connection(error, status):
    text = str(error).lower()
    return status is None and any(w in text for w in ("connection", "timed out", "reset by peer"))


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


def submit_once(client, csv_path, competition, message, again=False, now=None):
    """Upload a committed submission (`fer_kaggle.layout`) and record it in its manifest, so that
    a daily slot is never spent twice by accident: the manifest says "uploading" (with how
    many uploads of the file Kaggle listed before) ahead of the upload, and "submitted" right
    after it; a `submit` stopped in between is finished by the next one from Kaggle's list,
    without a second upload. A submission already uploaded to the competition is not sent
    again unless `again`: its record comes back as it is, with `already` set. Returns the
    record (with `attempts`: uploads tried, 0 where none was needed)."""
    from fer_kaggle import atomic, layout

    now = now or (lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))
    manifest = layout.checked_submission(csv_path)
    manifest_path = layout.manifest_of(csv_path)
    previous = manifest.get("kaggle") or {}
    same = previous.get("competition") == competition
    if same and previous.get("status") == "uploading" \
            and uploads_of(client, competition, Path(csv_path).name) > previous["uploads_before"]:
        attempts = 0  # the stopped run's upload went through
    elif same and previous.get("status") != "uploading" and not again:
        return {**previous, "attempts": 0, "already": True}
    else:
        before = uploads_of(client, competition, Path(csv_path).name)
        manifest["kaggle"] = {"competition": competition, "message": message, "status": "uploading",
                              "uploads_before": before, "started_at": now()}
        atomic.write_json(manifest_path, manifest)
        attempts = upload_once(client, csv_path, competition, message, before, client.retries, client.backoff,
                               client.sleep)
    record = {"competition": competition, "message": message, "submitted_at": now(), "status": "submitted",
              "attempts": attempts}
    manifest["kaggle"] = record
    atomic.write_json(manifest_path, manifest)
    return record


def record_score(csv_path, score):
    """Add Kaggle's score to the submission's manifest."""
    from fer_kaggle import atomic, layout

    manifest = layout.checked_submission(csv_path)
    manifest["kaggle"] = {**(manifest.get("kaggle") or {}), **score}
    atomic.write_json(layout.manifest_of(csv_path), manifest)


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
