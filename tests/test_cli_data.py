"""The command line: data and folds, errors as one line with exit status 2, no artifact left."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED_ZIP, ntu_files, requires_shared_data, write_files, write_zip

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("KAGGLE_API_TOKEN", None)
    env["KAGGLE_CONFIG_DIR"] = str(Path(cwd) / "no-kaggle")
    return subprocess.run([sys.executable, "-m", "fer_kaggle", *args], cwd=cwd, env=env, capture_output=True, text=True)


def test_bad_zip_is_one_line_exit_2_and_no_artifact(tmp_path):
    files, _, _ = ntu_files()
    files["train.csv"] = files["train.csv"].replace("\n5,", "\n5,300 ", 1)
    zipped = write_zip(tmp_path / "bad.zip", files)
    result = run_cli("data", "--source", str(zipped), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "bad.zip:train.csv, line 7:" in lines[0] and "'300'" in lines[0]
    assert not (tmp_path / "data").exists()


def test_data_then_folds_then_stale_folds(tmp_path):
    files, _, _ = ntu_files(n_train=70)
    source = write_files(tmp_path / "comp", files)
    result = run_cli("data", "--source", str(source), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "train: 70 images" in result.stdout and "images: 48x48, grayscale" in result.stdout
    result = run_cli("folds", "--k", "5", cwd=tmp_path)
    assert result.returncode == 0 and "5 stratified folds" in result.stdout, result.stderr
    folds = np.loadtxt(tmp_path / "oof" / "folds.csv", delimiter=",", skiprows=1, dtype=int)
    assert folds.shape == (70, 2)
    # new data: folds are refused with the fix in the message
    assert run_cli("data", "--demo", cwd=tmp_path).returncode == 0
    result = run_cli("folds", "--k", "5", cwd=tmp_path)
    assert result.returncode == 2 and "--force" in result.stderr and "Traceback" not in result.stderr
    assert run_cli("folds", "--force", cwd=tmp_path).returncode == 0


def test_no_source_no_credentials_gives_the_demo(tmp_path):
    result = run_cli("data", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "synthetic demo competition" in result.stdout and "labels known (demo)" in result.stdout
    assert (tmp_path / "data" / "demo" / "train.csv").exists()


def test_download_without_credentials_says_how_to_configure(tmp_path):
    result = run_cli("data", "--download", "--competition", "some-competition", cwd=tmp_path)
    assert result.returncode == 2
    assert "kaggle.json" in result.stderr and "KAGGLE_API_TOKEN" in result.stderr and "Traceback" not in result.stderr


@requires_shared_data()
def test_the_real_competition_loads(tmp_path):
    from fer_kaggle.data import store

    comp, kind = store.prepare(tmp_path / "data", source=SHARED_ZIP)
    assert kind == "local"
    assert comp.x_train.shape == (28709, 48, 48, 1) and comp.x_test.shape == (7178, 48, 48, 1)
    assert np.bincount(comp.y_train).tolist() == [3995, 436, 4097, 7215, 4830, 3171, 4965]
    assert comp.test_ids.tolist() == [str(i) for i in range(7178)] and comp.sample_ids is not None
    assert comp.spec.competition == "FER2013" and comp.spec.class_names[3] == "happy" and comp.spec.flip
    cached = store.load(tmp_path / "data")
    assert np.array_equal(cached.x_test, comp.x_test)


@requires_shared_data()
def test_the_device_npz_is_the_same_competition(tmp_path):
    from fer_kaggle.data import read_competition, store

    device = SHARED_ZIP.parent / "fer2013-device.npz"
    if not device.exists():
        pytest.skip("no fer2013-device.npz beside the zip")
    from_zip, _ = store.prepare(tmp_path / "data", source=SHARED_ZIP)
    from_npz = read_competition(device)
    assert np.array_equal(from_npz.x_train, from_zip.x_train) and np.array_equal(from_npz.x_test, from_zip.x_test)
    assert np.array_equal(from_npz.y_train, from_zip.y_train) and np.array_equal(from_npz.test_ids, from_zip.test_ids)
    assert from_npz.train_sha256 == from_zip.train_sha256


@pytest.mark.parametrize("order", ["global first", "global after the subcommand"])
def test_global_options_are_accepted_before_and_after_the_subcommand(tmp_path, order):
    files, _, _ = ntu_files()
    source = write_files(tmp_path / "ntu", files)
    options = ["--data-dir", str(tmp_path / "d"), "--oof-dir", str(tmp_path / "o")]
    steps = [["data", "--source", str(source)], ["folds", "--k", "3"]]
    for step in steps:
        args = options + step if order == "global first" else step + options
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "d" / "competition.json").exists() and (tmp_path / "o" / "folds.csv").exists()
    assert not (tmp_path / "data").exists() and not (tmp_path / "oof").exists()


def test_every_subcommand_help_shows_an_example():
    from fer_kaggle.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert set(commands) >= {"data", "folds", "cv", "tune", "blend", "submit", "report", "bench"}
    for name, sub in commands.items():
        text = sub.format_help()
        assert "example:" in text and f"fer-kaggle {name}" in text.split("example:")[1], name
