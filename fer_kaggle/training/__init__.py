"""The training engine: fit one model on one split and predict with TTA (Keras 3 only, so it
runs on the TensorFlow backend on CPU and the JAX backend on a GPU).

- config: the settings and their defaults
- augment: augmentation inside the compiled step, the host-side epoch order
- schedule: per-step learning-rate schedules
- loop: the epoch plan, validation cadence, weight averaging, checkpoints
- tta: prediction with test-time augmentation
- linear_head: a pretrained network's classifier fitted on its frozen features (the probe's,
  and fine-tuning's start with head_init)
- backend: threads, determinism

Keras is imported on first use of a name that needs it, not by `import fer_kaggle.training`:
the CLI chooses the backend (a preset's) after reading the settings in `config`.
"""

import importlib

from fer_kaggle.training.config import CHOICES, DEFAULTS, resolve_config, selects_on_validation

_LAZY = {
    "configure_backend": "backend", "private_python_random": "backend", "FitState": "loop", "fit": "loop",
    "history_csv": "loop", "discard_resume_state": "loop", "saved_state": "loop", "measure_step_seconds": "loop", "measure_step_samples": "loop", "TTA_VIEWS": "tta", "predict": "tta",
}

__all__ = ["CHOICES", "DEFAULTS", "resolve_config", "selects_on_validation", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f"fer_kaggle.training.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'fer_kaggle.training' has no attribute {name!r}")
