"""Peak resident memory of one fold job (one epoch) on the data in use, in a child process."""

import resource
import subprocess
import sys
import tempfile

CHILD = """
import sys
from fer_kaggle import presets
from fer_kaggle.fold_job import train_fold
from fer_kaggle.data import make_folds, store
comp = store.load(sys.argv[1])
folds = make_folds(comp.y_train, k=5, seed=0)
variant = presets.resolve(sys.argv[3], [sys.argv[4]], {"epochs": "1"}, spec=comp.spec)[0]
train_fold(variant, 0, sys.argv[2], comp.x_train, comp.y_train, comp.x_test, folds, comp.spec, log=lambda *a: None)
"""


def fold_job_peak_rss_bytes(data_dir, preset, variant):
    """Peak resident memory (bytes) of a child process that trains one fold job for one epoch."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-c", CHILD, str(data_dir), tmp, preset, variant], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
