"""The install a machine gets: the CPU TensorFlow where none is installed, a GPU TensorFlow kept
where one is (a Kaggle notebook), JAX with CUDA with the gpu extra; and the backend a preset runs on."""

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def requirement():
    return runpy.run_path(str(ROOT / "setup.py"), run_name="setup_py")["tensorflow_requirement"]


@pytest.mark.parametrize("installed, machine, choice, expected", [
    ((), "x86_64", "", ["tensorflow-cpu>=2.16,<3"]),  # a fresh x86 machine: the CPU build
    (("tensorflow",), "x86_64", "", ["tensorflow>=2.16,<3"]),  # a Kaggle notebook's GPU build is kept
    (("tf-nightly",), "x86_64", "", ["tf-nightly>=2.16,<3"]),
    ((), "aarch64", "", ["tensorflow>=2.16,<3"]),
    ((), "x86_64", "none", []),  # JAX only
    (("tensorflow",), "x86_64", "tensorflow-cpu", ["tensorflow-cpu>=2.16,<3"]),  # the user's choice wins
])
def test_the_tensorflow_asked_for_keeps_a_full_build_already_installed(requirement, installed, machine, choice,
                                                                       expected):
    assert requirement(installed=lambda name: name in installed, machine=machine, choice=choice) == expected


def test_the_install_resolves_as_pip_reports_it(tmp_path):
    """`pip install --dry-run --report` of the project with a GPU TensorFlow installed: the
    metadata pip would install asks for that TensorFlow, never tensorflow-cpu beside it, and
    the gpu extra brings JAX with CUDA (resolved without the network: --no-deps)."""
    report = tmp_path / "report.json"
    env = {**os.environ, "FER_KAGGLE_TENSORFLOW": "tensorflow"}
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--no-deps",
                             "--no-build-isolation", "--ignore-installed", "--report", str(report), "-e", ".[gpu]"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    (project,) = [i for i in json.loads(report.read_text())["install"] if i["metadata"]["name"] == "fer-kaggle"]
    requires = project["metadata"]["requires_dist"]
    assert "tensorflow<3,>=2.16" in requires and not any(r.startswith("tensorflow-cpu") for r in requires)
    assert 'jax[cuda12]<1,>=0.4.30; extra == "gpu"' in requires


def test_the_gpu_preset_runs_on_jax_unless_a_backend_is_named(monkeypatch):
    from types import SimpleNamespace

    from fer_kaggle.cli.common import use_preset

    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.delitem(sys.modules, "keras", raising=False)  # before Keras is imported, the backend can be chosen
    assert use_preset("gpu", SimpleNamespace(is_demo=False)) == "gpu"
    assert os.environ["KERAS_BACKEND"] == "jax"
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")  # a user's choice (a GPU TensorFlow in a notebook) wins
    use_preset("gpu", SimpleNamespace(is_demo=False))
    assert os.environ["KERAS_BACKEND"] == "tensorflow"
