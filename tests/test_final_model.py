"""A holdout's final model over every row (fer_kaggle.refit): its test predictions are the
variant's, its score the holdout model's; it shares the time limit, resumes, and is chosen by
the auto preset's rule (fer_kaggle.choice); the benchmark that measured the rule
(fer_kaggle.bench.final_model) keeps its stand-in test rows out of every arm's training."""

import numpy as np
import pytest

from conftest import tiny_variant
from fer_kaggle import choice, cv
from fer_kaggle.atomic import read_json
from fer_kaggle.bench.final_model import compare, final_epochs, split


def run(comp, folds, meta, oof_dir, variants, **kwargs):
    return cv.run_cv(comp, folds, meta, variants, oof_dir, threads=1, log=lambda m, f=None: None, **kwargs)


def test_a_holdout_s_final_model_trains_on_every_row_for_its_epochs_and_its_test_predictions_are_submitted(tiny_comp):
    import keras

    from fer_kaggle import training

    comp, folds, meta, tmp = tiny_comp
    run(comp, folds, meta, tmp / "oof", [tiny_variant("a", epochs=2)], only_folds=[0], final_models=True)
    d = tmp / "oof" / "a"
    holdout, final = read_json(d / "fold0" / "done.json"), read_json(d / "final" / "done.json")
    assert final["rows"] == len(comp.y_train) and final["epochs"] == holdout["epochs"] == 2
    assert {p.name for p in (d / "final").iterdir()} == {"model.keras", "test.npy", "done.json", ".lock"}
    test = np.load(d / "test.npy")
    assert np.array_equal(test, np.load(d / "final" / "test.npy"))
    assert not np.allclose(test, np.load(d / "fold0" / "test.npy"), atol=1e-3)  # another model's
    model = keras.models.load_model(d / "final" / "model.keras")
    assert np.allclose(training.predict(model, comp.x_test, tta="flip"), test, atol=1e-5)  # the shipped one
    oof = np.load(d / "oof.npy")
    assert np.array_equal(~np.isnan(oof[:, 0]), folds == 0)  # scored on the holdout's rows only
    metrics = read_json(d / "metrics.json")
    assert metrics["kind"] == "holdout" and metrics["accuracy"] == pytest.approx(holdout["accuracy"])
    assert metrics["final_model"]["rows"] == len(comp.y_train) and metrics["final_model"]["epochs"] == 2


def test_a_blend_of_it_says_its_test_predictions_come_from_the_final_model(tiny_comp):
    from fer_kaggle.blend import run_blend

    comp, folds, meta, tmp = tiny_comp
    run(comp, folds, meta, tmp / "oof", [tiny_variant("a", epochs=1)], only_folds=[0], final_models=True)
    lines = []
    manifest = run_blend(comp, folds, meta, tmp / "oof", tmp / "submissions", "mean", ["a"], log=lines.append)
    assert manifest["final_models"]["a"]["rows"] == len(comp.y_train) and manifest["cv"]["kind"] == "holdout"
    assert any("come from a final model over every row" in line for line in lines)


def test_a_finished_holdout_gains_its_final_model_later_without_training_again(tiny_comp):
    comp, folds, meta, tmp = tiny_comp
    variant = tiny_variant("a", epochs=1)
    run(comp, folds, meta, tmp / "oof", [variant], only_folds=[0])
    d = tmp / "oof" / "a"
    before = (d / "fold0" / "done.json").read_bytes()
    assert np.array_equal(np.load(d / "test.npy"), np.load(d / "fold0" / "test.npy")) and not (d / "final").exists()
    run(comp, folds, meta, tmp / "oof", [variant], only_folds=[0], final_models=True)
    assert (d / "fold0" / "done.json").read_bytes() == before  # the holdout model was not trained again
    assert np.array_equal(np.load(d / "test.npy"), np.load(d / "final" / "test.npy"))
    run(comp, folds, meta, tmp / "oof", [variant])  # every fold trained: the fold models' mean, no final model
    fold_tests = [np.load(d / f"fold{k}" / "test.npy") for k in range(3)]
    assert np.allclose(np.load(d / "test.npy"), np.mean(fold_tests, axis=0), atol=1e-6)
    assert "final_model" not in read_json(d / "metrics.json")


def test_the_final_model_takes_its_share_of_the_time_limit(tiny_comp):
    comp, folds, meta, tmp = tiny_comp
    run(comp, folds, meta, tmp / "oof", [tiny_variant("a", epochs=2)], only_folds=[0], final_models=True,
        time_limit=60)
    d = tmp / "oof" / "a"
    holdout, final = read_json(d / "fold0" / "done.json"), read_json(d / "final" / "done.json")
    # 2 of 3 folds' rows against every row: the holdout's share is 2/5 of the time left
    assert 0 < holdout["budget_seconds"] <= 60 * 2 / 5
    assert 0 < final["budget_seconds"] <= 60 - holdout["fit_seconds"]
    assert final["budget_seconds"] > holdout["budget_seconds"]  # what the holdout left goes to the final model


def test_a_final_model_without_a_holdout_is_refused_in_one_line(tmp_path, capsys):
    from fer_kaggle.cli import main
    from fer_kaggle.data.synthetic import write_demo

    directory = write_demo(tmp_path / "comp", "images", n_train=60, n_test=10, n_classes=3)
    base = ["--data-dir", str(tmp_path / "data"), "--oof-dir", str(tmp_path / "oof")]
    assert main(base + ["data", "--source", str(directory)]) == 0
    assert main(base + ["folds", "--k", "3"]) == 0
    capsys.readouterr()
    assert main(base + ["cv", "--preset", "smoke", "--final-model"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--final-model follows a holdout: give --folds too" in err[0]
    assert not any(p.is_dir() for p in (tmp_path / "oof").iterdir())  # nothing trained


def holdout_row(final, most=20):
    return {"network": "wide", "flops": 9, "epoch_seconds": 2.0, "images_per_second": 500.0, "fold_epochs": 5,
            "holdout_epochs": 50, "final_epochs": final, "max_epochs": most}


def test_the_auto_preset_adds_a_final_model_only_where_it_costs_the_holdout_none_of_its_epochs():
    picked = choice.choose([holdout_row(22.2)], 5)  # both models afford all 20 epochs the settings allow
    assert picked["scheme"] == "holdout" and picked["final_model"] and picked["epochs"] == 20
    assert "then a final model over every row" in picked["why"]
    picked = choice.choose([holdout_row(19.5)], 5)  # the final model would cut the holdout's epochs
    assert picked["scheme"] == "holdout" and not picked["final_model"] and picked["epochs"] == 50
    assert "cut both to 19.5 epochs, under the 20" in picked["why"]
    assert any("final model" in c for c in choice.close_calls([holdout_row(19.5)], 5))
    assert not choice.close_calls([holdout_row(10.0)], 5)
    folds = choice.choose([{**holdout_row(22.2), "fold_epochs": 20}], 5)
    assert folds["scheme"] == "folds" and "final_model" not in folds


def test_the_ladder_s_final_epochs_fit_a_holdout_and_a_final_model_in_the_limit(tiny_comp):
    from fer_kaggle import training

    comp, _, _, _ = tiny_comp
    cfg = training.resolve_config(batch_size=32, tta="flip")
    limit, k = 600.0, 5
    for r in choice.measure_ladder(comp.spec, 300, 40, k, cfg, limit, ("cnn_tiny",)):
        final_epoch = r["epoch_seconds"] * k / (k - 1)  # every row: k/(k-1) of a fold job's rows
        used = r["final_epochs"] * (r["epoch_seconds"] + final_epoch) + 2 * r["predict_seconds"]
        assert used == pytest.approx(limit) and r["max_epochs"] == cfg["epochs"]


def test_the_benchmark_s_arms_share_time_and_never_train_on_the_stand_in_rows(tiny_comp):
    comp, _, _, _ = tiny_comp
    assert [final_epochs(e, 5) for e in (15, 36, 2)] == [7, 16, 1]  # 15 x 4/9 = 6.7, 36 x 4/9 = 16
    stand_in, train_rows, held = split(comp.y_train, 3)
    assert len(stand_in) == 60 and len(train_rows) + len(held) == 240  # a fifth stands in for the test set
    assert not set(stand_in) & (set(train_rows) | set(held)) and not set(train_rows) & set(held)
    whole, part = np.bincount(comp.y_train, minlength=7), np.bincount(comp.y_train[stand_in], minlength=7)
    assert np.all(np.abs(part - whole / 5) <= 1)  # stratified: each class's fifth
    r = compare(tiny_variant("a", epochs=1), comp.x_train, comp.y_train, comp.spec, [2], k=3, log=lambda m: None)
    arms = r["results"][0]
    assert arms["holdout"]["epochs"] == 2 and arms["short holdout"]["epochs"] == arms["final"]["epochs"] == 1
    assert arms["final"]["rows"] == 240 and arms["holdout"]["rows"] == len(train_rows)
    assert r["stand_in_rows"] == 60 and all(0 <= a["stand_in"] <= 1 for a in arms.values())
