"""The submission writer and validator, the blend stage's files, and the Kaggle client."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_variant
from fer_kaggle.errors import SubmissionError
from fer_kaggle.spec import Spec
from fer_kaggle.submission import read_submission, sha256_file, write_submission
from fer_kaggle.submit import KaggleClient, submit_once, upload_once, wait_for_score

ROOT = Path(__file__).resolve().parents[1]
IDS = np.arange(10)
FER = Spec(height=48, width=48, channels=1, labels=tuple("0123456"))
CIFAR = Spec(height=32, width=32, channels=3, labels=("airplane", "bird", "cat"), label_kind="name")


def onehot(codes, n):
    return np.eye(n)[codes]


def test_a_valid_submission_round_trips(tmp_path):
    labels = np.arange(10) % 7
    sha = write_submission(tmp_path / "s.csv", FER, IDS.astype(str), onehot(labels, 7), IDS)
    assert (tmp_path / "s.csv").read_text().splitlines()[:3] == ["id,label", "0,0", "1,1"]
    ids = read_submission(tmp_path / "s.csv", FER, IDS)
    assert ids == [str(i) for i in IDS] and sha == sha256_file(tmp_path / "s.csv")


def test_labels_are_written_as_the_competition_names_them_in_the_samples_order(tmp_path):
    probs = onehot(np.array([2, 0, 1]), 3)
    write_submission(tmp_path / "s.csv", CIFAR, ["3", "1", "2"], probs, ["1", "2", "3"])
    assert (tmp_path / "s.csv").read_text() == "id,label\n1,airplane\n2,bird\n3,cat\n"
    digits = Spec(height=28, width=28, channels=1, labels=tuple("0123456789"), id_column="ImageId",
                  label_column="Label", submission_columns=("ImageId", "Label"), flip=False)
    write_submission(tmp_path / "d.csv", digits, ["1", "2"], onehot(np.array([7, 3]), 10), ["1", "2"])
    assert (tmp_path / "d.csv").read_text() == "ImageId,Label\n1,7\n2,3\n"


def test_probability_columns_follow_the_samples_column_order(tmp_path):
    spec = CIFAR.replace(submission="probabilities", submission_columns=("id", "cat", "airplane", "bird"),
                         metric="log_loss")
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    write_submission(tmp_path / "p.csv", spec, ["a", "b"], probs, ["a", "b"])
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines == ["id,cat,airplane,bird", "a,0.1,0.7,0.2", "b,0.8,0.1,0.1"]
    assert read_submission(tmp_path / "p.csv", spec, ["a", "b"]) == ["a", "b"]
    positive = Spec(height=32, width=32, channels=3, labels=("0", "1"), submission="positive", metric="roc_auc",
                    label_column="has_cactus", submission_columns=("id", "has_cactus"))
    write_submission(tmp_path / "c.csv", positive, ["x.jpg"], np.array([[0.25, 0.75]]), ["x.jpg"])
    assert (tmp_path / "c.csv").read_text() == "id,has_cactus\nx.jpg,0.75\n"


@pytest.mark.parametrize("ids, labels, words", [
    (np.arange(9), np.zeros(9, int), "id 9 of the test set is missing"),
    (np.r_[0, 0, np.arange(2, 10)], np.zeros(10, int), "id 0 appears 2 times"),
    (np.r_[np.arange(9), 99], np.zeros(10, int), "is not in the test set"),
], ids=["missing", "duplicate", "unknown"])
def test_invalid_submissions_are_refused_and_nothing_is_written(tmp_path, ids, labels, words):
    with pytest.raises(SubmissionError, match=words):
        write_submission(tmp_path / "s.csv", FER, ids.astype(str), onehot(labels, 7), IDS)
    assert list(tmp_path.iterdir()) == []


def test_reading_a_bad_file_names_the_line(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("id,label\n0,1\n1,x\n")
    with pytest.raises(SubmissionError, match=r"s.csv, line 3: label 'x' of id 1 is not one of the classes"):
        read_submission(path, FER, IDS)
    path.write_text("id,prediction\n0,1\n")
    with pytest.raises(SubmissionError, match="line 1: header must be 'id,label'"):
        read_submission(path, FER, IDS)
    spec = CIFAR.replace(submission="probabilities", submission_columns=("id", "airplane", "bird", "cat"))
    path.write_text("id,airplane,bird,cat\n0,0.5,0.5,0.5\n")
    with pytest.raises(SubmissionError, match="line 2: the probabilities of id 0 sum to 1.5000"):
        read_submission(path, spec, ["0"])


class HTTPError(Exception):
    def __init__(self, status, text=""):
        super().__init__(text or f"HTTP {status}")
        self.status = status


class FakeApi:
    """Kaggle as its API answers: `answers` to the uploads in turn (an exception is raised; an
    upload answered with an exception in `accepted_anyway` still lands), and the competition's
    submission list as the uploads left it (or `listing`: pages, or errors, given in turn)."""

    def __init__(self, answers, listing=(), accepted_anyway=()):
        self.answers, self.calls, self.listing = list(answers), [], list(listing)
        self.accepted_anyway, self.landed = list(accepted_anyway), []

    def competition_submit(self, path, message, competition):
        self.calls.append((path, message, competition))
        answer = self.answers.pop(0)
        if not isinstance(answer, Exception) or answer in self.accepted_anyway:
            self.landed.append({"fileName": Path(path).name, "status": "pending"})
        if isinstance(answer, Exception):
            raise answer
        return answer

    def competition_submissions(self, competition):
        if self.listing:
            page = self.listing.pop(0)
            if isinstance(page, Exception):
                raise page
            return page
        return list(self.landed)


def test_reading_calls_retry_429_and_5xx_with_backoff():
    sleeps = []
    api = FakeApi([], listing=[HTTPError(429), HTTPError(503), [{"fileName": "x.csv"}]])
    assert KaggleClient(api, sleep=sleeps.append).submissions("comp") == [{"fileName": "x.csv"}]
    assert sleeps == [2.0, 4.0]


def test_an_upload_whose_answer_failed_after_kaggle_accepted_it_is_not_sent_again():
    error = HTTPError(503)
    api = FakeApi([error, "ok"], accepted_anyway=[error])
    client = KaggleClient(api, sleep=lambda s: None)
    assert upload_once(client, "s.csv", "comp", "m", uploads_before=0, sleep=lambda s: None) == 1
    assert len(api.calls) == 1 and len(api.landed) == 1


def test_an_upload_that_did_not_reach_kaggle_is_retried_with_backoff():
    sleeps = []
    api = FakeApi([HTTPError(503), HTTPError(429), "ok"])
    client = KaggleClient(api)
    assert upload_once(client, "s.csv", "comp", "m", uploads_before=0, sleep=sleeps.append) == 3
    assert len(api.landed) == 1 and sleeps == [2.0, 4.0]


@pytest.mark.parametrize("error, words", [
    (HTTPError(404), "unknown competition 'comp'"),
    (HTTPError(400, "Submission limit reached: maximum daily submissions"), "daily submission limit"),
    (HTTPError(401), "kaggle.json"),
    (ConnectionError("Failed to establish a new connection"), "network is down"),
    (HTTPError(500), "after retries"),
])
def test_failures_are_one_clear_message(error, words):
    api = FakeApi([error] * 10)
    with pytest.raises(SubmissionError, match=words):
        upload_once(KaggleClient(api), "s.csv", "comp", "m", uploads_before=0, retries=2, sleep=lambda s: None)
    assert len(api.landed) == 0


def committed_submission(tmp_path, name="20260101-000000-mean"):
    """A submission as `blend` commits it: the CSV, then its manifest."""
    from fer_kaggle.atomic import write_json

    csv_path = tmp_path / "subs" / f"{name}.csv"
    sha = write_submission(csv_path, FER, IDS, onehot(IDS % 7, 7), IDS)
    write_json(csv_path.with_suffix(".json"), {"csv": csv_path.name, "csv_sha256": sha, "method": "mean", "kaggle": None})
    return csv_path


def test_submit_records_the_upload_and_never_spends_a_second_slot_on_it_unasked(tmp_path):
    from fer_kaggle.atomic import read_json

    csv_path = committed_submission(tmp_path)
    api = FakeApi(["ok", "ok"])
    record = submit_once(KaggleClient(api), csv_path, "comp", "m")
    assert record["status"] == "submitted" and record["attempts"] == 1 and len(api.landed) == 1
    assert read_json(csv_path.with_suffix(".json"))["kaggle"]["status"] == "submitted"
    again = submit_once(KaggleClient(api), csv_path, "comp", "m")  # a rerun: the recorded upload, not a new one
    assert again["already"] and again["attempts"] == 0 and again["submitted_at"] == record["submitted_at"]
    assert len(api.landed) == 1 and len(api.calls) == 1
    assert submit_once(KaggleClient(api), csv_path, "comp", "m", again=True)["attempts"] == 1
    assert len(api.landed) == 2


@pytest.mark.parametrize("landed", [True, False])
def test_a_submit_killed_during_its_upload_is_finished_from_kaggles_list(tmp_path, landed):
    """The manifest said "uploading" when the process died: the next `submit` uploads only
    where Kaggle's list shows the upload never arrived."""
    from fer_kaggle.atomic import read_json, write_json

    csv_path = committed_submission(tmp_path)
    manifest = read_json(csv_path.with_suffix(".json"))
    manifest["kaggle"] = {"competition": "comp", "status": "uploading", "uploads_before": 0}
    write_json(csv_path.with_suffix(".json"), manifest)
    api = FakeApi(["ok"])
    if landed:
        api.landed.append({"fileName": csv_path.name})
    record = submit_once(KaggleClient(api), csv_path, "comp", "m")
    assert len(api.landed) == 1 and len(api.calls) == (0 if landed else 1)
    assert record["attempts"] == (0 if landed else 1)
    assert read_json(csv_path.with_suffix(".json"))["kaggle"]["status"] == "submitted"


def test_a_csv_without_its_manifest_or_changed_since_is_never_uploaded(tmp_path):
    from fer_kaggle.errors import IntegrityError

    orphan = tmp_path / "subs" / "20260101-000001-stack.csv"
    write_submission(orphan, FER, IDS, onehot(IDS % 7, 7), IDS)
    api = FakeApi(["ok"])
    with pytest.raises(IntegrityError, match="has no manifest"):
        submit_once(KaggleClient(api), orphan, "comp", "m")
    changed = committed_submission(tmp_path)
    changed.write_text(changed.read_text().replace("\n0,", "\n0,1", 1))
    with pytest.raises(IntegrityError, match="changed since its manifest"):
        submit_once(KaggleClient(api), changed, "comp", "m")
    assert api.calls == []


def test_the_latest_submission_is_the_newest_committed_one(tmp_path):
    from fer_kaggle import layout

    older = committed_submission(tmp_path, "20260101-000000-mean")
    write_submission(tmp_path / "subs" / "20260101-000009-stack.csv", FER, IDS, onehot(IDS % 7, 7), IDS)  # no manifest
    assert layout.latest_submission(tmp_path / "subs")[0] == older
    newer = committed_submission(tmp_path, "20260101-000005-caruana")
    assert layout.latest_submission(tmp_path / "subs")[0] == newer


def test_no_credentials_says_how_to_configure_without_importing_kaggle(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path))
    for var in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(SubmissionError, match="KAGGLE_API_TOKEN"):
        KaggleClient().submit("s.csv", "comp", "m")
    assert "kaggle" not in sys.modules


def test_wait_for_score_finds_our_scored_submission():
    listing = [[{"fileName": "x.csv", "status": "pending", "publicScore": None}],
               [{"fileName": "other.csv", "publicScore": "0.1"},
                {"fileName": "x.csv", "status": "complete", "publicScore": "0.61", "privateScore": "0.6", "ref": 7}]]
    client = KaggleClient(FakeApi([], listing), sleep=lambda s: None)
    score = wait_for_score(client, "comp", "submissions/x.csv", poll_seconds=1, timeout=5, sleep=lambda s: None)
    assert score == {"status": "complete", "public_score": 0.61, "private_score": 0.6, "ref": "7"}


def test_blend_and_submit_dry_run_end_to_end(tiny_comp):
    from fer_kaggle import cv
    from fer_kaggle.atomic import read_json

    comp, folds, meta, tmp = tiny_comp
    variants = [tiny_variant("a", epochs=1), tiny_variant("b", epochs=1, seed=1)]
    cv.run_cv(comp, folds, meta, variants, tmp / "oof", threads=1, log=lambda m, f=None: None)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KAGGLE_CONFIG_DIR": str(tmp / "nokaggle")}
    env.pop("KAGGLE_API_TOKEN", None)
    base = [sys.executable, "-m", "fer_kaggle", "--data-dir", str(tmp / "data"), "--oof-dir", str(tmp / "oof"),
            "--submissions-dir", str(tmp / "subs")]
    result = subprocess.run(base + ["blend"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    csvs = list((tmp / "subs").glob("*.csv"))
    assert len(csvs) == 1
    manifest = read_json(csvs[0].with_suffix(".json"))
    assert manifest["members"] == ["a", "b"] and manifest["csv_sha256"] == sha256_file(csvs[0])
    assert set(manifest["methods_tried"]) == {"mean", "weighted", "caruana", "stack", "rank"}
    assert manifest["data"]["train_sha256"] == comp.train_sha256 and manifest["kaggle"] is None
    board = (tmp / "oof" / "leaderboard.csv").read_text()
    assert "blend-caruana,blend," in board and "\na,variant," in board and "\nb,variant," in board
    dry = subprocess.run(base + ["submit", "--dry-run"], env=env, capture_output=True, text=True)
    assert dry.returncode == 0 and "is valid (40 rows)" in dry.stdout, dry.stderr[-1000:]
    upload = subprocess.run(base + ["submit", "--competition", "comp"], env=env, capture_output=True, text=True)
    assert upload.returncode == 2 and "kaggle.json" in upload.stderr and "Traceback" not in upload.stderr
    assert read_json(csvs[0].with_suffix(".json"))["kaggle"] is None  # never marked as submitted

    from fer_kaggle.atomic import write_json

    config = read_json(tmp / "oof" / "b" / "config.json")
    config["folds"]["seed"] = 99
    write_json(tmp / "oof" / "b" / "config.json", config)
    refused = subprocess.run(base + ["blend", "--method", "mean"], env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and "member b was trained on other folds" in refused.stderr
    assert len(list((tmp / "subs").glob("*.csv"))) == 1
    only_a = subprocess.run(base + ["blend", "--method", "mean", "--members", "a*"], env=env, capture_output=True, text=True)
    assert only_a.returncode == 0 and "mean of 1 members" in only_a.stdout, only_a.stderr[-1000:]
