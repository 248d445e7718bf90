"""The report: every figure a valid PNG of its fixed size, numbers equal to scikit-learn's,
saliency on held-out rows only, and the page loading in a real (headless) browser."""

import json
import shutil
import struct
import subprocess

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from conftest import tiny_variant
from fer_kaggle import cv
from fer_kaggle.diagnostics.plots import pixel_size
from fer_kaggle.diagnostics.report import Report

EXPECTED = {"confusion": "wide", "misclassified": "grid", "curves": "wide", "compare": "wide",
            "saliency": "grid", "filters": "grid", "activations": "grid", "lime": "grid"}


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    from fer_kaggle.atomic import read_json
    from fer_kaggle.data import store, write_folds
    from fer_kaggle.data.demo import write_demo_competition

    tmp = tmp_path_factory.mktemp("report")
    write_demo_competition(tmp / "demo", n_train=300, n_test=40, seed=3)
    comp, _ = store.prepare(tmp / "data", source=tmp / "demo")
    folds, _ = write_folds(tmp / "oof", comp.y_train, comp.identity, k=3)
    meta = read_json(tmp / "oof" / "folds.json")
    cv.run_cv(comp, folds, meta, [tiny_variant("cnn", epochs=2)], tmp / "oof", threads=1, log=lambda m, f=None: None)
    Report(comp, folds, tmp / "oof", tmp / "reports", progress=lambda m: None, per_class=1, lime_samples=40,
           ascent_steps=6).make()
    return comp, folds, tmp


def test_every_figure_is_a_png_of_its_fixed_size_with_something_drawn(report_dir):
    from PIL import Image

    _, _, tmp = report_dir
    for name, kind in EXPECTED.items():
        path = tmp / "reports" / f"{name}.png"
        assert png_size(path) == pixel_size(kind), name
        with Image.open(path) as image:
            gray = np.asarray(image.convert("L"), dtype=np.float64)
        dark = (gray < 128).mean()  # axes, text, bars and images: a blank figure has none
        assert 0.005 < dark < 0.95 and len(np.unique(gray)) > 16, (name, dark)


def test_confusion_counts_equal_scikit_learns_on_the_oof(report_dir):
    comp, _, tmp = report_dir
    oof = np.load(tmp / "oof" / "cnn" / "oof.npy")
    saved = json.loads((tmp / "reports" / "confusion.json").read_text())
    assert saved["counts"] == confusion_matrix(comp.y_train, oof.argmax(1), labels=range(7)).tolist()


def test_saliency_uses_held_out_rows_of_that_folds_model(report_dir):
    comp, folds, tmp = report_dir
    saved = json.loads((tmp / "reports" / "saliency.json").read_text())
    assert saved["fold"] == 0 and saved["rows"]
    assert all(folds[r] == 0 for r in saved["rows"])  # fold 0's model never trained on them
    with np.load(tmp / "oof" / "cnn" / "fold0" / "rows.npz") as rows:
        assert not set(saved["rows"]) & set(rows["train_rows"].tolist())


def test_a_blend_is_studied_through_its_best_member(report_dir):
    from fer_kaggle.atomic import read_json
    from fer_kaggle.blend import run_blend

    comp, folds, tmp = report_dir
    run_blend(comp, folds, read_json(tmp / "oof" / "folds.json"), tmp / "oof", tmp / "subs", method="stack",
              log=lambda m: None)
    report = Report(comp, folds, tmp / "oof", tmp / "blend-report", target="blend-stack", progress=lambda m: None)
    assert report.model_variant == "cnn"  # a stack has no weight per member: its most accurate member
    assert report.make(["confusion"])[0][0] == "confusion"


def test_the_report_shows_the_newest_submissions_blend(report_dir, capsys):
    """`make all` blends (the method nested CV chose) and then reports: the page must show
    what was submitted, not the leaderboard's top row."""
    from fer_kaggle.atomic import read_json
    from fer_kaggle.blend import run_blend
    from fer_kaggle.cli import main

    comp, folds, tmp = report_dir
    args = ["--data-dir", str(tmp / "data"), "--oof-dir", str(tmp / "oof"), "--submissions-dir", str(tmp / "newest"),
            "report", "--only", "confusion", "--out", str(tmp / "newest-report")]
    for method in ("stack", "mean"):
        run_blend(comp, folds, read_json(tmp / "oof" / "folds.json"), tmp / "oof", tmp / "newest", method=method,
                  log=lambda m: None)
        assert main(args) == 0
        assert capsys.readouterr().out.strip().endswith(f"index.html (blend-{method})")


def test_one_figure_alone(report_dir):
    comp, folds, tmp = report_dir
    out = tmp / "alone"
    sections = Report(comp, folds, tmp / "oof", out, progress=lambda m: None).make(["confusion"])
    assert [s[0] for s in sections] == ["confusion"]
    assert sorted(p.name for p in out.iterdir()) == ["confusion.json", "confusion.png", "index.html"]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (.ci/run installs it)")
def test_the_page_loads_in_a_headless_browser(report_dir, tmp_path):
    _, _, tmp = report_dir
    page = tmp / "reports" / "index.html"
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    images = int(dom.split('data-images="')[1].split('"')[0])
    loaded = int(dom.split('data-loaded="')[1].split('"')[0])
    assert images == len(EXPECTED) and loaded == images
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line]
    assert not [line for line in console if "error" in line.lower()], console


def test_the_tta_table_scores_each_set_of_views_on_fold_0s_held_out_rows(report_dir):
    comp, folds, tmp = report_dir
    saved = json.loads((tmp / "reports" / "tta.json").read_text())
    assert saved["fold"] == 0 and saved["rows"] == (folds == 0).sum()
    views = {r["tta"]: r for r in saved["views"]}
    assert set(views) == {"none", "flip", "crops", "flip+crops", "flips", "turns", "dihedral"}  # square images: every set
    assert views["flip+crops"]["views"] == 10 and views["dihedral"]["views"] == 8
    trained = json.loads((tmp / "oof" / "cnn" / "config.json").read_text())["train"]["tta"]
    valid = np.load(tmp / "oof" / "cnn" / "fold0" / "valid.npy")  # what the fold job predicted with its own TTA
    assert views[trained]["accuracy"] == pytest.approx(float(np.mean(valid.argmax(1) == comp.y_train[folds == 0])))
