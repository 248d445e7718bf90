"""The network ladder on the competition in use: each candidate's training step timed on
this machine, and the epochs a time limit affords it as K fold models or as one holdout model
(`cv --folds 0`, trained on the same rows as a fold job, K times as long)."""

from fer_kaggle.models import count_flops
from fer_kaggle.training.plan import VALIDATION_SHARE

LADDER = ("vgg_fast16", "vgg_fast32", "pool_first16", "pool_first32", "pool_first48", "pool_first64")


def ladder_rows(spec, n_train, n_folds, train_cfg, time_limit, names=LADDER):
    """One row per network: parameters, FLOPs an image, measured seconds a step and an epoch of
    a fold job's rows, and the epochs `time_limit` affords K fold models and one holdout model
    (validation's share included; prediction left out: K fold models predict the test set K
    times, a holdout model once)."""
    from fer_kaggle.models import create_model
    from fer_kaggle.training import measure_step_seconds

    rows = []
    steps = max(1, n_train * (n_folds - 1) // n_folds // train_cfg["batch_size"])
    for name in names:
        build = lambda name=name: create_model(name, spec.input_shape, spec.num_classes)  # noqa: E731
        model = build()
        step = measure_step_seconds(build, train_cfg)
        epoch = step * steps * (1 + VALIDATION_SHARE)
        rows.append({"network": name, "params": int(model.count_params()), "flops": count_flops(model),
                     "step_seconds": step, "epoch_seconds": epoch,
                     "fold_epochs": time_limit / (n_folds * epoch), "holdout_epochs": time_limit / epoch})
    return rows
