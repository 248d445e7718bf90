"""Elapsed time and time left, for the progress lines of long steps."""

import time


def clock(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class Stopwatch:
    """`line(message, fraction)`: the message behind the elapsed time and, once a fraction of
    the work is done, the time left at the pace so far."""

    def __init__(self):
        self.started = time.perf_counter()

    def line(self, message, fraction=None):
        elapsed = time.perf_counter() - self.started
        eta = f", about {clock(elapsed * (1 - fraction) / fraction)} left" if fraction else ""
        return f"[{clock(elapsed)} elapsed{eta}] {message}"
