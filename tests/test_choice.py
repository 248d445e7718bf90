"""A preset with a ladder (`auto`) chooses its network and fold scheme from step times
measured on the spot, by one rule, keeps the choice for a resumed run, and trains it."""

import numpy as np
import pytest

from fer_kaggle import choice
from fer_kaggle import cv as cv_module
from fer_kaggle.atomic import read_json
from fer_kaggle.cli import main
from fer_kaggle.data.synthetic import write_demo


def row(network, flops, fold_epochs, holdout_epochs):
    return {"network": network, "flops": flops, "epoch_seconds": 100.0 / holdout_epochs, "images_per_second": 500.0,
            "fold_epochs": fold_epochs,
            "holdout_epochs": holdout_epochs}


def test_the_widest_network_that_affords_the_epochs_as_fold_models_else_as_one_holdout_model():
    small, mid, wide = row("small", 1, 30, 150), row("mid", 4, 10, 50), row("wide", 9, 3, 14)
    assert choice.choose([small, mid, wide], 5)["network"] == "mid"  # wide affords 14 < 15 even as a holdout
    assert choice.choose([small, mid, wide], 5)["scheme"] == "holdout"
    picked = choice.choose([small, mid], 5, min_epochs=10)
    assert (picked["network"], picked["scheme"]) == ("mid", "folds")
    assert choice.choose([row("a", 1, 2, 10), row("b", 2, 1, 5)], 5)["network"] == "a"  # none: the fastest
    assert choice.MIN_EPOCHS == 15


def test_a_pretrained_network_that_affords_its_epochs_as_fold_models_comes_first_with_its_probe():
    scratch = [row("small", 1, 30, 150), row("wide", 9, 20, 90)]
    tuned = {**row("lite0_finetune", 800, choice.PRETRAINED_MIN_EPOCHS, 30), "pretrained": True,
             "probes": ["lite0_probe"], "probe_seconds": 90.0}
    picked = choice.choose(scratch + [tuned], 5)
    assert (picked["network"], picked["scheme"], picked["with"]) == ("lite0_finetune", "folds", ["lite0_probe"])
    short = {**tuned, "fold_epochs": choice.PRETRAINED_MIN_EPOCHS - 0.1}  # affords it only as a holdout
    for rows in (scratch + [short], scratch):
        picked = choice.choose(rows, 5)
        assert (picked["network"], picked["scheme"]) == ("wide", "folds") and "with" not in picked


def smaller(network, holdout_epochs, kappa=None):
    r = {**row(network, 300, holdout_epochs / 5, holdout_epochs), "pretrained": True, "smaller": True}
    return r if kappa is None else {**r, "quick_probe": {"rows": 5000, "accuracy": 0.8, "kappa": kappa}}


def test_a_pretrained_network_at_a_smaller_side_replaces_a_scratch_holdout_where_its_features_suit_the_images():
    scratch = [row("small", 1, 10, 50), row("wide", 9, 3, 16)]  # scratch: wide as one holdout model
    e = choice.PRETRAINED_HOLDOUT_EPOCHS
    suits = choice.choose(scratch + [smaller("lite0_finetune128", e - 1), smaller("lite0_finetune96", e + 3, 0.7)], 5)
    assert (suits["network"], suits["scheme"]) == ("lite0_finetune96", "holdout")
    assert suits["epochs"] == e + 3 and "kappa 0.70" in suits["why"] and "rather than wide" in suits["why"]
    unsuited = choice.choose(scratch + [smaller("lite0_finetune96", e + 3, choice.GATE_KAPPA - 0.01)], 5)
    assert (unsuited["network"], unsuited["scheme"]) == ("wide", "holdout") and "kappa 0.49" in unsuited["why"]
    unprobed = choice.choose(scratch + [smaller("lite0_finetune96", e + 3)], 5)  # no quick probe: no evidence
    assert unprobed["network"] == "wide"
    folds = [row("small", 1, 20, 100)]  # scratch fold models win over any holdout
    assert choice.choose(folds + [smaller("lite0_finetune96", e + 3, 0.9)], 5)["network"] == "small"


def test_the_ladder_times_smaller_sides_only_for_a_holdout_and_probes_the_first_that_affords_its_epochs(monkeypatch):
    from types import SimpleNamespace

    import fer_kaggle.models
    from fer_kaggle import training

    steps = {"small": 0.01, "wide": 0.05, "side160": 0.8, "side128": 0.7, "side96": 0.05}
    timed, probed = [], []

    def fake_timed_step(variant, spec, samples=choice.SAMPLES):
        timed.append(variant.name)
        return SimpleNamespace(count_params=lambda: 10, name=variant.name), [steps[variant.name]] * 5

    monkeypatch.setattr(choice, "_timed_step", fake_timed_step)
    monkeypatch.setattr(fer_kaggle.models, "count_flops", lambda model: {"small": 1, "wide": 5}.get(model.name, 50))
    cfg = training.resolve_config(batch_size=32, tta="none", epochs=20)
    sides = [SimpleNamespace(name=n, train=cfg) for n in ("side160", "side128", "side96", "side64")]
    quick = lambda v: probed.append(v.name) or {"rows": 10, "accuracy": 0.9, "kappa": 0.8}  # noqa: E731
    # 8,000 training rows: 200 steps a fold epoch; 600 s afford wide 15 epochs only as a holdout
    rows = choice.measure_ladder(SimpleNamespace(), 8000, 100, 5, cfg, 600.0, ("small", "wide"),
                                 smaller=sides, quick_probe=quick)
    holdout = {r["network"]: r["holdout_epochs"] for r in rows}
    assert holdout["side128"] < choice.PRETRAINED_HOLDOUT_EPOCHS <= holdout["side96"]
    assert timed == ["small", "wide", "side160", "side128", "side96"] and probed == ["side96"]  # none after it
    assert choice.choose(rows, 5)["network"] == "side96"
    timed.clear()
    rows = choice.measure_ladder(SimpleNamespace(), 4000, 100, 5, cfg, 600.0, ("small", "wide"),
                                 smaller=sides, quick_probe=quick)  # few rows: scratch fold models
    assert timed == ["small", "wide"] and choice.choose(rows, 5)["scheme"] == "folds"


def test_the_quick_probe_separates_what_imagenet_s_features_see_and_reads_only_the_rows_it_is_given():
    import numpy as np
    from types import SimpleNamespace

    from fer_kaggle import presets
    from fer_kaggle.probe import quick_probe

    rng = np.random.default_rng(0)
    n, classes = 240, 3
    y = np.arange(n) % classes
    colours = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200]])  # a red, a green and a blue class
    x = np.clip(colours[y][:, None, None, :] + rng.normal(0, 40, (n, 16, 16, 3)), 0, 255).astype(np.uint8)
    spec = SimpleNamespace(num_classes=classes, flip=True, symmetries=None)
    variant = presets.resolve("auto", ["lite0_finetune96"], {"image_size": 32}, spec=spec)[0]
    rows = np.arange(0, 180)
    seen = quick_probe(variant, spec, x, y, rows)
    assert seen["rows"] == 180 and seen["kappa"] > 0.9
    shuffled = y.copy()
    shuffled[rows] = rng.permutation(y[rows])
    assert quick_probe(variant, spec, x, shuffled, rows)["kappa"] < 0.4  # labels the pixels do not tell
    other = y.copy()
    other[180:] = (y[180:] + 1) % classes  # the rows outside change nothing
    assert quick_probe(variant, spec, x, other, rows) == {**seen, "seconds": pytest.approx(seen["seconds"], abs=60)}


def test_the_quick_probe_s_split_is_stratified_where_the_classes_allow_and_random_where_they_do_not():
    import numpy as np

    from fer_kaggle.probe import _split

    labels = np.repeat(np.arange(10), 8)
    rows, _, kept, _ = _split(np.arange(80), labels, train_size=20, random_state=0)
    assert np.array_equal(np.bincount(kept), [2] * 10)  # stratified: two of each class
    fit, score, _, _ = _split(rows, kept, test_size=0.25, random_state=0)  # 5 rows cannot hold 10 classes
    assert len(score) == 5 and sorted(np.concatenate([fit, score])) == sorted(rows)


def test_the_ladder_times_a_pretrained_rung_with_its_own_settings_and_keeps_its_probe_s_time_out(tiny_comp):
    from fer_kaggle import presets, training

    comp, _, _, _ = tiny_comp
    cfg = training.resolve_config(batch_size=32, tta="flip")
    tuned, probe = presets.resolve("auto", ["lite0_finetune", "lite0_probe"], {"image_size": 32}, spec=comp.spec)
    rows = choice.measure_ladder(comp.spec, 300, 40, 5, cfg, 600.0, ("cnn_tiny",), [tuned], [probe])
    assert [r["network"] for r in rows] == ["cnn_tiny", "lite0_finetune"] and not rows[0].get("pretrained")
    r = rows[1]
    assert r["pretrained"] and r["probes"] == ["lite0_probe"] and r["flops"] > rows[0]["flops"]
    assert r["probe_seconds"] > 0 and r["images_per_second"] == pytest.approx(32 / r["step_seconds"])
    assert r["fold_epochs"] == pytest.approx((600.0 - r["probe_seconds"] - 5 * r["predict_seconds"])
                                             / (5 * r["epoch_seconds"]))
    assert r["epoch_seconds"] > r["step_seconds"] * (300 * 4 // 5 // tuned.train["batch_size"])


def test_the_ladder_times_each_network_and_counts_the_epochs_each_scheme_affords(tiny_comp):
    from fer_kaggle import training

    comp, _, _, _ = tiny_comp
    cfg = training.resolve_config(batch_size=32, tta="flip")
    rows = choice.measure_ladder(comp.spec, 300, 40, 5, cfg, 600.0, ("cnn_tiny", "pool_first16"))
    assert [r["network"] for r in rows] == ["cnn_tiny", "pool_first16"]
    for r in rows:
        assert r["step_seconds"] > 0 and r["flops"] > 0 and r["params"] > 0
        assert r["epoch_seconds"] > r["step_seconds"] * (300 * 4 // 5 // 32)  # validation's share on top
        assert r["predict_seconds"] == pytest.approx((60 + 40) * 2 * r["step_seconds"] / 32 / 3)
        assert r["holdout_epochs"] == pytest.approx((600.0 - r["predict_seconds"]) / r["epoch_seconds"])
        assert r["fold_epochs"] == pytest.approx((600.0 - 5 * r["predict_seconds"]) / (5 * r["epoch_seconds"]))


def test_a_choice_is_kept_for_what_it_was_made_for_and_made_again_for_anything_else(tmp_path):
    calls = []

    def measure():
        calls.append(1)
        return [row("small", 1, 30, 150), row("wide", 9, 3, 20)]

    made_for = {"preset": "auto", "time_limit": 100, "train": {"shift": (0.1, 0.1)}}
    first, rows = choice.chosen(tmp_path, made_for, measure, 5)
    assert first["network"] == "wide" and first["scheme"] == "holdout" and rows and len(calls) == 1
    again, rows = choice.chosen(tmp_path, made_for, measure, 5)
    assert again == first and rows is None and len(calls) == 1  # tuples read back as lists still match
    choice.chosen(tmp_path, {**made_for, "time_limit": 200}, measure, 5, log=lambda m: None)
    assert len(calls) == 2


def test_cv_with_the_auto_preset_prints_and_trains_its_choice_and_a_rerun_keeps_it(tmp_path, monkeypatch, capsys):
    directory = write_demo(tmp_path / "comp", "images", n_train=150, n_test=30, n_classes=4)
    base = ["--data-dir", str(tmp_path / "data"), "--oof-dir", str(tmp_path / "oof")]
    assert main(base + ["data", "--source", str(directory)]) == 0
    assert main(base + ["folds", "--k", "3"]) == 0
    seen = {}

    def measured(spec, n_train, n_test, n_folds, train, limit, names, pretrained, probes, smaller, quick_probe):
        seen.update(n_train=n_train, n_test=n_test, n_folds=n_folds, names=tuple(names), tta=train["tta"],
                    pretrained=[v.name for v in pretrained + probes + smaller])
        quick_probe(smaller[-1])
        return [{**row("cnn_tiny", 5, 2, 40), "params": 1, "step_seconds": 0.1, "predict_seconds": 1.0},
                {**row("vgg_fast16", 9, 1, 8), "params": 2, "step_seconds": 0.2, "predict_seconds": 2.0}]

    probed = []
    monkeypatch.setattr("fer_kaggle.probe.quick_probe",
                        lambda variant, spec, x, y, rows: probed.append((variant.name, sorted(rows))))
    table = np.loadtxt(tmp_path / "oof" / "folds.csv", delimiter=",", skiprows=1, dtype=int)  # row,fold
    fold0 = [int(r) for r, fold in table if fold == 0]
    monkeypatch.setattr(choice, "measure_ladder", measured)
    monkeypatch.setattr(choice, "time", Seconds(10.0))  # the ladder takes 10 seconds
    limits, run_cv = [], cv_module.run_cv
    monkeypatch.setattr(cv_module, "run_cv", lambda *a, **k: limits.append(k["time_limit"]) or run_cv(*a, **k))
    cv = ["cv", "--preset", "auto", "--time-limit", "60", "--set", "epochs=1", "--set", "filters=(4,8)"]
    assert main(base + cv) == 0
    out = capsys.readouterr().out
    assert "chose cnn_tiny as one holdout model (fold 0)" in out and "fold 0 of 3 only (a holdout)" in out
    assert "time limit 60s (10s of it spent timing the ladder)" in out and limits == [50.0]
    assert seen == {"n_train": 150, "n_test": 30, "n_folds": 3, "tta": "flip+crops",
                    "names": ("vgg_fast16", "pool_first16", "pool_first32", "pool_first48", "pool_first64"),
                    "pretrained": ["lite0_finetune", "lite0_probe", "lite0_finetune160", "lite0_finetune128",
                                   "lite0_finetune96"]}
    assert probed == [("lite0_finetune96", sorted(set(range(150)) - set(fold0)))]  # never the holdout's rows
    assert read_json(tmp_path / "oof" / "cnn_tiny" / "metrics.json")["folds_trained"] == [0]
    assert not (tmp_path / "oof" / "cnn_tiny" / "fold1").exists()
    monkeypatch.setattr(choice, "measure_ladder", lambda *a: pytest.fail("a kept choice is measured again"))
    assert main(base + cv) == 0
    assert "keeps its choice" in capsys.readouterr().out
    assert limits == [50.0, 50.0]  # a resumed run's limit still counts the ladder the first run timed


def test_an_auto_holdout_whose_shared_time_affords_a_final_model_trains_one_and_submits_it(tmp_path, monkeypatch,
                                                                                            capsys):
    directory = write_demo(tmp_path / "comp", "images", n_train=150, n_test=30, n_classes=4)
    base = ["--data-dir", str(tmp_path / "data"), "--oof-dir", str(tmp_path / "oof")]
    assert main(base + ["data", "--source", str(directory)]) == 0
    assert main(base + ["folds", "--k", "3"]) == 0
    rows = [{**row("cnn_tiny", 5, 2, 40), "params": 1, "step_seconds": 0.1, "predict_seconds": 1.0,
             "final_epochs": 1.5, "max_epochs": 1}]  # both models afford the 1 epoch each may train
    monkeypatch.setattr(choice, "measure_ladder", lambda *a: rows)
    assert main(base + ["cv", "--preset", "auto", "--time-limit", "60", "--set", "epochs=1", "--set",
                        "filters=(4,8)"]) == 0
    out = capsys.readouterr().out
    assert "chose cnn_tiny as one holdout model (fold 0) and a final model over every row" in out
    assert "then a final model over every row" in out and "cnn_tiny final model: 150 rows (every one)" in out
    d = tmp_path / "oof" / "cnn_tiny"
    assert read_json(d / "metrics.json")["final_model"]["rows"] == 150
    assert (d / "test.npy").read_bytes() != (d / "fold0" / "test.npy").read_bytes()


def test_an_auto_choice_of_a_pretrained_network_at_a_smaller_side_trains_it_at_that_side(tmp_path, monkeypatch, capsys):
    directory = write_demo(tmp_path / "comp", "images", n_train=120, n_test=20, n_classes=3)
    base = ["--data-dir", str(tmp_path / "data"), "--oof-dir", str(tmp_path / "oof")]
    assert main(base + ["data", "--source", str(directory)]) == 0
    assert main(base + ["folds", "--k", "3"]) == 0
    rows = [{**row("cnn_tiny", 5, 2, 40), "params": 1, "step_seconds": 0.1, "predict_seconds": 1.0},
            {**smaller("lite0_finetune96", 12, kappa=0.8), "params": 1, "step_seconds": 0.1, "predict_seconds": 1.0}]
    monkeypatch.setattr(choice, "measure_ladder", lambda *a: rows)
    assert main(base + ["cv", "--preset", "auto", "--time-limit", "300", "--set", "epochs=1"]) == 0
    out = capsys.readouterr().out
    assert "chose lite0_finetune96 as one holdout model (fold 0)" in out and "kappa 0.80" in out
    d = tmp_path / "oof" / "lite0_finetune96"
    assert read_json(d / "metrics.json")["folds_trained"] == [0]
    assert read_json(d / "config.json")["model_hp"]["image_size"] == 96


class Seconds:
    """A clock whose every reading is `step` seconds after the last."""

    def __init__(self, step):
        self.now, self.step = 0.0, step

    def perf_counter(self):
        self.now += self.step
        return self.now


def timed(network, flops, step, spread=0.02):
    return {**row(network, flops, 20, 100), "step_seconds": step, "step_spread": spread}


def test_a_timing_that_disagrees_with_the_flops_or_is_noisy_is_not_trusted():
    assert choice.inconsistent([timed("a", 1, 1.0), timed("b", 2, 1.5), timed("c", 4, 2.5)]) == set()
    assert choice.inconsistent([timed("a", 1, 1.0), timed("b", 2, 0.5), timed("c", 4, 1.2)]) == {"a", "b"}  # faster
    assert choice.inconsistent([timed("a", 1, 1.0), timed("b", 1.7, 2.3)]) == {"a", "b"}  # 2.3x time, 1.7x work
    assert choice.inconsistent([timed("a", 1, 1.0), timed("b", 2, 1.5, spread=0.4)]) == {"b"}  # noisy samples


def test_the_ladder_times_a_suspect_again_and_keeps_its_fastest_timing(monkeypatch):
    from types import SimpleNamespace

    import fer_kaggle.models
    from fer_kaggle import training

    scripted = {"small": [[0.10, 0.11, 0.10, 0.10, 0.12]] * 3,
                "mid": [[0.60, 0.61, 0.59, 0.60, 0.62], [0.21, 0.20, 0.22, 0.21, 0.20], [0.25] * 5]}
    calls = []

    def fake_timed_step(variant, spec, samples=choice.SAMPLES):
        calls.append(variant.name)
        return SimpleNamespace(count_params=lambda: 10, name=variant.name), scripted[variant.name].pop(0)

    monkeypatch.setattr(choice, "_timed_step", fake_timed_step)
    monkeypatch.setattr(fer_kaggle.models, "count_flops", lambda model: {"small": 10**6, "mid": 2 * 10**6}[model.name])
    cfg = training.resolve_config(batch_size=32, tta="none")
    rows = choice.measure_ladder(SimpleNamespace(), 1000, 100, 5, cfg, 600.0, ("small", "mid"))
    small, mid = rows
    # mid's first timing (6x the small network's step for 2x its work) was taken again with its
    # neighbour's; the timing of lowest median counts and both are kept; consistent then, no third
    assert calls == ["small", "mid", "small", "mid"]
    assert mid["timings"] == 2 and mid["step_seconds"] == pytest.approx(0.21) and len(mid["step_samples"]) == 2
    assert small["step_seconds"] == pytest.approx(0.10) and all(r["consistent"] for r in rows)


def test_a_choice_near_its_threshold_says_so(tmp_path, capsys):
    from fer_kaggle.cli.common import print_ladder

    rows = [{**timed("small", 1, 0.1), "fold_epochs": 40, "holdout_epochs": 200, "params": 1, "predict_seconds": 1},
            {**timed("wide", 9, 0.9), "fold_epochs": 2.9, "holdout_epochs": 14.2, "params": 1, "predict_seconds": 1}]
    picked, _ = choice.chosen(tmp_path, {"x": 1}, lambda: rows, 5)
    assert picked["network"] == "small"
    assert picked["close_calls"] == ["wide affords 14.2 epochs as one holdout model (threshold 15)"]
    print_ladder(rows, picked, 5)
    out = capsys.readouterr().out
    assert "±  1%" in out and "a close call: wide affords 14.2 epochs" in out
