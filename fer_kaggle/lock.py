"""One run at a time on one folder: a second `cv` (or blend, pseudo, distill, folds) on the same
OOF folder, a second `tune` on the same tuning folder or a second `submit` on the same
submissions folder while the first is alive is refused with one line naming the running
process. Each fold job holds its fold folder's lock too, so a fold worker that outlived its
run (a parallel job's process) is never joined by a second one on the same fold, and workers
watch their parent and end with it (`end_with_parent`).

The lock is an advisory `flock` on `<folder>/.lock`, held by the process for as long as it
runs: the kernel drops it when the process ends in any way, so a run killed with -9 never
blocks the next one. The file's text (pid, command, start time) is only for the message."""

import fcntl
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from fer_kaggle.errors import FerKaggleError

LOCK_FILE = ".lock"


class LockedError(FerKaggleError):
    """Another live process runs on the same OOF folder."""


@contextmanager
def exclusive(oof_dir, command):
    """Hold `oof_dir`'s lock for the block; LockedError when another process holds it."""
    path = Path(oof_dir) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode("utf-8", "replace").strip() or "another process"
            raise LockedError(f"{oof_dir}/ is in use by {holder}: wait for it to end (or stop it) before "
                              f"running `{command}` on the same folders") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} (fer-kaggle {command}, started {time.strftime('%H:%M:%S')})".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor drops the lock


def end_with_parent(parent_pid, poll_seconds=1.0):
    """In a worker process: end it (exit status 3) as soon as process `parent_pid` is gone, so
    that a killed run's fold jobs stop training instead of racing the next run. Idempotent."""
    if parent_pid is None or parent_pid == os.getpid() or parent_pid in _WATCHED:
        return
    _WATCHED.add(parent_pid)

    first_parent = os.getppid()

    def watch():  # the run's process gone, or this worker's own parent (then it was re-parented)
        while _alive(parent_pid) and os.getppid() == first_parent:
            time.sleep(poll_seconds)
        os._exit(3)

    threading.Thread(target=watch, name="end-with-parent", daemon=True).start()


_WATCHED = set()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
