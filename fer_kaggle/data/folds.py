"""Stratified K-fold assignment, tied to the train data it was made from.

`oof/folds.csv` holds `row,fold`; `oof/folds.json` beside it holds k, seed and the data's
identity (the training files' sha256 and the spec's). Later stages call `load_folds`, which
refuses folds made from other data or for another spec; the stages after it carry `FOLD_KEYS`
of the meta into every artifact, and refuse artifacts whose keys differ.
"""

import hashlib
import warnings
from pathlib import Path

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold

from fer_kaggle import atomic
from fer_kaggle.data.files import sha256_file
from fer_kaggle.errors import FoldsError

FOLDS_CSV = "folds.csv"
FOLDS_META = "folds.json"
FOLD_KEYS = ("k", "seed", "train_sha256", "spec_sha256")
FIX_HINT = "run `fer-kaggle folds --force` (or `make folds FORCE=1`) to make folds for the current data"


def make_folds(labels, k=5, seed=0):
    """Fold index (0..k-1) of every row: stratified by label, deterministic in seed."""
    labels = np.asarray(labels)
    if k < 2:
        raise FoldsError(f"k must be at least 2, got {k}")
    if len(labels) < k:
        raise FoldsError(f"cannot make {k} folds of {len(labels)} rows")
    if np.bincount(labels).max() < k:
        raise FoldsError(f"cannot make {k} stratified folds: no class has {k} rows")
    folds = np.empty(len(labels), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # a class of fewer than k rows lies in fewer folds: rare_classes says so
        warnings.filterwarnings("ignore", "The least populated class", UserWarning)
        for fold, (_, held_out) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
            folds[held_out] = fold
    return folds


def rare_classes(labels, k):
    """The classes with fewer than `k` rows (at least one): each of their rows lies in a fold of
    its own, so the fold models see all of such a class's rows or all but one."""
    counts = np.bincount(np.asarray(labels))
    return np.flatnonzero((counts > 0) & (counts < k))


def inner_folds(folds, labels, k=5, seed=0):
    """The folds that a fit nested within some rows uses (a blend's weights, a metric's
    decision): the rows' own folds where they span two or more, else (the rows of a holdout)
    `k` folds of them, stratified by label where a class has `k` rows."""
    folds, labels = np.asarray(folds), np.asarray(labels)
    if len(np.unique(folds)) >= 2:
        return folds
    if len(labels) < 2:
        raise FoldsError(f"{len(labels)} held-out row: too few to fit anything nested within them")
    k = min(k, len(labels))
    if np.bincount(labels).max() >= k:
        return make_folds(labels, k, seed)
    out = np.empty(len(labels), dtype=np.int64)
    for fold, (_, held_out) in enumerate(KFold(n_splits=k, shuffle=True, random_state=seed).split(labels)):
        out[held_out] = fold
    return out


def write_folds(oof_dir, labels, identity, k=5, seed=0, force=False):
    """Write folds.csv and folds.json; keep existing valid folds unless `force`. `identity`:
    the competition's (`Competition.identity`: train_sha256 and spec_sha256)."""
    oof_dir = Path(oof_dir)
    if not force and (oof_dir / FOLDS_CSV).exists():
        folds = load_folds(oof_dir, identity, len(labels))
        meta = atomic.read_json(oof_dir / FOLDS_META)
        if (meta["k"], meta["seed"]) == (k, seed):
            return folds, False
        raise FoldsError(
            f"{oof_dir / FOLDS_CSV} has k={meta['k']}, seed={meta['seed']}, not k={k}, seed={seed}: "
            "pass --force to replace them (the OOF predictions of oof/ were made with the old folds)"
        )
    folds = make_folds(labels, k, seed)
    # The meta commits the CSV (its sha256 inside), so it goes first out and last in: a kill in
    # between leaves a folds.csv without its meta, which is treated as missing.
    (oof_dir / FOLDS_META).unlink(missing_ok=True)
    text = "row,fold\n" + "".join(f"{i},{f}\n" for i, f in enumerate(folds.tolist()))
    atomic.write_text(oof_dir / FOLDS_CSV, text)
    atomic.write_json(oof_dir / FOLDS_META, {"k": k, "seed": seed, **_identity(identity), "n_rows": len(labels),
                                             "csv_sha256": hashlib.sha256(text.encode()).hexdigest()})
    return folds, True


def _identity(identity):
    return {"train_sha256": identity["train_sha256"], "spec_sha256": identity["spec_sha256"]}


def load_folds(oof_dir, identity, n_rows):
    """The fold of every row, after checking the folds were made from this train data and spec."""
    csv_path, meta_path = Path(oof_dir) / FOLDS_CSV, Path(oof_dir) / FOLDS_META
    if not csv_path.exists() or not meta_path.exists():
        raise FoldsError(f"{csv_path} does not exist: run `fer-kaggle folds` (or `make folds`) first")
    meta = atomic.read_json(meta_path)
    identity = _identity(identity)
    if meta.get("train_sha256") != identity["train_sha256"]:
        raise FoldsError(
            f"{csv_path} was made from other train data (sha256 {str(meta.get('train_sha256'))[:12]}..., "
            f"the data in use is {identity['train_sha256'][:12]}...): {FIX_HINT}"
        )
    if meta.get("spec_sha256") != identity["spec_sha256"]:
        raise FoldsError(
            f"{csv_path} was made for another competition spec (image size, channels, classes or symmetries "
            f"differ{'; or before specs existed' if 'spec_sha256' not in meta else ''}): {FIX_HINT}"
        )
    if "csv_sha256" in meta and meta["csv_sha256"] != sha256_file(csv_path):
        raise FoldsError(f"{csv_path} is not the file its {FOLDS_META} describes (sha256 differs: changed by hand, or "
                         f"a run stopped while replacing it): {FIX_HINT}")
    table = np.loadtxt(csv_path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
    if table.shape != (n_rows, 2) or not np.array_equal(table[:, 0], np.arange(n_rows)):
        raise FoldsError(f"{csv_path} does not list rows 0..{n_rows - 1} once each in order: {FIX_HINT}")
    return table[:, 1]
