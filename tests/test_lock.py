"""One run at a time on one OOF folder; a lock left by a killed process blocks nothing."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fer_kaggle.lock import LockedError, exclusive

ROOT = Path(__file__).resolve().parents[1]
HOLDER = "import sys, time; from fer_kaggle.lock import exclusive\nwith exclusive(sys.argv[1], 'cv'):\n" \
         "    print('held', flush=True); time.sleep(60)"


def hold(oof_dir):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(oof_dir)], stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_second_run_is_refused_naming_the_running_process(tmp_path):
    process = hold(tmp_path / "oof")
    try:
        with pytest.raises(LockedError, match=rf"in use by process {process.pid} \(fer-kaggle cv, started"):
            with exclusive(tmp_path / "oof", "blend"):
                pass
        result = subprocess.run([sys.executable, "-m", "fer_kaggle", "--oof-dir", str(tmp_path / "oof"), "cv"],
                                capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                cwd=tmp_path)
        assert result.returncode == 2 and f"process {process.pid}" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    finally:
        process.kill()
        process.wait()


def test_a_lock_left_by_a_process_killed_with_sigkill_does_not_block(tmp_path):
    process = hold(tmp_path / "oof")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert (tmp_path / "oof" / ".lock").exists()  # the file stays; the lock went with the process
    started = time.perf_counter()
    with exclusive(tmp_path / "oof", "cv"):
        pass
    assert time.perf_counter() - started < 5
