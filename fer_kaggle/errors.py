"""Typed errors of the library. The CLI turns each into one line and exit status 2."""


class FerKaggleError(Exception):
    """Base of every error the toolkit raises on purpose."""


class DataError(FerKaggleError):
    """A competition file is missing, malformed or inconsistent."""

    def __init__(self, path, problem, line=None):
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


class FoldsError(FerKaggleError):
    """The folds file is missing or was made from other data."""


class ConfigError(FerKaggleError):
    """An unknown preset, variant, model or option value."""


class IntegrityError(FerKaggleError):
    """Out-of-fold predictions that cannot be trusted (leak, gap, bad probabilities)."""


class DownloadError(FerKaggleError):
    """The Kaggle API could not deliver the competition files."""


class SubmissionError(FerKaggleError):
    """A submission file that must not be uploaded, or an upload that failed."""


class PieceEnded(FerKaggleError):
    """A run stopped at the end of its piece (--piece-seconds), its folds checkpointed: the same
    command resumes it, within the time the earlier pieces left."""
