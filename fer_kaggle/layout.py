"""What lies in `oof/` and `submissions/`, and when it counts as finished: the one owner of
their names, so that every stage reads and writes them the same way.

    oof/<variant>/config.json           identity of the variant (written before training)
    oof/<variant>/fold<k>/done.json     the fold job's record, written after its other files
    oof/<variant>/final/done.json       a holdout's final model over every row (fer_kaggle.refit), likewise
    oof/<variant>/{oof,test}.npy, metrics.json
    oof/<variant>/committed.json        written last: the sha256 of those three

A variant (or blend, `oof/blend-<method>/`) is finished when its commit marker exists and
names the bytes that lie beside it: a run killed while it rewrote them leaves it unfinished,
never an OOF paired with another run's test predictions. The marker is removed before the
files are rewritten, and written after them.

    submissions/<stamp>-<name>.csv      the submission
    submissions/<stamp>-<name>.json     its manifest, written after the CSV: it commits it

A CSV without its manifest, or whose bytes differ from the manifest's sha256, is not a
submission any stage reads or uploads.
"""

import re
from pathlib import Path

import numpy as np

from fer_kaggle import atomic
from fer_kaggle.data.files import sha256_file
from fer_kaggle.errors import ConfigError, IntegrityError

CONFIG = "config.json"
METRICS = "metrics.json"
OOF = "oof.npy"
TEST = "test.npy"
COMMIT = "committed.json"
FOLD_DONE = "done.json"
FINAL = "final"  # the job of a final model over every row, beside the fold jobs
BLEND_PREFIX = "blend-"
_COMMITTED_FILES = (OOF, TEST, METRICS)


NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+=@-]{0,99}")


def check_name(name, what="variant name"):
    """`name` as a folder name of oof/ or tuning/: letters, digits and `_ . + = @ -`, never a path
    (`../`), never hidden, at most 100 characters. ConfigError otherwise. Returns it."""
    if not isinstance(name, str) or not NAME.fullmatch(name) or ".." in name:
        raise ConfigError(f"{what} {str(name)[:60]!r} is not allowed: use letters, digits and _ . + = @ - (at most 100, "
                          f"not starting with a dot, no '..')")
    return name


def fold_dir(variant_dir, k):
    """The folder of fold job k, or of the final model's job (k = FINAL)."""
    return Path(variant_dir) / (FINAL if k == FINAL else f"fold{k}")


def fold_is_done(variant_dir, k):
    return (fold_dir(variant_dir, k) / FOLD_DONE).exists()


def read_fold_done(variant_dir, k):
    return atomic.read_json(fold_dir(variant_dir, k) / FOLD_DONE)


def finished_jobs(variant_dir):
    """(folder name, done.json) of the variant's finished jobs (folds and final model), the
    last finished last."""
    paths = sorted(Path(variant_dir).glob(f"*/{FOLD_DONE}"), key=lambda path: path.stat().st_mtime_ns)
    return [(path.parent.name, atomic.read_json(path)) for path in paths]


# ----------------------------------------------------------------------------- finished predictions


def commit_predictions(directory, oof, test, metrics):
    """Write a variant's (or blend's) OOF, test predictions and metrics, then the marker that
    makes them count. A kill anywhere leaves the directory unfinished, never mixed."""
    directory = Path(directory)
    uncommit(directory)
    atomic.write_npy(directory / OOF, oof)
    atomic.write_npy(directory / TEST, test)
    atomic.write_json(directory / METRICS, metrics)
    atomic.write_json(directory / COMMIT, {name: sha256_file(directory / name) for name in _COMMITTED_FILES})


def uncommit(directory):
    """Mark `directory` unfinished (before its predictions are rewritten, or its folds retrained)."""
    marker = Path(directory) / COMMIT
    if marker.exists():
        marker.unlink()
        atomic.fsync_dir(marker.parent)


def is_finished(directory):
    """Whether `directory` holds committed predictions whose bytes are the committed ones."""
    marker = Path(directory) / COMMIT
    if not marker.exists():
        return False
    committed = atomic.read_json(marker)
    return all((Path(directory) / name).exists() and sha256_file(Path(directory) / name) == committed.get(name)
               for name in _COMMITTED_FILES)


def read_predictions(directory):
    """(oof, test, metrics) of a finished variant or blend; IntegrityError otherwise."""
    directory = Path(directory)
    if not is_finished(directory):
        raise IntegrityError(f"{directory}: its predictions are not committed (a run was stopped while writing them, "
                             f"or they were changed since): run `fer-kaggle cv` (or `blend`) again to finish it")
    return np.load(directory / OOF), np.load(directory / TEST), atomic.read_json(directory / METRICS)


def read_metrics(directory):
    """The metrics of a finished variant or blend, or None."""
    return atomic.read_json(Path(directory) / METRICS) if is_finished(directory) else None


def finished(oof_dir, blends=True, variants=True):
    """Names of the finished directories in `oof_dir`: variants (with a config) and blends."""
    names = []
    for marker in sorted(Path(oof_dir).glob(f"*/{COMMIT}")):
        directory = marker.parent
        is_blend = directory.name.startswith(BLEND_PREFIX)
        if ((blends and is_blend) or (variants and not is_blend and (directory / CONFIG).exists())) \
                and is_finished(directory):
            names.append(directory.name)
    return names


def read_config(variant_dir):
    """A variant's config, or None where it has none."""
    path = Path(variant_dir) / CONFIG
    return atomic.read_json(path) if path.exists() else None


# ----------------------------------------------------------------------------- submissions


def submission_paths(submissions_dir, stamp, label):
    """(csv, manifest) of a new submission: never those of an earlier one (a second blend of the
    same name in the same second gets `-2`, ...)."""
    csv_path, n = Path(submissions_dir) / f"{stamp}-{label}.csv", 1
    while csv_path.exists() or manifest_of(csv_path).exists():
        n += 1
        csv_path = Path(submissions_dir) / f"{stamp}-{label}-{n}.csv"
    return csv_path, manifest_of(csv_path)


def manifest_of(csv_path):
    return Path(csv_path).with_suffix(".json")


def submissions(submissions_dir):
    """[(csv path, manifest)] of the committed submissions, oldest first: by the second their
    blend stamped, then (blends of one second) by when their CSV was written."""
    out = []
    for manifest_path in Path(submissions_dir).glob("*.json"):
        manifest = atomic.read_json(manifest_path)
        csv_path = manifest_path.with_suffix(".csv")
        if isinstance(manifest, dict) and manifest.get("csv") == csv_path.name and csv_path.exists():
            out.append((csv_path, manifest))
    return sorted(out, key=lambda found: (str(found[1].get("created", "")), found[0].stat().st_mtime_ns,
                                          found[0].name))


def latest_submission(submissions_dir):
    """(csv path, manifest) of the newest committed submission, or None."""
    found = submissions(submissions_dir)
    return found[-1] if found else None


def checked_submission(csv_path):
    """The manifest of `csv_path`, checked to describe these bytes; IntegrityError where the
    CSV has no manifest (an orphan of a killed `blend`, or a file from elsewhere) or changed."""
    csv_path = Path(csv_path)
    manifest_path = manifest_of(csv_path)
    if not manifest_path.exists():
        raise IntegrityError(f"{csv_path} has no manifest ({manifest_path.name}): it was not written by a finished "
                             f"`fer-kaggle blend`, so nothing records what it is; blend again")
    manifest = atomic.read_json(manifest_path)
    if manifest.get("csv_sha256") != sha256_file(csv_path):
        raise IntegrityError(f"{csv_path} changed since its manifest was written (sha256 differs): blend again")
    return manifest
