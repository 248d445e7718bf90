"""K-fold CV: complete and valid OOF, integrity, determinism, resume after a real kill,
parallel fold jobs (joblib processes and a Dask LocalCluster) equal to the serial run."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_variant
from fer_kaggle import assembly, cv, fold_job, time_share, variant
from fer_kaggle.atomic import read_json
from fer_kaggle.errors import ConfigError, IntegrityError, PieceEnded

ROOT = Path(__file__).resolve().parents[1]


def run(comp, folds, meta, oof_dir, variants, **kwargs):
    return cv.run_cv(comp, folds, meta, variants, oof_dir, threads=1, log=lambda m, f=None: None, **kwargs)


def test_cv_writes_complete_valid_artifacts_and_a_leaderboard(tiny_comp):
    comp, folds, meta, tmp = tiny_comp
    rows = run(comp, folds, meta, tmp / "oof", [tiny_variant("a"), tiny_variant("b", epochs=1)])
    for name in ("a", "b"):
        d = tmp / "oof" / name
        oof, test = np.load(d / "oof.npy"), np.load(d / "test.npy")
        assert oof.shape == (300, 7) and oof.dtype == np.float32 and np.allclose(oof.sum(1), 1, atol=1e-4)
        assert test.shape == (40, 7) and np.allclose(test.sum(1), 1, atol=1e-4)
        fold_tests = [np.load(d / f"fold{k}" / "test.npy") for k in range(3)]
        assert np.allclose(test, np.mean(fold_tests, axis=0), atol=1e-6)
        for k in range(3):
            fold = d / f"fold{k}"
            assert {p.name for p in fold.iterdir()} == {"history.csv", "model.keras", "valid.npy", "test.npy", "rows.npz",
                                                        "done.json", ".lock"}  # nothing temporary left
            assert np.allclose(np.load(fold / "valid.npy"), oof[folds == k])
        config = read_json(d / "config.json")
        assert config["model"] == "cnn_tiny" and config["folds"]["train_sha256"] == comp.train_sha256
        metrics = read_json(d / "metrics.json")
        assert metrics["accuracy"] == pytest.approx(float(np.mean(oof.argmax(1) == comp.y_train)))
        assert len(metrics["fold_accuracy"]) == 3 and "test_accuracy" in metrics
    assert [r["name"] for r in rows] == sorted(["a", "b"], key=lambda n: -read_json(tmp / "oof" / n / "metrics.json")["accuracy"])
    assert (tmp / "oof" / "leaderboard.csv").read_text().startswith("name,kind,metric,score,accuracy,log_loss")


def test_integrity_check_catches_a_leaked_fold(tiny_comp, monkeypatch):
    comp, folds, meta, tmp = tiny_comp
    honest = variant.split_rows

    def leaky(folds, k):
        train_rows, valid_rows = honest(folds, k)
        return np.concatenate([train_rows, valid_rows[:5]]), valid_rows

    monkeypatch.setattr(fold_job, "split_rows", leaky)
    with pytest.raises(IntegrityError, match="trained on 5 of the rows it predicted"):
        run(comp, folds, meta, tmp / "oof", [tiny_variant(epochs=1)])
    assert not (tmp / "oof" / "cnn_tiny" / "oof.npy").exists()


def test_a_fold_predicting_other_rows_than_it_holds_out_or_one_twice_is_refused(tiny_comp):
    comp, folds, meta, tmp = tiny_comp
    run(comp, folds, meta, tmp / "oof", [tiny_variant(epochs=1)])
    rows = tmp / "oof" / "cnn_tiny" / "fold1" / "rows.npz"
    with np.load(rows) as r:
        train_rows, valid_rows = r["train_rows"], r["valid_rows"]
    assembly.assemble(tmp / "oof" / "cnn_tiny", folds, comp.y_train, 7)  # as written: accepted
    for other in (np.concatenate([valid_rows[:-1], train_rows[:1]]),  # a row of another fold instead of its own
                  np.concatenate([valid_rows[:-1], valid_rows[:1]])):  # one of its rows predicted twice
        np.savez(rows, train_rows=np.setdiff1d(train_rows, other), valid_rows=other)
        with pytest.raises(IntegrityError, match="differ from the rows folds.csv holds out"):
            assembly.assemble(tmp / "oof" / "cnn_tiny", folds, comp.y_train, 7)


def test_same_config_gives_the_same_oof_and_a_changed_config_is_refused(tiny_comp):
    comp, folds, meta, tmp = tiny_comp
    run(comp, folds, meta, tmp / "one", [tiny_variant()])
    run(comp, folds, meta, tmp / "two", [tiny_variant()])
    assert np.array_equal(np.load(tmp / "one/cnn_tiny/oof.npy"), np.load(tmp / "two/cnn_tiny/oof.npy"))
    with pytest.raises(ConfigError, match="different train.*epochs: 2 then, 3 now.*--tag"):
        run(comp, folds, meta, tmp / "one", [tiny_variant(epochs=3)])


def test_parallel_jobs_and_a_dask_cluster_give_the_serial_oof(tiny_comp):
    from dask.distributed import LocalCluster

    comp, folds, meta, tmp = tiny_comp
    variants = [tiny_variant("a", epochs=1), tiny_variant("b", epochs=1, mixup=0.2)]
    run(comp, folds, meta, tmp / "serial", variants)
    run(comp, folds, meta, tmp / "joblib", variants, jobs=2)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None) as cluster:
        run(comp, folds, meta, tmp / "dask", variants, jobs=2, scheduler=cluster.scheduler_address)
    for name in ("a", "b"):
        serial = np.load(tmp / "serial" / name / "oof.npy")
        assert np.array_equal(serial, np.load(tmp / "joblib" / name / "oof.npy"))
        assert np.array_equal(serial, np.load(tmp / "dask" / name / "oof.npy"))


def cli(tmp, *args):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "tensorflow"}
    return [sys.executable, "-m", "fer_kaggle", "--data-dir", str(tmp / "data"), "--oof-dir", str(tmp / args[0]),
            "cv", "--preset", "smoke", "--variants", "cnn_tiny", "--threads", "1",
            "--set", "epochs=4", "--set", "checkpoint_seconds=0", "--set", "filters=(4, 8)", *args[1:]], env


def test_a_run_killed_mid_fold_resumes_to_the_same_oof(tiny_comp):
    comp, folds, meta, tmp = tiny_comp
    for name in ("killed", "whole"):
        (tmp / name).mkdir()
        for f in ("folds.csv", "folds.json"):
            shutil.copy(tmp / "oof" / f, tmp / name / f)
    args, env = cli(tmp, "killed")
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = tmp / "killed" / "cnn_tiny" / "fold1" / "state.json"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and read_json(state)["epoch"] >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp / "killed" / "cnn_tiny" / "oof.npy").exists()
    assert (tmp / "killed" / "cnn_tiny" / "fold0" / "done.json").exists()
    resumed = subprocess.run(args, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "fold 3/3 epoch 1/" in resumed.stdout  # the progress lines are there to read...
    assert "fold 1/3 epoch 1/" not in resumed.stdout  # ...the finished fold 0 was skipped...
    assert "fold 2/3 epoch 1/" not in resumed.stdout and "fold 2/3 epoch 2/" not in resumed.stdout  # ...fold 1 resumed
    args, env = cli(tmp, "whole")
    whole = subprocess.run(args, env=env, capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr[-2000:]
    assert np.array_equal(np.load(tmp / "killed/cnn_tiny/oof.npy"), np.load(tmp / "whole/cnn_tiny/oof.npy"))
    assert np.array_equal(np.load(tmp / "killed/cnn_tiny/test.npy"), np.load(tmp / "whole/cnn_tiny/test.npy"))


def test_cli_errors_are_one_line(tiny_comp):
    comp, folds, meta, tmp = tiny_comp
    args, env = cli(tmp, "oof")
    args[args.index("cnn_tiny")] = "no_such_model"
    result = subprocess.run(args, env=env, capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    ours = [line for line in result.stderr.splitlines() if line.startswith("fer-kaggle")]
    assert len(ours) == 1 and "unknown model 'no_such_model'" in ours[0]
    # Anything else on stderr is TensorFlow's own start-up log (absl), never ours.
    others = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("fer-kaggle")]
    assert all(line.startswith(("WARNING: All log messages", "I0000", "E0000", "W0000")) for line in others), others


def test_time_left_by_a_finished_job_goes_to_the_jobs_after_it(tmp_path):
    costs = {("a", 0): 10.0, ("a", 1): 10.0, ("b", 0): 20.0}
    share = time_share.TimeShare(400, costs, tmp_path)
    first = share.budget("a", 0)
    assert first == pytest.approx(100, rel=0.02)  # 400 s x 10 / 40
    (tmp_path / "a" / "fold0").mkdir(parents=True)
    (tmp_path / "a" / "fold0" / "done.json").write_text("{}")  # it finished at once: its time is free again
    assert share.budget("a", 1) == pytest.approx(400 * 10 / 30, rel=0.02)
    assert time_share.TimeShare(400, costs, tmp_path, parallel=2).budget("a", 1) == pytest.approx(400 * 2 * 10 / 30, rel=0.02)
    assert time_share.TimeShare(400, costs, tmp_path, parallel=2).budget("b", 0) == pytest.approx(400, rel=0.02)  # never more than is left


def test_a_time_limit_that_affords_few_epochs_is_warned_of(tiny_comp):
    assert time_share.affordable_epochs(None, [10.0]) is None and time_share.affordable_epochs(100.0, []) is None
    assert time_share.affordable_epochs(100.0, [10.0, 10.0, 30.0]) == pytest.approx(2.0)
    assert time_share.affordable_epochs(100.0, [10.0, 10.0, 30.0], jobs=2) == pytest.approx(4.0)
    comp, folds, meta, tmp = tiny_comp
    warnings = {}
    for limit in (0.5, 600):
        lines = []
        cv.run_cv(comp, folds, meta, [tiny_variant("a", epochs=2)], tmp / str(limit), threads=1, time_limit=limit,
                  log=lambda m, f=None: lines.append(m))
        warnings[limit] = [m for m in lines if m.startswith("warning:")]
    assert warnings[600] == []
    assert len(warnings[0.5]) == 1 and "epochs of each of the 3 fold jobs" in warnings[0.5][0]


def test_a_run_in_pieces_ends_checkpointed_and_resumes_to_the_uninterrupted_oof(tiny_comp):
    """With mixup and cutmix on: a resumed step mixes images and targets as the uninterrupted one does."""
    comp, folds, meta, tmp = tiny_comp
    variant = lambda: [tiny_variant("a", epochs=3, checkpoint_seconds=0, mixup=0.4, cutmix=1.0)]  # noqa: E731
    run(comp, folds, meta, tmp / "whole", variant())
    pieces = 0
    while True:
        try:
            run(comp, folds, meta, tmp / "pieces", variant(), piece_seconds=2)
            break
        except PieceEnded as ended:
            pieces += 1
            assert pieces < 20 and "piece" in str(ended)
            assert not (tmp / "pieces" / "a" / "oof.npy").exists()
    assert pieces >= 1
    assert np.array_equal(np.load(tmp / "pieces/a/oof.npy"), np.load(tmp / "whole/a/oof.npy"))
    assert np.array_equal(np.load(tmp / "pieces/a/test.npy"), np.load(tmp / "whole/a/test.npy"))


def test_parallel_jobs_in_pieces_each_checkpoint_their_own_and_resume_to_the_serial_oof(tiny_comp):
    """The end of a piece never cuts a parallel job short (each stops at its own epoch's end,
    checkpointed), and jobs queued behind them wait for the next piece."""
    comp, folds, meta, tmp = tiny_comp
    variant = lambda: [tiny_variant("a", epochs=3, checkpoint_seconds=0)]  # noqa: E731
    run(comp, folds, meta, tmp / "whole", variant())
    pieces = 0
    while True:
        try:
            run(comp, folds, meta, tmp / "pieces", variant(), jobs=2, piece_seconds=1)
            break
        except PieceEnded as ended:
            pieces += 1
            assert pieces < 30 and "next piece" in str(ended)
            started = [d for d in (tmp / "pieces" / "a").glob("fold*") if (d / "state.json").exists()]
            assert all(read_json(d / "state.json")["epoch"] >= 1 for d in started)
    assert pieces >= 2
    assert np.array_equal(np.load(tmp / "pieces/a/oof.npy"), np.load(tmp / "whole/a/oof.npy"))


def test_the_time_limit_counts_the_seconds_of_earlier_pieces(tmp_path):
    costs = {("a", 0): 10.0, ("a", 1): 10.0}
    key = {"variants": ["a"], "time_limit": 100}
    time_share.TimeShare(100, costs, tmp_path, key=key, spent=30).record()
    assert time_share.spent_before(tmp_path, key) == pytest.approx(30, abs=1)
    assert time_share.spent_before(tmp_path, {**key, "time_limit": 200}) == 0.0  # another run starts afresh
    resumed = time_share.TimeShare(100, costs, tmp_path, key=key, spent=time_share.spent_before(tmp_path, key))
    assert resumed.budget("a", 0) == pytest.approx(70 * 10 / 20, rel=0.03)


def test_a_variant_trained_before_a_setting_existed_resumes_with_that_setting_s_default(tiny_comp):
    """A config.json written before a training setting was added (here `recipe`) describes the
    run the default gives: the next run resumes it rather than refusing it; a real change is refused."""
    comp, folds, meta, tmp = tiny_comp
    run(comp, folds, meta, tmp / "oof", [tiny_variant(epochs=1)])
    config_path = tmp / "oof" / "cnn_tiny" / "config.json"
    old = read_json(config_path)
    del old["train"]["recipe"]
    from fer_kaggle.atomic import write_json

    write_json(config_path, old)
    run(comp, folds, meta, tmp / "oof", [tiny_variant(epochs=1)])  # resumes: every fold is done
    with pytest.raises(ConfigError, match="different train"):
        run(comp, folds, meta, tmp / "oof", [tiny_variant(epochs=2)])


def test_each_fold_plans_from_the_pace_the_fold_before_it_measured(tiny_comp, monkeypatch):
    """The step measured before the run plans fold 0 only: a later fold plans its epochs (and
    the seconds its predictions keep) from what the fold that finished before it timed over its
    epochs (FER2013's cpu hour: a probe that planned 25-26 epochs for folds that fitted 16-19)."""
    from fer_kaggle import job_pace, training

    comp, folds, meta, tmp = tiny_comp
    probe = 1e-5  # a step believed almost free: no fold's real pace
    monkeypatch.setattr(training, "measure_step_seconds", lambda build, cfg: probe)
    given, fit = [], training.fit

    def spy(*args, **kwargs):
        given.append(kwargs["step_seconds"])
        return fit(*args, **kwargs)

    monkeypatch.setattr(training, "fit", spy)
    run(comp, folds, meta, tmp / "oof", [tiny_variant("a", epochs=3)], time_limit=600)
    done = [read_json(tmp / "oof" / "a" / f"fold{k}" / "done.json") for k in range(3)]
    assert all(d["step_seconds"] > 100 * probe for d in done)  # timed over epochs 2-3 (the first traced)
    assert given == [probe, done[0]["step_seconds"], done[1]["step_seconds"]]
    assert [d["planned_from"] for d in done] == [job_pace.PROBE, "fold0", "fold1"]
    assert [d["predicted_images"] for d in done] == [(np.sum(folds == k) + 40) * 2 for k in range(3)]  # flip TTA


def test_the_planning_pace_is_the_last_finished_job_s_where_it_timed_one(tmp_path):
    from fer_kaggle import job_pace

    def finish(folder, when, **done):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "done.json").write_text(json.dumps(done))
        os.utime(tmp_path / folder / "done.json", (when, when))

    assert job_pace.planning_pace(tmp_path, None, 32) is None  # no time limit: nothing planned
    first = job_pace.planning_pace(tmp_path, 0.3, 32)
    assert (first.step_seconds, first.source) == (0.3, job_pace.PROBE)
    assert first.predict_seconds_per_image == pytest.approx(0.3 / 32 / 3)
    finish("fold2", 2000, step_seconds=0.5, predict_seconds=30.0, predicted_images=1000)
    finish("fold0", 1000, step_seconds=0.2, predict_seconds=10.0, predicted_images=1000)
    finish("fold1", 3000, step_seconds=None, predict_seconds=40.0, predicted_images=1000)  # one epoch: none timed
    pace = job_pace.planning_pace(tmp_path, 0.3, 32)
    assert (pace.step_seconds, pace.source) == (0.5, "fold2")  # the last that timed its epochs, not fold1
    assert pace.predict_seconds_per_image == pytest.approx(0.04)  # the last predictions timed: fold1's
