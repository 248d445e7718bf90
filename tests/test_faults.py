"""Fault injection: every stage killed with -9 at many of its commit points (chosen by the test
from the points an uninterrupted run passes, `fer_kaggle.atomic.fault_point`), then run again:
the result equals the uninterrupted run's, and what a later stage reads in between is either
whole or refused in one line. Then the same with the disk full, and two processes at once."""

import errno
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fer_kaggle import atomic, layout

ROOT = Path(__file__).resolve().parents[1]
CV = ("cv", "--preset", "smoke", "--variants", "cnn_tiny", "--set", "epochs=3", "--set", "checkpoint_seconds=0",
      "--threads", "1")


def fer(cwd, *args, fault_at=None, log=None, timeout=600, env=None):
    """`fer-kaggle ARGS` in `cwd` as its own process group (a fault kills the group, not pytest);
    `env` adds variables (a fake Kaggle's)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KAGGLE_CONFIG_DIR": str(Path(cwd) / "no-kaggle"), **(env or {})}
    for key in ("KAGGLE_API_TOKEN", atomic.FAULT_AT, atomic.FAULT_LOG):
        env.pop(key, None)
    if fault_at is not None:
        env[atomic.FAULT_AT] = str(fault_at)
    if log is not None:
        env[atomic.FAULT_LOG] = str(log)
    return subprocess.run([sys.executable, "-m", "fer_kaggle", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, start_new_session=True)


def ok(result):
    assert result.returncode == 0, (result.stdout[-1500:], result.stderr[-3000:])
    return result


def one_line_or_ok(result):
    """A stage run on what a killed one left: it works, or refuses in one line (exit 2)."""
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.startswith("fer-kaggle")]
        assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    return result


def commit_points(cwd, *args, env=None):
    """The commit points an uninterrupted run of ARGS passes in `cwd` (it runs there)."""
    log = Path(cwd) / "commit-points.txt"
    log.unlink(missing_ok=True)
    ok(fer(cwd, *args, log=log, env=env))
    return log.read_text().splitlines()


def spread(n, k):
    """k commit points spread over 1..n, the first and last among them."""
    return sorted({1, n, *(round(1 + i * (n - 1) / (k - 1)) for i in range(1, k - 1))})


def clone(source, target):
    shutil.copytree(source, target, symlinks=True)
    return target


def killed(cwd, point, *args, env=None):
    result = fer(cwd, *args, fault_at=point, env=env)
    assert result.returncode == -9, (point, result.returncode, result.stderr[-2000:])


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A tiny competition chosen in data/ with 3 folds: what every stage starts from."""
    from fer_kaggle.data.demo import write_demo_competition

    root = tmp_path_factory.mktemp("faults")
    write_demo_competition(root / "comp", n_train=300, n_test=40, seed=3)
    work = root / "base"
    work.mkdir()
    ok(fer(work, "data", "--source", str(root / "comp")))
    ok(fer(work, "folds", "--k", "3"))
    return work


@pytest.fixture(scope="module")
def trained(base, tmp_path_factory):
    """The base after an uninterrupted `cv`, and that run's commit points."""
    work = clone(base, tmp_path_factory.mktemp("trained") / "work")
    return work, commit_points(work, *CV)


def same_predictions(a, b, name="cnn_tiny"):
    for part in (layout.OOF, layout.TEST):
        assert np.array_equal(np.load(Path(a) / "oof" / name / part), np.load(Path(b) / "oof" / name / part),
                              equal_nan=True), part  # a holdout's OOF is NaN outside its rows


def test_cv_killed_at_many_points_resumes_to_the_uninterrupted_result(trained, tmp_path):
    reference, points = trained
    assert len(points) > 30  # every fold's checkpoints, records and the variant's commit
    for point in spread(len(points), 6):
        work = clone(_base_of(reference), tmp_path / f"k{point}")
        killed(work, point, *CV)
        board = one_line_or_ok(fer(work, "leaderboard"))
        assert ("cnn_tiny" in board.stdout) == layout.is_finished(work / "oof" / "cnn_tiny")  # only what is whole
        one_line_or_ok(fer(work, "blend", "--method", "mean"))  # blends a whole variant, or refuses
        ok(fer(work, *CV))
        same_predictions(work, reference)


def _base_of(reference):
    """A clone of `reference` as it was before its cv: data and folds, no variant."""
    work = Path(str(reference) + "-base")
    if not work.exists():
        clone(reference, work)
        for path in (work / "oof").iterdir():
            if path.is_dir():
                shutil.rmtree(path)
        for name in ("leaderboard.csv", "commit-points.txt"):
            (work / "oof" / name).unlink(missing_ok=True)
        (work / "commit-points.txt").unlink(missing_ok=True)
    return work


def test_cv_with_two_jobs_killed_resumes_to_the_serial_result(trained, tmp_path):
    reference, points = trained
    for point in (4, 12):  # in the first fold jobs (each worker counts its own points), and further on
        work = clone(_base_of(reference), tmp_path / f"k{point}")
        killed(work, point, *CV, "--jobs", "2")
        ok(fer(work, *CV, "--jobs", "2"))
        same_predictions(work, reference)


def test_blend_killed_at_many_points_never_leaves_a_submission_that_is_read(trained, tmp_path):
    reference, _ = trained
    ref = clone(reference, tmp_path / "ref")
    points = commit_points(ref, "blend")
    expected = layout.latest_submission(ref / "submissions")
    for point in spread(len(points), 5):
        work = clone(reference, tmp_path / f"k{point}")
        killed(work, point, "blend")
        dry = one_line_or_ok(fer(work, "submit", "--dry-run"))  # the latest committed one, never an orphan CSV
        if dry.returncode == 0:
            assert layout.latest_submission(work / "submissions") is not None
        ok(fer(work, "blend"))
        csv_path, manifest = layout.latest_submission(work / "submissions")
        assert csv_path.read_bytes() == expected[0].read_bytes()
        assert manifest["cv"] == expected[1]["cv"] and manifest["members"] == expected[1]["members"]
        for method in manifest["methods_tried"]:
            assert layout.is_finished(work / "oof" / f"blend-{method}")


def test_data_killed_at_every_point_leaves_no_temporary_folder_and_resumes(base, tmp_path):
    source = str(base.parent / "comp")
    ref = tmp_path / "ref"
    ref.mkdir()
    points = commit_points(ref, "data", "--source", source)
    for point in range(1, len(points) + 1):
        work = tmp_path / f"k{point}"
        work.mkdir()
        killed(work, point, "data", "--source", source)
        one_line_or_ok(fer(work, "folds"))  # the data in use is whole, or there is none yet
        ok(fer(work, "data", "--source", source))
        assert not [p for p in (work / "data" / "cache").iterdir() if p.name.startswith(".")]
        assert (work / "data" / "spec.json").read_text() == (ref / "data" / "spec.json").read_text()


def test_folds_replaced_and_killed_are_never_half_believed(base, tmp_path):
    ref = clone(base, tmp_path / "ref")
    points = commit_points(ref, "folds", "--k", "4", "--force")
    for point in range(1, len(points) + 1):
        work = clone(base, tmp_path / f"k{point}")
        killed(work, point, "folds", "--k", "4", "--force")
        one_line_or_ok(fer(work, "cv", "--preset", "smoke", "--variants", "cnn_tiny", "--set", "epochs=1",
                           "--folds", "0", "--tag", "probe"))
        ok(fer(work, "folds", "--k", "4", "--force"))
        assert (work / "oof" / "folds.csv").read_text() == (ref / "oof" / "folds.csv").read_text()


def killed_and_resumed(start, tmp_path, args, k=3):
    """ARGS run uninterrupted in a clone of `start`, then killed at k-1 of its commit points (the
    first left out: nothing written yet) in fresh clones and run again: yields (the reference,
    each resumed clone)."""
    ref = clone(start, tmp_path / "ref")
    points = commit_points(ref, *args)
    for point in spread(len(points), k)[1:]:
        work = clone(start, tmp_path / f"k{point}")
        killed(work, point, *args)
        ok(fer(work, *args))
        yield ref, work


def test_pseudo_killed_resumes_to_the_uninterrupted_round(trained, tmp_path):
    args = ("pseudo", "--from", "cnn_tiny", "--variants", "cnn_tiny", "--precision", "0.3", "--threads", "1")
    for ref, work in killed_and_resumed(trained[0], tmp_path, args):
        same_predictions(work, ref, "cnn_tiny+pl")


def test_distill_killed_resumes_to_the_uninterrupted_student(trained, tmp_path):
    args = ("distill", "--teacher", "cnn_tiny", "--student", "cnn_tiny", "--speed-images", "40", "--threads", "1")
    for ref, work in killed_and_resumed(trained[0], tmp_path, args):
        same_predictions(work, ref, "cnn_tiny+kd")


def test_a_holdout_s_final_model_killed_resumes_to_the_uninterrupted_submission(base, tmp_path):
    args = (*CV, "--folds", "0", "--final-model")
    ref = clone(base, tmp_path / "ref")
    points = commit_points(ref, *args)
    inside = [i + 1 for i, line in enumerate(points) if "/final/" in line]  # the final model's own commit points
    assert len(inside) >= 4  # its checkpoints, test predictions, model and record
    for point in (inside[0], inside[len(inside) // 2], inside[-1]):
        work = clone(base, tmp_path / f"k{point}")
        killed(work, point, *args)
        ok(fer(work, *args))
        same_predictions(work, ref)
        assert layout.read_fold_done(work / "oof" / "cnn_tiny", layout.FINAL)["rows"] == 300


def test_tune_killed_resumes_and_exports_checked_variants(base, tmp_path):
    from fer_kaggle.tuning import load_exported

    args = ("tune", "--search", "s", "--family", "cnn_tiny", "--tuner", "random", "--trials", "2", "--set", "epochs=1",
            "--threads", "1", "--top", "2")
    for ref, work in killed_and_resumed(base, tmp_path, args):
        exported = load_exported("tuned:s", work / "tuning")
        assert [v["name"] for v in exported] == [v["name"] for v in load_exported("tuned:s", ref / "tuning")]


# ----------------------------------------------------------------------------- submit, against a fake Kaggle

FAKE_KAGGLE = '''"""A fake of the kaggle package's API for tests: the competition's submissions live in the
JSON file $FAKE_KAGGLE_SERVER (a server outlives the processes that call it); an upload is
scored at once. With $FAKE_KAGGLE_DIE_AFTER_UPLOAD, the caller dies right after Kaggle has
its file (before it hears back)."""
import json, os, signal
from pathlib import Path


class KaggleApi:
    def authenticate(self):
        pass

    def _server(self):
        path = Path(os.environ["FAKE_KAGGLE_SERVER"])
        return path, (json.loads(path.read_text()) if path.exists() else [])

    def competition_submit(self, file_name, message, competition):
        path, subs = self._server()
        subs.append({"fileName": Path(file_name).name, "competition": competition, "status": "complete",
                     "publicScore": "0.5", "privateScore": "0.4", "ref": len(subs) + 1})
        path.write_text(json.dumps(subs))
        if os.environ.get("FAKE_KAGGLE_DIE_AFTER_UPLOAD"):
            os.killpg(os.getpgid(0), signal.SIGKILL)
        return "ok"

    def competition_submissions(self, competition):
        return [s for s in self._server()[1] if s["competition"] == competition]
'''


def fake_kaggle(folder):
    """Variables that make `fer-kaggle submit` in `folder` talk to a fake Kaggle (its package
    first on the path, credentials present) keeping its server in `folder`/kaggle-server.json."""
    package = Path(folder) / "fake-kaggle" / "kaggle"
    (package / "api").mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "api" / "__init__.py").write_text("")
    (package / "api" / "kaggle_api_extended.py").write_text(FAKE_KAGGLE)
    return {"PYTHONPATH": f"{package.parent}{os.pathsep}{ROOT}", "KAGGLE_USERNAME": "someone", "KAGGLE_KEY": "x" * 32,
            "FAKE_KAGGLE_SERVER": str(Path(folder) / "kaggle-server.json")}


def uploads_and_record(work):
    """(the uploads the fake Kaggle holds, the latest submission's `kaggle` record)."""
    server = work / "kaggle-server.json"
    uploads = json.loads(server.read_text()) if server.exists() else []
    return uploads, layout.latest_submission(work / "submissions")[1].get("kaggle")


SUBMIT = ("submit", "--competition", "comp", "--wait", "--timeout", "30")


@pytest.fixture(scope="module")
def blended(trained, tmp_path_factory):
    work = clone(trained[0], tmp_path_factory.mktemp("blended") / "work")
    ok(fer(work, "blend", "--method", "mean"))
    return work


def test_submit_killed_before_during_or_after_its_upload_uploads_once_and_records_the_score(blended, tmp_path):
    ref = clone(blended, tmp_path / "ref")
    points = commit_points(ref, *SUBMIT, env=fake_kaggle(ref))
    assert len(points) == 3  # "uploading", "submitted", the score
    uploads, record = uploads_and_record(ref)
    assert len(uploads) == 1 and record["submitted_at"] and record["status"] == "complete" and record["public_score"] == 0.5
    cases = [(point, {}) for point in range(1, len(points) + 1)] + [("upload", {"FAKE_KAGGLE_DIE_AFTER_UPLOAD": "1"})]
    for point, extra in cases:
        work = clone(blended, tmp_path / f"k{point}")
        env = fake_kaggle(work)
        if point == "upload":  # killed after Kaggle took the file, before the answer came back
            assert fer(work, *SUBMIT, env={**env, **extra}).returncode == -9
        else:
            killed(work, point, *SUBMIT, env=env)
        rerun = ok(fer(work, *SUBMIT, env=env))
        uploads, record = uploads_and_record(work)
        assert len(uploads) == 1, (point, uploads, rerun.stdout)  # never a second daily slot
        assert record["submitted_at"] and record["status"] == "complete" and record["public_score"] == 0.5, (point, record)
        again = ok(fer(work, *SUBMIT, env=env))  # and a third run sends nothing either
        assert "not sent again" in again.stdout and len(uploads_and_record(work)[0]) == 1


# ----------------------------------------------------------------------------- a full disk


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB tmpfs (CI runs as root; elsewhere the test is skipped)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (not root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_stops_cv_in_one_line_and_a_rerun_with_space_finishes_it(trained, small_disk, tmp_path):
    reference, _ = trained
    work = clone(_base_of(reference), tmp_path / "work")
    args = ("--oof-dir", str(small_disk / "oof"))
    (small_disk / "oof").mkdir()
    for name in ("folds.csv", "folds.json"):
        shutil.copy(work / "oof" / name, small_disk / "oof" / name)
    (small_disk / "filler").write_bytes(b"\0" * (2 * 2**20 + 600 * 2**10))  # a disk nearly full
    result = fer(work, *args, *CV)
    lines = [line for line in result.stderr.splitlines() if line.startswith("fer-kaggle")]
    assert result.returncode == 2 and len(lines) == 1 and "disk is full" in lines[0], result.stderr[-3000:]
    assert not layout.is_finished(small_disk / "oof" / "cnn_tiny")
    assert not list((small_disk / "oof").rglob(".*.tmp*"))  # nothing half-written
    (small_disk / "filler").unlink()
    ok(fer(work, *args, *CV))
    for part in (layout.OOF, layout.TEST):
        assert np.array_equal(np.load(small_disk / "oof" / "cnn_tiny" / part),
                              np.load(reference / "oof" / "cnn_tiny" / part))


def fill(disk):
    """Write into `disk` until it is full; the filler's path."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as e:
            assert e.errno == errno.ENOSPC
    return filler


def full_disk_line(result):
    lines = [line for line in result.stderr.splitlines() if line.startswith("fer-kaggle")]
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "disk" in lines[0], lines[0]


def test_a_full_disk_stops_blend_and_submit_in_one_line_and_nothing_is_uploaded(blended, small_disk, tmp_path):
    reference = layout.latest_submission(blended / "submissions")
    work = clone(blended, tmp_path / "work")
    shutil.rmtree(work / "submissions")
    args = ("--submissions-dir", str(small_disk / "subs"))
    filler = fill(small_disk)
    full_disk_line(fer(work, *args, "blend", "--method", "mean"))
    assert not list(small_disk.rglob("*.csv")) and not list(small_disk.rglob(".*.tmp*"))  # no orphan, no half
    filler.unlink()
    ok(fer(work, *args, "blend", "--method", "mean"))
    csv_path, manifest = layout.latest_submission(small_disk / "subs")
    assert csv_path.read_bytes() == reference[0].read_bytes() and manifest["cv"] == reference[1]["cv"]
    env = fake_kaggle(work)
    filler = fill(small_disk)
    full_disk_line(fer(work, *args, *SUBMIT, env=env))  # the upload is not recorded: it is not made
    assert not (work / "kaggle-server.json").exists()
    filler.unlink()
    ok(fer(work, *args, *SUBMIT, env=env))
    server = json.loads((work / "kaggle-server.json").read_text())
    assert len(server) == 1 and layout.latest_submission(small_disk / "subs")[1]["kaggle"]["public_score"] == 0.5


def test_a_full_disk_stops_data_in_one_line_and_a_rerun_with_space_caches_it(base, small_disk, tmp_path):
    source = str(base.parent / "comp")
    work = tmp_path / "work"
    work.mkdir()
    args = ("--data-dir", str(small_disk / "data"))
    filler = fill(small_disk)
    full_disk_line(fer(work, "data", "--source", source, *args))
    assert not (small_disk / "data").exists() or not list((small_disk / "data").rglob("*.npy"))
    filler.unlink()
    ok(fer(work, "data", "--source", source, *args))
    assert (small_disk / "data" / "spec.json").read_text() == (base / "data" / "spec.json").read_text()


# ----------------------------------------------------------------------------- two processes at once


def test_two_runs_on_one_folder_never_both_write(trained, tmp_path):
    reference, _ = trained
    work = clone(_base_of(reference), tmp_path / "work")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen([sys.executable, "-m", "fer_kaggle", *CV], cwd=work, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):  # until the first run holds the folder
            if (work / "oof" / "cnn_tiny" / "config.json").exists():
                break
            first.poll()
            assert first.returncode is None, first.stderr.read()[-2000:]
            time.sleep(0.1)
        for command in (CV, ("blend",), ("folds", "--force")):
            second = fer(work, *command)
            assert second.returncode == 2 and "is in use by process" in second.stderr, second.stderr[-2000:]
    finally:
        out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-2000:]
    same_predictions(work, reference)
