"""What a competitor trusts: artifacts that count only once committed, identities that cover
what they claim, locks that hold for every process, scores as Kaggle computes them. Each test
fails without the fix it names."""

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_variant
from fer_kaggle import atomic, cv, layout
from fer_kaggle.leaderboard import leaderboard_rows
from fer_kaggle.errors import ConfigError, DataError, FoldsError

ROOT = Path(__file__).resolve().parents[1]


def quiet(*a, **k):
    pass


# ----------------------------------------------------------------------------- committed artifacts


def test_a_variant_rewritten_in_part_is_not_finished_and_never_blended(tiny_comp):
    from fer_kaggle.blend import discover_members

    comp, folds, meta, tmp = tiny_comp
    cv.run_cv(comp, folds, meta, [tiny_variant("a", epochs=1), tiny_variant("b", epochs=1, seed=1)], tmp / "oof",
              threads=1, log=quiet)
    assert discover_members(tmp / "oof") == ["a", "b"]
    # a finalize killed after its new oof.npy, before test.npy: the old marker names other bytes
    oof = np.load(tmp / "oof" / "a" / "oof.npy")
    atomic.write_npy(tmp / "oof" / "a" / "oof.npy", oof[::-1].copy())
    assert not layout.is_finished(tmp / "oof" / "a")
    assert discover_members(tmp / "oof") == ["b"]
    assert [r["name"] for r in leaderboard_rows(tmp / "oof")] == ["b"]
    # a rerun of cv trains nothing and commits the variant again
    cv.run_cv(comp, folds, meta, [tiny_variant("a", epochs=1)], tmp / "oof", threads=1, log=quiet)
    assert layout.is_finished(tmp / "oof" / "a") and np.array_equal(np.load(tmp / "oof" / "a" / "oof.npy"), oof)


def test_a_changed_test_set_is_never_given_stale_test_predictions(tiny_comp):
    from fer_kaggle.blend import load_members
    from fer_kaggle.data.source import test_identity

    comp, folds, meta, tmp = tiny_comp
    cv.run_cv(comp, folds, meta, [tiny_variant("a", epochs=1)], tmp / "oof", threads=1, log=quiet)
    for changed_ids, changed_x in ((comp.test_ids[::-1], comp.x_test[::-1]),  # reordered
                                   (comp.test_ids, np.ascontiguousarray(comp.x_test[:, ::-1]))):  # other images
        comp.test_sha256 = test_identity(changed_ids, changed_x)
        with pytest.raises(ConfigError, match="predicted another test set"):
            load_members(tmp / "oof", ["a"], comp, meta)
        with pytest.raises(ConfigError, match="different test set"):
            cv.run_cv(comp, folds, meta, [tiny_variant("a", epochs=1)], tmp / "oof", threads=1, log=quiet)


def test_folds_replaced_by_a_stopped_run_are_refused_not_trusted(tiny_comp):
    from fer_kaggle.data import load_folds

    comp, folds, meta, tmp = tiny_comp
    csv_path = tmp / "oof" / "folds.csv"
    lines = csv_path.read_text().splitlines()
    lines[1], lines[2] = lines[1].split(",")[0] + "," + lines[2].split(",")[1], lines[2]
    csv_path.write_text("\n".join(lines) + "\n")  # a new K's CSV under the old meta
    with pytest.raises(FoldsError, match="not the file its folds.json describes"):
        load_folds(tmp / "oof", comp.identity, len(comp.y_train))


def test_a_killed_cache_build_leaves_nothing_the_next_one_does_not_remove(tmp_path):
    from fer_kaggle.data import store
    from fer_kaggle.data.synthetic import write_demo

    directory = write_demo(tmp_path / "comp", "images", n_train=60, n_test=12, n_classes=3)
    stale = tmp_path / "data" / "cache" / ".0123456789abcdef.xyz"
    stale.mkdir(parents=True)
    (stale / "x_train.npy").write_bytes(b"\0" * 4096)
    (stale / ".building").write_text("")  # its builder was killed: nobody holds the lock
    store.prepare(tmp_path / "data", source=directory)
    assert not stale.exists()
    assert not [p for p in (tmp_path / "data" / "cache").iterdir() if p.name.startswith(".")]


def test_a_full_disk_during_the_cache_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    from fer_kaggle.data import store
    from fer_kaggle.data.synthetic import write_demo

    directory = write_demo(tmp_path / "comp", "images", n_train=60, n_test=12, n_classes=3)
    calls = []

    def full(fd, offset, length):
        calls.append(length)
        if len(calls) == 2:  # the second array does not fit beside the first
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(DataError, match="does not fit the free disk") as error:
        store.prepare(tmp_path / "data", source=directory)
    assert "\n" not in str(error.value) and len(calls) == 2
    assert not (tmp_path / "data").exists()


def test_temporaries_of_a_killed_writer_are_swept_when_its_fold_resumes(tiny_comp):
    comp, folds, meta, tmp = tiny_comp
    fold_dir = tmp / "oof" / "a" / "fold0"
    fold_dir.mkdir(parents=True)
    for leftover in (".model.keras.abc123.tmp", ".model.keras.abc123.tmp.keras", ".valid.npy.x.tmp"):
        (fold_dir / leftover).write_bytes(b"half")
    cv.run_cv(comp, folds, meta, [tiny_variant("a", epochs=1)], tmp / "oof", threads=1, log=quiet, only_folds=[0])
    assert not list(fold_dir.glob(".*.tmp*"))


def test_best_weights_stay_named_by_the_state_until_it_names_new_ones(tiny_comp, monkeypatch):
    """select=best: the old best file is removed only after state.json names the new one."""
    from fer_kaggle.training import loop

    comp, folds, meta, tmp = tiny_comp
    seen = []
    original = loop._checkpoint

    def checking(model, state, workdir):
        named = atomic.read_json(Path(workdir) / "state.json")["best_weights"] if (Path(workdir) / "state.json").exists() else ""
        seen.append(not named or (Path(workdir) / named).exists())  # what state.json names exists, always
        original(model, state, workdir)
        assert sorted(p.name for p in Path(workdir).glob("best-*")) == ([state.best_weights] if state.best_weights else [])

    monkeypatch.setattr(loop, "_checkpoint", checking)
    variant = tiny_variant("a", epochs=3, select="best", checkpoint_seconds=0)
    cv.run_cv(comp, folds, meta, [variant], tmp / "oof", threads=1, log=quiet, only_folds=[0])
    assert len(seen) >= 3 and all(seen)


# ----------------------------------------------------------------------------- one run at a time


def test_a_fold_held_by_a_live_worker_is_never_trained_beside_it(tiny_comp):
    from fer_kaggle.lock import LockedError, exclusive

    comp, folds, meta, tmp = tiny_comp
    fold_dir = tmp / "oof" / "a" / "fold1"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nsys.path.insert(0, sys.argv[1])\n"
                               "from fer_kaggle.lock import exclusive\nwith exclusive(sys.argv[2], 'cv a fold 1'):\n"
                               "    print('held', flush=True); time.sleep(60)", str(ROOT), str(fold_dir)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockedError, match="cv a fold 1"):
            cv.run_cv(comp, folds, meta, [tiny_variant("a", epochs=1)], tmp / "oof", threads=1, log=quiet)
        assert not (fold_dir / "done.json").exists()
    finally:
        holder.kill()
        holder.wait()
    with exclusive(fold_dir, "test"):  # the kernel dropped the killed holder's lock
        pass


def test_a_worker_ends_when_its_run_is_killed(tmp_path):
    """A fold worker's process (a child of the run) ends on its own once the run is gone."""
    script = ("import os, sys, time\nsys.path.insert(0, sys.argv[1])\nfrom fer_kaggle.lock import end_with_parent\n"
              "pid = os.fork()\nif pid == 0:\n    end_with_parent(os.getppid(), poll_seconds=0.1)\n"
              "    open(sys.argv[2], 'w').write(str(os.getpid()))\n    time.sleep(60)\n    os._exit(0)\n"
              "time.sleep(60)\n")
    marker = tmp_path / "worker.pid"
    run = subprocess.Popen([sys.executable, "-c", script, str(ROOT), str(marker)])
    for _ in range(100):
        if marker.exists() and marker.read_text():
            break
        time.sleep(0.1)
    worker = int(marker.read_text())
    run.kill()  # kill -9 of the run
    run.wait()
    for _ in range(50):
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(worker, 9)
        pytest.fail("the worker outlived its run")


@pytest.mark.parametrize("command, folder", [("tune", "tuning"), ("submit", "submissions")])
def test_tune_and_submit_are_refused_beside_a_live_one(tiny_comp, capsys, command, folder):
    from fer_kaggle.cli import main
    from fer_kaggle.lock import exclusive

    tmp = tiny_comp[3]
    base = ["--data-dir", str(tmp / "data"), "--oof-dir", str(tmp / "oof"), "--tuning-dir", str(tmp / "tuning"),
            "--submissions-dir", str(tmp / "submissions")]
    args = {"tune": ["tune", "--search", "s", "--family", "cnn_tiny", "--trials", "1"], "submit": ["submit"]}[command]
    with exclusive(tmp / folder, command):  # as a live process of the same command holds it
        assert main(base + args) == 2
    assert f"{tmp / folder}/ is in use by" in capsys.readouterr().err
    assert not (tmp / "tuning" / "s").exists()


# ----------------------------------------------------------------------------- the distributed parts


@pytest.mark.parametrize("address, allowed", [("tcp://127.0.0.1:8786", True), ("localhost:8786", True),
                                              ("tls://10.0.0.5:8786", True), ("tcp://10.0.0.5:8786", False),
                                              ("tcp://0.0.0.0:8786", False)])
def test_fold_jobs_go_only_to_a_loopback_or_tls_scheduler(address, allowed):
    from fer_kaggle.network import check_dask_address

    if allowed:
        assert check_dask_address(address) == address
    else:
        with pytest.raises(ConfigError, match="SSH tunnel"):
            check_dask_address(address)


def test_the_tuners_oracle_binds_to_loopback_only(monkeypatch, tmp_path):
    from fer_kaggle import tuning

    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "0.0.0.0")
    with pytest.raises(ConfigError, match="127.0.0.1 only"):
        tuning.search("s", "cnn_tiny", None, {}, None, tuning_dir=tmp_path)


@pytest.mark.parametrize("change, words", [
    (lambda v: v.update(model="os.system"), "not a registered model"),
    (lambda v: v["model_hp"].update(filters="__import__('os')"), "not a plain value"),
    (lambda v: v["model_hp"].update(nonsense=3), "nonsense"),
    (lambda v: v["train"].update(optimizer="evil"), "optimizer"),
    (lambda v: v.update(name="../escape"), "is not allowed"),
])
def test_an_exported_variant_is_checked_before_anything_trains_it(tmp_path, change, words):
    from fer_kaggle.tuning import load_exported

    variant = {"name": "s-1", "model": "cnn_tiny", "model_hp": {"filters": [4, 8]}, "train": {"epochs": 2}}
    atomic.write_json(tmp_path / "s" / "best" / "s-1.json", variant)
    assert load_exported("tuned:s", tmp_path)[0]["model_hp"] == {"filters": (4, 8)}  # the untouched export loads
    change(variant)
    atomic.write_json(tmp_path / "s" / "best" / "s-1.json", variant)
    with pytest.raises(ConfigError, match=words):
        load_exported("tuned:s", tmp_path)


def test_predict_loads_only_keras_archives_in_safe_mode(tmp_path):
    from fer_kaggle.shipped import load_model

    (tmp_path / "model.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(ConfigError, match="not a .keras model"):
        load_model(tmp_path / "model.h5")


# ----------------------------------------------------------------------------- scores as Kaggle computes them


def test_log_loss_clips_as_kaggle_does():
    from sklearn.metrics import log_loss as sklearn_log_loss

    from fer_kaggle.metrics import log_loss

    probs = np.array([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5], [1e-9, 1 - 1e-9, 0.0]])
    labels = np.array([1, 2, 0])  # the first row's true class has probability 0: clipped at 1e-15, not 1e-7
    expected = -np.mean(np.log([1e-15 / (1 + 2e-15), 0.5, 1e-9]))
    assert log_loss(probs, labels) == pytest.approx(expected, rel=1e-9)
    assert log_loss(probs, labels) == pytest.approx(sklearn_log_loss(labels, np.clip(probs, 1e-15, 1)), rel=1e-6)
    assert log_loss(probs, labels) > 11  # -log(1e-7) / 3 would be 5.4


@pytest.mark.parametrize("labels, column, positive_code", [
    (("cat", "dog"), "cat", 0), (("cat", "dog"), "dog", 1), (("0", "1"), "target", 1), (("0", "1"), "0", 0)])
def test_a_one_column_submission_holds_the_probability_of_the_class_it_names(labels, column, positive_code):
    from fer_kaggle.spec import Spec
    from fer_kaggle.submission import submitted_rows

    spec = Spec(height=8, width=8, channels=1, labels=labels, label_kind="name" if labels[0] == "cat" else "number",
                submission="positive", submission_columns=("id", column), label_column=column, metric="roc_auc")
    rows = submitted_rows(spec, [7], np.array([[0.9, 0.1]]))
    assert rows == [["7", "0.9" if positive_code == 0 else "0.1"]]


def test_a_one_column_submission_whose_column_names_no_class_is_refused():
    from fer_kaggle.spec import Spec

    with pytest.raises(ConfigError, match="names neither class"):
        Spec(height=8, width=8, channels=1, labels=("cat", "dog"), label_kind="name", submission="positive",
             submission_columns=("id", "is_iceberg"), label_column="is_iceberg", metric="roc_auc")
    spec = Spec(height=8, width=8, channels=1, labels=("cat", "dog"), label_kind="name", submission="positive",
                submission_columns=("id", "is_iceberg"), label_column="is_iceberg", metric="roc_auc", positive="dog")
    assert spec.positive_code == 1


def test_kappa_is_refused_on_class_names_whose_order_no_file_gives():
    from fer_kaggle.spec import Spec

    with pytest.raises(ConfigError, match="metric 'qwk'.*names"):
        Spec(height=8, width=8, channels=1, labels=("mild", "moderate", "severe"), label_kind="name", metric="qwk")
    Spec(height=8, width=8, channels=1, labels=("0", "1", "2"), metric="qwk")  # numbers give the order


def test_roc_auc_on_rows_of_one_class_is_undefined_not_a_traceback():
    from fer_kaggle.metrics import roc_auc

    assert np.isnan(roc_auc(np.array([[0.3, 0.7], [0.6, 0.4]]), np.array([1, 1])))


def test_mixed_precision_ends_with_the_variant_that_asked_for_it(tiny_comp):
    import keras

    comp, folds, meta, tmp = tiny_comp
    before = keras.mixed_precision.global_policy().name
    cv.run_cv(comp, folds, meta, [tiny_variant("mp", epochs=1, mixed_precision=True)], tmp / "oof", threads=1,
              log=quiet, only_folds=[0], time_limit=600)
    assert keras.mixed_precision.global_policy().name == before == "float32"


def test_a_probability_metric_with_a_label_submission_is_refused():
    from fer_kaggle.spec import Spec

    for metric in ("roc_auc", "log_loss"):
        with pytest.raises(ConfigError, match=f"metric '{metric}' scores probabilities"):
            Spec(height=8, width=8, channels=1, labels=("0", "1"), metric=metric, submission="label")


def test_predict_labels_by_the_metrics_decision_as_the_submission_does():
    from fer_kaggle import decisions
    from fer_kaggle.predict import predictions_csv
    from fer_kaggle.spec import Spec

    spec = Spec(height=8, width=8, channels=1, labels=("0", "1", "2"), metric="qwk")
    cuts = decisions.CutPoints()
    cuts.cuts_ = np.array([0.2, 0.4])  # expected class 0.3 + 0.4 = 0.7: class 2, where the argmax says 0
    probs = np.array([[0.5, 0.3, 0.2]])
    assert predictions_csv(["a"], probs, "csv", spec, cuts) == "id,label\na,2\n"
    assert predictions_csv(["a"], probs, "csv", spec) == "id,label\na,0\n"


def test_a_tuned_variant_is_marked_as_chosen_with_held_out_labels(tiny_comp):
    from fer_kaggle import presets

    comp, folds, meta, tmp = tiny_comp
    atomic.write_json(tmp / "tuning" / "s" / "best" / "s-1.json",
                      {"name": "s-1", "model": "cnn_tiny", "model_hp": {"filters": [4, 8]}, "search": "s",
                       "folds": [0], "train": {"epochs": 1, "batch_size": 64, "early_stopping_patience": 0}})
    variants = presets.resolve("smoke", ["tuned:s"], tuning_dir=tmp / "tuning", spec=comp.spec)
    rows = cv.run_cv(comp, folds, meta, variants, tmp / "oof", threads=1, log=quiet)
    metrics = atomic.read_json(tmp / "oof" / "s-1" / "metrics.json")
    assert metrics["selected"] and "search s" in metrics["selected_on"]
    assert rows[0]["name"] == "s-1" and rows[0]["selected"] == "yes"


def test_the_blends_decision_is_fitted_out_of_sample_and_its_choice_scored_fold_by_fold():
    from fer_kaggle.decisions import decision_for
    from fer_kaggle.ensemble import BestBlend, make_blender

    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 300)
    members = []
    for skill in (1.5, 0.5, 0.0, 0.0):  # confident members, two of them noise: the stack's mistakes are confident
        logits = (rng.normal(size=(300, 3)) + skill * np.eye(3)[y]) * 8
        members.append(np.exp(logits) / np.exp(logits).sum(1, keepdims=True))
    folds = np.arange(300) % 4
    best = BestBlend(folds, "log_loss", methods=("stack",)).fit(members, y)
    nested = decision_for("log_loss").fit(best.nested_["stack"], y).describe()
    in_sample = decision_for("log_loss").fit(make_blender("stack").fit(members, y).predict_proba(members), y).describe()
    assert nested != in_sample  # the data tells the two apart
    assert best.decision_.describe() == nested

    several = BestBlend(folds, "accuracy", methods=("mean", "stack", "rank")).fit(members, y)
    right = 0
    for k in range(4):  # brute force: each fold's rows scored with the method that led on the others
        outside = folds != k
        lead = max(("mean", "stack", "rank"),
                   key=lambda m: (np.mean(several.nested_values_[m][outside] == y[outside]), m == "mean"))
        right += np.sum(several.nested_values_[lead][~outside] == y[~outside])
    assert several.selection_nested_score_ == pytest.approx(right / 300)
