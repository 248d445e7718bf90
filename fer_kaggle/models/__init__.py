"""The model zoo: a registry of builder functions, one module per family."""

from fer_kaggle.models import compact, dnn, modern, pool_first, pretrained, writeups  # noqa: F401  (registers)
from fer_kaggle.models.flops import count_flops
from fer_kaggle.models.registry import builder_of, create_model, list_models, model_hp, register_model

__all__ = ["register_model", "create_model", "list_models", "model_hp", "builder_of", "count_flops"]
