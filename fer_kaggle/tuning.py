"""Architecture search under a parameter budget with keras-tuner (`fer-kaggle tune`).

The search spaces are declared here, in one place. A trial trains with the same folds and
the same training code as `fer-kaggle cv` (training.fit on fold k's training rows, scored on
its held-out rows), so a tuned variant behaves in CV as it did in the search. A
configuration over `max_params` is refused in `build`, before any training, through
keras-tuner's failed-trial mechanism; such skipped trials do not count toward the trials
asked for and never stop the search. The project in `tuning/<search>/` is resumable
(`overwrite=False`); the best configurations are exported to `tuning/<search>/best/` as
variants that `fer-kaggle cv --variants tuned:<search>` trains.
"""

import json
import os
import re
import time
from pathlib import Path

import numpy as np

from fer_kaggle import atomic, decisions
from fer_kaggle.errors import ConfigError
from fer_kaggle.layout import check_name
from fer_kaggle.network import check_oracle_address
from fer_kaggle.metrics import get_metric
from fer_kaggle.rows import rows_of

OBJECTIVE = "val_score"  # the competition's metric on the trial's held-out folds

# ----------------------------------------------------------------------------- search spaces


def _act(hp):
    return hp.Choice("act", ["relu", "leaky_relu", "prelu", "elu"])


def _dropout(hp):
    return hp.Float("dropout", 0.0, 0.5, step=0.1)


SEARCH_SPACES = {
    # family: (registry model, model hyperparameters drawn from hp)
    "xception": ("xception_m", lambda hp: {
        "width": hp.Choice("width", [16, 24, 32, 48, 64]), "modules": hp.Int("modules", 2, 4),
        "stem_stride": hp.Choice("stem_stride", [1, 2]), "act": _act(hp), "dropout": _dropout(hp)}),
    "resnet": ("resnet_m", lambda hp: {
        "width": hp.Choice("width", [16, 24, 32, 48]),
        "blocks": tuple(int(b) for b in hp.Choice("blocks", ["1,1,1", "2,2,2", "2,2,2,2", "3,3,3"]).split(",")),
        "stem_stride": hp.Choice("stem_stride", [1, 2]), "act": _act(hp), "dropout": _dropout(hp)}),
    "vgg": ("vgg_ccp", lambda hp: {
        "filters": tuple(hp.Choice("base_filters", [16, 32, 64]) * m for m in (1, 2, 4, 8)[: hp.Int("blocks", 2, 4)]),
        "dense": (hp.Choice("dense", [128, 256, 512, 1024]),), "act": _act(hp), "dropout": _dropout(hp)}),
    "dnn": ("dnn_m", lambda hp: {
        "width": hp.Int("width", 64, 1024, step=64), "depth": hp.Int("depth", 1, 4), "act": _act(hp),
        "dropout": _dropout(hp)}),
    "cnn_tiny": ("cnn_tiny", lambda hp: {  # a tiny space for tests and smoke runs
        "filters": tuple(hp.Choice("base_filters", [2, 4, 8, 64]) * m for m in (1, 2)), "act": _act(hp)}),
}


def training_space(hp):
    """The training knobs that matter, searched for every family."""
    return {
        "learning_rate": hp.Float("learning_rate", 3e-4, 1e-2, sampling="log"),
        "weight_decay": hp.Choice("weight_decay", [0.0, 1e-4, 1e-2]),
        "label_smoothing": hp.Choice("label_smoothing", [0.0, 0.05, 0.1]),
        "shift": hp.Choice("augment_strength", [0.0, 0.05, 0.1, 0.15]),
    }


TUNERS = ("hyperband", "bayesian", "random")

# ----------------------------------------------------------------------------- the tuner


def _tuner_class(kind):
    import keras_tuner as kt

    oracles = {"hyperband": kt.oracles.HyperbandOracle, "bayesian": kt.oracles.BayesianOptimizationOracle,
               "random": kt.oracles.RandomSearchOracle}

    class ValidTrialsOracle(oracles[kind]):
        """Skipped (failed) trials do not count toward max_trials."""

        requested_trials = None
        deadline = None

        def create_trial(self, tuner_id):
            if self.requested_trials:
                failed = sum(t.status == "FAILED" for t in self.trials.values())
                self.max_trials = self.requested_trials + failed
            if self.deadline and time.time() > self.deadline:
                self.max_trials = len(self.trials)  # the time limit: no new trials
            return super().create_trial(tuner_id)

        def get_state(self):
            return {**super().get_state(), "requested_trials": self.requested_trials}

        def set_state(self, state):
            super().set_state(state)
            self.requested_trials = state.get("requested_trials")

    class FoldTuner(kt.Tuner):
        """Runs a trial with fer_kaggle.training on the folds of oof/folds.csv."""

        def __init__(self, data, base_train, folds_to_use, max_params, spec, oracle, **kwargs):
            self.data, self.base_train, self.folds_to_use, self.max_params = data, base_train, folds_to_use, max_params
            self.spec = spec
            super().__init__(oracle=oracle, **kwargs)

        def run_trial(self, trial, *args, **kwargs):
            from fer_kaggle import training
            from fer_kaggle.variant import split_rows

            hp = trial.hyperparameters
            params = self.hypermodel.build(hp).count_params()  # the budget check, before any training
            cfg = training.resolve_config(**{**self.base_train, **training_space(hp)})
            if "tuner/epochs" in hp.values:
                cfg["epochs"] = int(hp.values["tuner/epochs"])
            x, y, folds = self.data
            scores, started = [], time.perf_counter()
            for k in self.folds_to_use:
                train_rows, valid_rows = split_rows(folds, k)
                workdir = Path(self.get_trial_dir(trial.trial_id)) / f"fold{k}"
                model, state = training.fit(lambda: self.hypermodel.build(hp), rows_of(x, train_rows), y[train_rows],
                                            rows_of(x, valid_rows), y[valid_rows], cfg, workdir, self.spec.num_classes)
                probs = training.predict(model, rows_of(x, valid_rows), tta="none")
                scores.append(decisions.score(self.spec.metric, probs, y[valid_rows]))
            return {OBJECTIVE: float(np.mean(scores)), "seconds": time.perf_counter() - started,
                    "params": float(params)}

    return ValidTrialsOracle, FoldTuner


def make_hypermodel(family, spec, max_params=None, target_params=None):
    import keras_tuner as kt

    if family not in SEARCH_SPACES:
        raise ConfigError(f"unknown family {family!r}; search spaces: {', '.join(SEARCH_SPACES)}")
    model_name, space = SEARCH_SPACES[family]

    class BudgetedHyperModel(kt.HyperModel):
        def build(self, hp):
            from fer_kaggle.models import create_model

            model_hp = space(hp)
            if target_params is not None:  # a matched-size DNN: the widths follow the target
                _match(model_hp, target_params)
            model = create_model(model_name, spec.input_shape, spec.num_classes, **model_hp)
            if max_params and model.count_params() > max_params:
                raise kt.errors.FailedTrialError(
                    f"{model.count_params():,} parameters is over the budget of {max_params:,}: skipped before training")
            return model

    return BudgetedHyperModel(name=family)


def _match(model_hp, target_params):
    """Size a DNN to target_params: drop the searched width; two or more layers match within 1%."""
    model_hp.pop("width", None)
    model_hp["depth"] = max(2, model_hp.get("depth", 2))
    model_hp["target_params"] = target_params


def search(name, family, data, base_train, spec, folds_to_use=(0,), tuner="hyperband", max_params=None, trials=10,
           max_epochs=None, target_params=None, tuning_dir="tuning", seed=0, top=3, time_limit=None):
    """Run (or resume) a search for the competition of `spec`, maximizing its metric (or
    minimizing it: log loss); export the top configurations. Returns the summary rows."""
    import keras_tuner as kt

    if tuner not in TUNERS:
        raise ConfigError(f"unknown tuner {tuner!r}; choose one of {', '.join(TUNERS)}")
    check_name(name, "search name")
    if os.environ.get("KERASTUNER_TUNER_ID", "chief") == "chief":  # the chief binds the oracle's port
        check_oracle_address(os.environ.get("KERASTUNER_ORACLE_IP"))
    oracle_class, tuner_class = _tuner_class(tuner)
    objective = kt.Objective(OBJECTIVE, "max" if get_metric(spec.metric).greater_is_better else "min")
    common = {"objective": objective, "seed": seed, "max_consecutive_failed_trials": 1000}
    if tuner == "hyperband":
        oracle = oracle_class(max_epochs=max_epochs or base_train["epochs"], factor=3, hyperband_iterations=1, **common)
    else:
        oracle = oracle_class(max_trials=trials, **common)
    hypermodel = make_hypermodel(family, spec, max_params, target_params)
    fold_tuner = tuner_class(data, base_train, list(folds_to_use), max_params, spec, oracle, hypermodel=hypermodel,
                             directory=str(tuning_dir), project_name=name, overwrite=False)
    if tuner != "hyperband":  # after the reload of a resumed search: this run's request wins
        fold_tuner.oracle.requested_trials = trials
    if time_limit:
        fold_tuner.oracle.deadline = time.time() + time_limit  # no trial starts after it
    fold_tuner.search(verbose=1)
    if os.environ.get("KERASTUNER_TUNER_ID", "chief") != "chief":
        return []  # a worker: the chief summarizes and exports
    rows = summary(fold_tuner)
    export_best(fold_tuner, family, base_train, Path(tuning_dir) / name, top, target_params, list(folds_to_use))
    return rows


def summary(fold_tuner):
    rows = []
    for trial in sorted(fold_tuner.oracle.trials.values(), key=lambda t: t.trial_id):
        score, seconds, params = (_metric(trial, m) for m in (OBJECTIVE, "seconds", "params"))
        values = {k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")}
        rows.append({"trial": trial.trial_id, "status": trial.status,
                     "params": None if params is None else int(params), "score": score,
                     "seconds": seconds, "hyperparameters": values})
    return rows


def _metric(trial, name):
    return trial.metrics.get_best_value(name) if trial.metrics.exists(name) else None


def export_best(fold_tuner, family, base_train, search_dir, top, target_params=None, folds=(0,)):
    """Write the top configurations as variants: tuning/<search>/best/<search>-<rank>.json."""
    from fer_kaggle import training

    model_name, space = SEARCH_SPACES[family]
    best_dir = Path(search_dir) / "best"
    exported = []
    completed = [t for t in fold_tuner.oracle.get_best_trials(top * 3) if t.status == "COMPLETED"][:top]
    for rank, trial in enumerate(completed, start=1):
        hp = trial.hyperparameters
        model_hp = space(hp)
        if target_params is not None:
            _match(model_hp, target_params)
        cfg = training.resolve_config(**{**base_train, **training_space(hp)})
        if "tuner/epochs" in hp.values:
            cfg["epochs"] = max(cfg["epochs"], int(hp.values["tuner/epochs"]))
        variant = {"name": f"{Path(search_dir).name}-{rank}", "model": model_name, "model_hp": model_hp,
                   "train": cfg, "search": Path(search_dir).name, "trial": trial.trial_id,
                   "folds": [int(k) for k in folds],  # the held-out rows that chose it: its CV there is optimistic
                   "score": _metric(trial, OBJECTIVE), "metric": fold_tuner.spec.metric,
                   "params": int(_metric(trial, "params"))}
        atomic.write_json(best_dir / f"{variant['name']}.json", json.loads(json.dumps(variant, default=list)))
        exported.append(variant)
    return exported


def load_exported(spec, tuning_dir="tuning"):
    """`tuned:<search>` (every exported variant) or `tuned:<search>/<name>`: the variant dicts."""
    body = spec[len("tuned:"):]
    search_name, _, name = body.partition("/")
    check_name(search_name, "search name")
    if name:
        check_name(name, "exported variant name")
    best_dir = Path(tuning_dir) / search_name / "best"
    paths = [best_dir / f"{name}.json"] if name else sorted(best_dir.glob("*.json"))
    if not paths or not all(p.exists() for p in paths):
        raise ConfigError(f"no exported variant {spec!r} in {best_dir}: run `fer-kaggle tune --search {search_name}` first")
    return [_checked_export(atomic.read_json(p), p) for p in paths]


_HP_TEXT = re.compile(r"[A-Za-z0-9_.,-]{1,40}")


def _checked_export(v, path):
    """An exported variant's values, checked before anything trains them: the file may come from
    another machine (a shared tuning/ folder), so it names a registered model, known settings
    and plain values only. ConfigError naming the file otherwise."""
    from fer_kaggle.models import list_models, model_hp
    from fer_kaggle.training import resolve_config

    def plain(x):
        if isinstance(x, (bool, int, float)) or x is None:
            return True
        if isinstance(x, str):
            return bool(_HP_TEXT.fullmatch(x))
        return isinstance(x, (list, tuple)) and len(x) <= 16 and all(isinstance(i, (int, float)) for i in x)

    if not isinstance(v, dict) or not all(isinstance(v.get(k), t) for k, t in
                                          (("name", str), ("model", str), ("model_hp", dict), ("train", dict))):
        raise ConfigError(f"{path}: not an exported variant (name, model, model_hp, train)")
    check_name(v["name"], f"{path}: variant name")
    if v["model"] not in list_models():
        raise ConfigError(f"{path}: model {v['model'][:40]!r} is not a registered model")
    bad = [k for k, x in v["model_hp"].items() if not plain(x)]
    if bad:
        raise ConfigError(f"{path}: model setting {bad[0]!r} holds {str(v['model_hp'][bad[0]])[:40]!r}, not a plain value")
    model_hp(v["model"], **v["model_hp"])  # unknown settings of the model: ConfigError
    resolve_config(**v["train"])  # unknown or ill-typed training settings: ConfigError
    v["model_hp"] = {k: tuple(x) if isinstance(x, list) else x for k, x in v["model_hp"].items()}
    return v
