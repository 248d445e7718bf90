"""Sharing a run's time limit among its fold jobs, across the pieces of a resumed run."""

import time
from pathlib import Path

from fer_kaggle import atomic, layout


class TimeShare:
    """Shares a run's time limit among its fold jobs, each taking its share when it starts:
    (time left) x (parallel jobs) x (its cost) / (cost of the jobs not yet done), so time
    that a job leaves unused goes to the jobs after it. The time spent is kept in
    `oof/time.json` under the run's key, so a resumed run (a killed one, or the next piece)
    gets what the earlier ones left. Picklable, for process pools."""

    def __init__(self, time_limit, costs, oof_dir, parallel=1, key=None, spent=0.0):
        self.time_limit, self.key = time_limit, key
        self.deadline = time.time() + time_limit - spent
        self.costs = dict(costs)  # {(variant name, fold): estimated seconds}
        self.oof_dir, self.parallel = str(oof_dir), max(1, parallel)

    def budget(self, name, k):
        left = max(0.0, self.deadline - time.time())
        not_done = [c for (n, f), c in self.costs.items() if not layout.fold_is_done(Path(self.oof_dir) / n, f)]
        share = self.costs[(name, k)] * min(self.parallel, len(not_done)) / max(sum(not_done), 1e-9)
        return left * min(1.0, share)

    def record(self):
        """Write the time spent so far (every epoch and job: a kill loses at most one epoch's)."""
        spent = self.time_limit - max(0.0, self.deadline - time.time())
        atomic.write_json(Path(self.oof_dir) / LEDGER, {"key": self.key, "spent": round(spent, 1)})


LEDGER = "time.json"


def spent_before(oof_dir, key):
    """Seconds that earlier pieces of this run (the same key) spent."""
    path = Path(oof_dir) / LEDGER
    if path.exists():
        ledger = atomic.read_json(path)
        if ledger.get("key") == key:
            return float(ledger["spent"])
    return 0.0


FEW_EPOCHS = 3  # fewer epochs per fold job than this in the time left: the run warns that its models will be weak


def affordable_epochs(seconds_left, epoch_seconds, jobs=1):
    """Epochs each fold job can train in `seconds_left`, with `epoch_seconds` one epoch of each
    pending job and `jobs` of them at once; None without a time limit or jobs."""
    if seconds_left is None or not epoch_seconds:
        return None
    return max(0.0, seconds_left) * max(1, jobs) / sum(epoch_seconds)
