"""One run at a time on one OOF folder: a second `cv` (or blend, pseudo, distill, tune) on the
same directories while the first is alive is refused with one line naming the running process.

The lock is an advisory `flock` on `<oof_dir>/.lock`, held by the process for as long as it
runs: the kernel drops it when the process ends in any way, so a run killed with -9 never
blocks the next one. The file's text (pid, command, start time) is only for the message."""

import fcntl
import os
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
