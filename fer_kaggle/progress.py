"""What a run prints while it trains: elapsed time and the time left."""

import sys
import time

from fer_kaggle.clock import clock


def job_line(message, fraction=None, started=None):
    """A fold job's own progress line (parallel jobs): wall time since the run started."""
    prefix = f"[{clock(time.time() - started)} elapsed] " if started else ""
    print(prefix + message, flush=True)


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
            eta = f", about {clock(max(0.0, self.time_limit - elapsed))} left"
        else:
            eta = f", about {clock(elapsed / done * left)} left" if done > 0 else ""
        print(f"[{clock(elapsed)} elapsed{eta}] {message}", file=self.stream, flush=True)
