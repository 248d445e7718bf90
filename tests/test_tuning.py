"""The architecture search: the parameter budget, resume, export round trip, matched sizes,
and keras-tuner's distributed mode (a chief and two workers on loopback)."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fer_kaggle import presets, training, tuning
from fer_kaggle.models import create_model
from fer_kaggle.spec import Spec

FER_SPEC = Spec(height=48, width=48, channels=1, labels=tuple("0123456"))

ROOT = Path(__file__).resolve().parents[1]
BASE = training.resolve_config(epochs=1, batch_size=64, early_stopping_patience=0)


def run_search(tiny_comp, name, **kwargs):
    comp, folds, _, tmp = tiny_comp
    options = {"tuner": "random", "trials": 3, "tuning_dir": tmp / "tuning", "seed": 1, **kwargs}
    return tuning.search(name, "cnn_tiny", (comp.x_train, comp.y_train, folds), BASE, comp.spec, **options)


def test_oversized_configurations_are_skipped_untrained_and_valid_trials_still_complete(tiny_comp, monkeypatch):
    trained = []
    real_fit = training.fit
    monkeypatch.setattr(training, "fit", lambda build, *a, **k: trained.append(build().count_params()) or real_fit(build, *a, **k))
    rows = run_search(tiny_comp, "budget", max_params=5000)
    completed = [r for r in rows if r["status"] == "COMPLETED"]
    skipped = [r for r in rows if r["status"] == "FAILED"]
    assert len(completed) == 3 and skipped, rows
    assert all(r["params"] <= 5000 for r in completed)
    assert max(trained) <= 5000  # nothing over the budget was ever trained
    tmp = tiny_comp[3]
    for r in skipped:
        assert not list((tmp / "tuning" / "budget" / f"trial_{r['trial']}").glob("fold*"))


def test_a_search_run_again_continues_without_redoing_trials(tiny_comp, monkeypatch):
    run_search(tiny_comp, "resume", trials=2)
    calls = []
    real_fit = training.fit
    monkeypatch.setattr(training, "fit", lambda *a, **k: calls.append(1) or real_fit(*a, **k))
    rows = run_search(tiny_comp, "resume", trials=3)
    assert len([r for r in rows if r["status"] == "COMPLETED"]) == 3
    assert len(calls) == 1  # only the new trial trained


def test_exported_variants_build_the_same_model_in_cv(tiny_comp):
    run_search(tiny_comp, "export", trials=2, top=2)
    tmp = tiny_comp[3]
    variants = presets.resolve("smoke", ["tuned:export"], tuning_dir=tmp / "tuning", spec=tiny_comp[0].spec)
    assert [v.name for v in variants] == ["export-1", "export-2"]
    for v in variants:
        exported = tuning.load_exported(f"tuned:export/{v.name}", tmp / "tuning")[0]
        assert create_model(v.model, (48, 48, 1), 7, **v.model_hp).count_params() == exported["params"]
        assert v.train["learning_rate"] == exported["train"]["learning_rate"]


@pytest.mark.parametrize("target", ["xception_s", "resnet_s"])
def test_a_matched_dnn_is_within_one_percent(target):
    import keras_tuner as kt

    params = create_model(target, (48, 48, 1), 7).count_params()
    hypermodel = tuning.make_hypermodel("dnn", FER_SPEC, target_params=params)
    for seed in range(3):
        hp = kt.HyperParameters()
        hp.Fixed("depth", seed + 1)  # depth 1 is raised to 2: one layer cannot match finely
        model = hypermodel.build(hp)
        assert abs(model.count_params() - params) / params < 0.01


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_chief_and_two_workers_finish_every_trial_and_export_once(tiny_comp):
    tmp = tiny_comp[3]
    port = str(free_port())
    args = [sys.executable, "-m", "fer_kaggle", "--data-dir", str(tmp / "data"), "--oof-dir", str(tmp / "oof"),
            "--tuning-dir", str(tmp / "tuning"), "tune", "--search", "dist", "--family", "cnn_tiny", "--tuner",
            "random", "--trials", "4", "--set", "epochs=1", "--threads", "1"]

    def start(tuner_id):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "KERASTUNER_TUNER_ID": tuner_id,
               "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": port}
        return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    chief = start("chief")
    time.sleep(5)
    workers = [start("tuner1"), start("tuner2")]
    try:
        outputs = [p.communicate(timeout=600)[0] for p in [chief, *workers]]
    finally:
        for p in [chief, *workers]:
            p.kill()
    assert [p.returncode for p in [chief, *workers]] == [0, 0, 0], outputs[0][-3000:]
    assert "4 trials run" in outputs[0] and "best exported" in outputs[0]
    assert all("worker finished" in out and "best exported" not in out for out in outputs[1:])
    assert sorted(p.name for p in (tmp / "tuning" / "dist" / "best").iterdir()) == ["dist-1.json", "dist-2.json", "dist-3.json"]
    trial_dirs = list((tmp / "tuning" / "dist").glob("trial_*"))
    assert len(trial_dirs) == 4
