"""The one progress printer: `[1m05s elapsed, about 3m20s left] message`, for a run's fold jobs
and for the long steps of the other stages."""

import sys
import time


def clock(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def progress_line(message, elapsed, left=None):
    """The message behind the elapsed time and, where known, the time left."""
    eta = f", about {clock(max(0.0, left))} left" if left is not None else ""
    return f"[{clock(elapsed)} elapsed{eta}] {message}"


class Stopwatch:
    """`line(message, fraction)`: once a fraction of the work is done, the time left at the pace so far."""

    def __init__(self):
        self.started = time.perf_counter()

    def line(self, message, fraction=None):
        elapsed = time.perf_counter() - self.started
        return progress_line(message, elapsed, elapsed * (1 - fraction) / fraction if fraction else None)


def job_line(message, fraction=None, started=None):
    """A parallel fold job's own line: wall time since the run (a `time.time()`) started."""
    print(progress_line(message, time.time() - started) if started else message, flush=True)


class Progress:
    """Overall progress of a serial run: elapsed time, and the time left: what the time limit
    leaves, or without one the pace so far over the estimated cost of the jobs left."""

    def __init__(self, total_cost, time_limit=None, stream=None):
        self.started = time.perf_counter()
        self.time_limit = time_limit
        self.cost_left = float(total_cost)
        self.cost_done = 0.0
        self.current = 0.0
        self.stream = stream or sys.stdout

    def start_job(self, cost):
        self.current = cost

    def job_done(self):
        self.cost_done += self.current
        self.cost_left = max(0.0, self.cost_left - self.current)
        self.current = 0.0

    def line(self, message, fraction=None):
        elapsed = time.perf_counter() - self.started
        done = self.cost_done + (fraction or 0.0) * self.current
        left = self.cost_left - (fraction or 0.0) * self.current
        if self.time_limit:
            left = self.time_limit - elapsed
        else:
            left = elapsed / done * left if done > 0 else None
        print(progress_line(message, elapsed, left), file=self.stream, flush=True)
