"""The epoch plan: how many epochs fit a time budget, at which size each trains, and when
the epochs timed so far call for another plan. Pure arithmetic over the run's state; the loop
applies a new plan to the model."""

import numpy as np

from fer_kaggle.training.resolution import cost_ratio, epoch_size, low_res_epochs, low_size, progressive

VALIDATION_SHARE = 0.05  # validation may cost this share of the training time (planned before it is timed)
REPLAN_TOLERANCE = 0.03  # time to spare within this share of the budget keeps the plan
# A projected overrun over this share of the budget re-plans: a run ends inside its hour (FER2013's
# auto hour, at a 3% tolerance and a median pace, overran by 94s: epochs of 125-142s, median 130s)
OVERRUN_TOLERANCE = 0.005


def plan_epochs(cfg, steps_per_epoch, step_seconds, seconds_left, full=48):
    """The most epochs (at least one, at most cfg['epochs']) whose training and validation fit
    (the first cfg['progressive_share'] of them at the lower size's estimated cost)."""
    if seconds_left is None or not step_seconds:
        return cfg["epochs"]
    epoch_seconds = step_seconds * steps_per_epoch * (1 + VALIDATION_SHARE)
    if progressive(cfg):
        epoch_seconds *= 1 - cfg["progressive_share"] * (1 - cost_ratio(low_size(cfg, full), full))
    return int(max(1, min(cfg["epochs"], seconds_left // epoch_seconds)))


class Pace:
    """The seconds of this process's epochs, by the size they trained at, and what planning
    expects of the epochs to come: the mean of those timed at the same size (epochs that traced
    the step left out; the mean, not the median: the epochs to come add up, slow ones included),
    else the full-size pace (timed, or measured before the run) times the size's cost ratio;
    validation adds the seconds it has cost per epoch so far."""

    def __init__(self, state, cfg, full):
        self.state, self.cfg, self.full = state, cfg, full
        self.timed, self.traced = {}, []  # size: train seconds of epochs that did not trace; (seconds, size)

    def size(self, epoch, low_epochs=None):
        low = self.state.low_res_epochs if low_epochs is None else low_epochs
        return epoch_size(self.cfg, epoch, low, self.full)

    def record(self, row, traced):
        if traced:
            self.traced.append((row["seconds"], row["size"]))
            return
        self.timed.setdefault(row["size"], []).append(row["seconds"])
        if row["size"] == self.full:
            self.state.step_seconds = float(np.mean(self.timed[self.full])) / self.state.steps_per_epoch
            self.state.paced_epochs += 1

    @property
    def measured(self):
        return bool(self.timed)

    def train_seconds(self, size):
        if self.timed.get(size):
            return float(np.mean(self.timed[size]))
        full = self.state.step_seconds * self.state.steps_per_epoch
        return full * cost_ratio(size, self.full)

    def epoch_seconds(self, epoch, low_epochs=None):
        """Seconds epoch `epoch` will take, validation included."""
        validate = self.state.seconds["validate"] / max(1, self.state.epoch)
        return self.train_seconds(self.size(epoch, low_epochs)) + validate

    def trace_seconds(self):
        """What the last epoch that traced took over the pace at its size."""
        if not self.traced:
            return 0.0
        seconds, size = self.traced[-1]
        return max(0.0, seconds - self.train_seconds(size))

    def plan_seconds(self, planned):
        """Seconds the epochs from the current one up to `planned` will take under that plan."""
        first, low = self.state.epoch, plan_low_res_epochs(self.state, self.cfg, planned)
        n_low = min(max(0, low - first), max(0, planned - first))
        n_full = max(0, planned - first) - n_low
        return n_low * self.epoch_seconds(first, low) + n_full * self.epoch_seconds(planned - 1, low)


def plan_low_res_epochs(state, cfg, planned):
    """The low-resolution epochs of a new plan: its share of the plan while the run is still
    at low resolution (never fewer than already trained), else unchanged (once at full size, a
    run stays there)."""
    if state.epoch < state.low_res_epochs:
        return max(state.epoch, low_res_epochs(cfg, planned))
    return state.low_res_epochs


def replanned_epochs(state, cfg, seconds_left, pace):
    """A new number of epochs to fit the time left, or None to keep the plan: fewer when the
    budget would be overrun, more when the time left to spare is over the same tolerance (and
    one epoch): each new plan traces the step again, which on a GPU costs seconds. Only epochs
    timed in this process re-plan (not the estimate that made the plan), at the `Pace` of their
    size. A new plan leaves out the seconds its tracing will cost (what the last epoch that
    traced took over the pace)."""
    if cfg["schedule"] == "plateau" or not pace.measured:
        return None
    overrun = pace.plan_seconds(state.planned_epochs) - seconds_left
    trace = pace.trace_seconds()
    fits = state.epoch
    while fits < cfg["epochs"] and pace.plan_seconds(fits + 1) <= seconds_left - trace:
        fits += 1
    budget = seconds_left + state.seconds["train"]
    over = overrun > OVERRUN_TOLERANCE * budget
    spare = -overrun - trace > max(REPLAN_TOLERANCE * budget, pace.epoch_seconds(state.epoch)) and \
        state.planned_epochs < cfg["epochs"]
    if (over or spare) and fits != state.planned_epochs:
        return fits
    return None
