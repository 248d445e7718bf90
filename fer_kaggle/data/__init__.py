"""Reading competitions, the parsed-array cache, the demo competition and the folds."""

from fer_kaggle.data.folds import load_folds, make_folds, write_folds
from fer_kaggle.data.source import Competition, read_competition
from fer_kaggle.data.store import load, prepare

__all__ = ["Competition", "read_competition", "prepare", "load", "make_folds", "write_folds", "load_folds"]
