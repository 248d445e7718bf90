from setuptools import find_packages, setup

setup(
    name="fer-kaggle",
    version="0.1.0",
    description="Win Kaggle-style image classification competitions: K-fold CNN variants, blending, submission.",
    packages=find_packages(include=["fer_kaggle", "fer_kaggle.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow-cpu>=2.16; platform_machine=='x86_64'",
        "tensorflow>=2.16; platform_machine!='x86_64'",
        "keras>=3.3",
        "keras-tuner>=1.4.7",
        "numpy",
        "pandas",
        "scipy",
        "scikit-learn",
        "kaggle",
        "joblib",
        "matplotlib",
        "lime",
        "dask[distributed]",
    ],
    extras_require={"test": ["pytest", "jax"]},
    entry_points={"console_scripts": ["fer-kaggle=fer_kaggle.cli:main"]},
)
