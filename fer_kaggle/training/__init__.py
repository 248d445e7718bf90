"""The training engine: fit one model on one split and predict with TTA (Keras 3 only, so it
runs on the TensorFlow backend on CPU and the JAX backend on a GPU).

- config: the settings and their defaults
- augment: augmentation inside the compiled step, the host-side epoch order
- schedule: per-step learning-rate schedules
- loop: the epoch plan, validation cadence, weight averaging, checkpoints
- predict: test-time augmentation
- backend: threads, determinism
"""

from fer_kaggle.training.backend import configure_backend, private_python_random
from fer_kaggle.training.config import CHOICES, DEFAULTS, resolve_config, selects_on_validation
from fer_kaggle.training.loop import FitState, fit, history_csv, measure_step_seconds
from fer_kaggle.training.predict import TTA_VIEWS, predict

__all__ = ["CHOICES", "DEFAULTS", "FitState", "TTA_VIEWS", "configure_backend", "fit", "history_csv",
           "measure_step_seconds", "predict", "private_python_random", "resolve_config", "selects_on_validation"]
