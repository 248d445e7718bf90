"""An ensemble of finished variants as a teacher, fold by fold.

Its fold-k teacher is the members' fold-k models, combined by the blend method fit on the
OOF rows outside fold k (the nested-CV blender of fold k): no model in it trained on fold k's
rows, and its combiner saw none of their labels. Its OOF is therefore the nested-CV blend,
and its fold-k test predictions are the members' `fold<k>/test.npy` combined the same way.
One dependency remains, as in every stacked blend: the OOF rows the combiner is fit on were
predicted by fold models that trained on fold k. What it is worth is measured by `fer-kaggle
bench --only combiner` against a combiner fit on an inner K-fold that never saw fold k
(README, "Honest scores"); a single member (no combiner) has none.
"""

from pathlib import Path

import numpy as np

from fer_kaggle import layout
from fer_kaggle.blend import discover_members, load_members
from fer_kaggle.ensemble import make_blender
from fer_kaggle.errors import ConfigError
from fer_kaggle.layout import BLEND_PREFIX


def resolve_teacher(source, oof_dir, submissions_dir="submissions"):
    """(members, method) of a teacher named by `source`: a blend (`blend-stack` or `stack`,
    from `fer-kaggle blend`), a variant, comma-separated variants (their mean), or None for
    the latest submission's blend."""
    oof_dir = Path(oof_dir)
    if source is None:
        latest = layout.latest_submission(submissions_dir)
        if latest is None:
            raise ConfigError("no blend to learn from: run `fer-kaggle blend` first, or name a teacher with --from")
        manifest = latest[1]
        return list(manifest["members"]), manifest["method"]
    blend_dir = oof_dir / (source if source.startswith(BLEND_PREFIX) else BLEND_PREFIX + source)
    metrics = layout.read_metrics(blend_dir)
    if metrics is not None:
        return list(metrics["members"]), metrics["method"]
    return discover_members(oof_dir, [n.strip() for n in source.split(",") if n.strip()]), "mean"


class Teacher:
    """`members` (finished variants in `oof_dir`) combined by `method`."""

    def __init__(self, oof_dir, members, method, comp, folds, folds_meta, seed=0):
        self.oof_dir, self.members, self.method = Path(oof_dir), list(members), method
        self.y, self.folds, self.seed = comp.y_train, np.asarray(folds), seed
        self.oofs, self.tests, self.configs = load_members(oof_dir, self.members, comp, folds_meta)
        for name, oof in zip(self.members, self.oofs):
            if np.isnan(oof[:, 0]).any():
                raise ConfigError(f"{name} was trained on a holdout (some folds only): a teacher needs a model of every "
                                  f"fold (`fer-kaggle cv --variants {name}` without --folds trains the others); "
                                  f"a fold model predicts alone: `fer-kaggle predict {Path(oof_dir) / name}/fold0/model.keras`")
        self._combiners, self._models = {}, {}

    @property
    def spec(self):
        """What identifies the teacher in a taught variant's config."""
        return {"members": self.members, "method": self.method}

    def __str__(self):
        return self.members[0] if len(self.members) == 1 else f"{self.method} of {', '.join(self.members)}"

    def combine(self, k, probs):
        """Members' predictions of fold k's models (k=None: all folds') as the teacher's."""
        if len(probs) == 1:
            return np.asarray(probs[0], dtype=np.float32)
        if k not in self._combiners:
            rows = np.ones(len(self.y), bool) if k is None else self.folds != k
            self._combiners[k] = make_blender(self.method, self.seed).fit([o[rows] for o in self.oofs], self.y[rows])
        return self._combiners[k].predict_proba(probs)

    def oof(self):
        """The teacher's OOF: fold k's rows as the fold-k teacher predicts them."""
        out = np.zeros_like(self.oofs[0], dtype=np.float32)
        for k in np.unique(self.folds):
            rows = self.folds == k
            out[rows] = self.combine(k, [o[rows] for o in self.oofs])
        return out

    def fold_test(self, k):
        """The fold-k teacher's test probabilities."""
        return self.combine(k, [np.load(layout.fold_dir(self.oof_dir / m, k) / layout.TEST) for m in self.members])

    def test(self):
        """The whole teacher's test probabilities (every fold model, blend fit on all OOF rows)."""
        return self.combine(None, self.tests)

    def fold_predict(self, k, images):
        """The fold-k teacher's probabilities of any (n, h, w, c) images of the competition's size, each member with its TTA."""
        return self.combine(k, [self._predict_member(m, c, [k], images) for m, c in zip(self.members, self.configs)])

    def predict(self, images):
        """The whole teacher's probabilities of any images: each member's fold models averaged."""
        n_folds = int(self.folds.max()) + 1
        return self.combine(None, [self._predict_member(m, c, range(n_folds), images)
                                   for m, c in zip(self.members, self.configs)])

    def n_models(self):
        return len(self.members) * (int(self.folds.max()) + 1)

    def _predict_member(self, member, config, ks, images):
        from fer_kaggle.training import predict

        probs = [predict(self._model(member, k), images, tta=config["train"]["tta"]) for k in ks]
        return np.mean(probs, axis=0).astype(np.float32)

    def _model(self, member, k):
        """Member's fold-k model, loaded once."""
        if (member, k) not in self._models:
            self._models[(member, k)] = load_fold_model(layout.fold_dir(self.oof_dir / member, k))
        return self._models[(member, k)]


def load_fold_model(fold_dir):
    path = Path(fold_dir) / "model.keras"
    if not path.exists():
        raise ConfigError(f"{path} is missing: the fold has not finished (run `fer-kaggle cv`)")
    return load_model_file(path)


def load_model_file(path):
    """A saved fer-kaggle model, ready to predict."""
    from fer_kaggle.shipped import load_model

    return load_model(path)
