"""A holdout variant: a model of some folds only (`cv --folds 0`: a one-fold experiment, or
the holdout scheme of a preset), assembled, blended, reported and submitted on the rows it
holds out, and refused where every fold's model is needed."""

import numpy as np
import pytest

from conftest import tiny_variant
from fer_kaggle import cv
from fer_kaggle.atomic import read_json
from fer_kaggle.blend import run_blend
from fer_kaggle.errors import ConfigError
from fer_kaggle.submission import read_submission


def run(comp, folds, meta, oof_dir, variants, **kwargs):
    return cv.run_cv(comp, folds, meta, variants, oof_dir, threads=1, log=lambda m, f=None: None, **kwargs)


def test_a_one_fold_run_is_a_holdout_variant_until_a_run_trains_its_other_folds(tiny_comp):
    comp, folds, meta, tmp = tiny_comp
    variant = tiny_variant("one", epochs=1)
    rows = run(comp, folds, meta, tmp / "oof", [variant], only_folds=[1])
    d = tmp / "oof" / "one"
    assert not (d / "fold0").exists() and [r["name"] for r in rows] == ["one"]
    oof, held = np.load(d / "oof.npy"), folds == 1
    assert np.isnan(oof[~held]).all() and np.allclose(oof[held], np.load(d / "fold1" / "valid.npy"))
    np.testing.assert_allclose(np.load(d / "test.npy"), np.load(d / "fold1" / "test.npy"))
    m = read_json(d / "metrics.json")
    assert m["folds_trained"] == [1] and m["oof_rows"] == held.sum() and m["kind"] == "holdout"
    assert m["accuracy"] == pytest.approx(float(np.mean(oof[held].argmax(1) == comp.y_train[held])))
    rows = run(comp, folds, meta, tmp / "oof", [variant])  # the other folds: every row predicted
    m = read_json(d / "metrics.json")
    assert m["folds_trained"] == [0, 1, 2] and m["oof_rows"] == len(folds) and m["kind"] == "variant" and not np.isnan(np.load(d / "oof.npy")).any()


def test_holdout_members_blend_nested_within_their_rows_and_make_a_valid_submission(tiny_comp):
    from fer_kaggle.diagnostics.report import Report
    from fer_kaggle.teaching.teacher import Teacher

    comp, folds, meta, tmp = tiny_comp
    run(comp, folds, meta, tmp / "oof", [tiny_variant("a", epochs=1), tiny_variant("b", epochs=2)], only_folds=[0])
    run(comp, folds, meta, tmp / "oof", [tiny_variant("full", epochs=1)])
    messages = []
    manifest = run_blend(comp, folds, meta, tmp / "oof", tmp / "subs", method="best", log=messages.append)
    held = folds == 0
    assert manifest["cv"]["kind"] == "holdout" and manifest["cv"]["rows"] == held.sum()
    assert any(f"on the {held.sum()} held-out rows" in m for m in messages)
    for method in manifest["methods_tried"]:
        nested = np.load(tmp / "oof" / f"blend-{method}" / "oof.npy")
        assert np.isnan(nested[~held]).all() and np.isfinite(nested[held]).all()
    scores = manifest["methods_tried"][manifest["method"]]
    chosen = np.load(tmp / "oof" / f"blend-{manifest['method']}" / "oof.npy")[held]
    assert scores["accuracy"] == pytest.approx(float(np.mean(chosen.argmax(1) == comp.y_train[held])))
    expected = comp.sample_ids if comp.sample_ids is not None else comp.test_ids
    assert len(read_submission(tmp / "subs" / manifest["csv"], comp.spec, expected)) == len(expected)
    report = Report(comp, folds, tmp / "oof", tmp / "reports", target="a", progress=lambda m: None)
    assert len(report.probs) == held.sum() and [s[0] for s in report.make(["confusion", "misclassified"])] == \
        ["confusion", "misclassified"]
    with pytest.raises(ConfigError, match="a was trained on a holdout"):
        Teacher(tmp / "oof", ["a"], "mean", comp, folds, meta)


def test_members_held_out_on_different_folds_are_refused_by_the_blend(tiny_comp):
    comp, folds, meta, tmp = tiny_comp
    run(comp, folds, meta, tmp / "oof", [tiny_variant("a", epochs=1)], only_folds=[0])
    run(comp, folds, meta, tmp / "oof", [tiny_variant("b", epochs=1)], only_folds=[1])
    with pytest.raises(ConfigError, match="held out on different folds"):
        run_blend(comp, folds, meta, tmp / "oof", tmp / "subs", method="mean", log=lambda m: None)
