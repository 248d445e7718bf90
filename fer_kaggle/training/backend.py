"""Backend set-up: threads, deterministic ops, and a private random generator for model building."""

import random
from contextlib import contextmanager


def configure_backend(threads=None, deterministic=True):
    """Threads and deterministic ops; call before the backend runs its first op."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        try:
            if threads:
                tf.config.threading.set_intra_op_parallelism_threads(int(threads))
                tf.config.threading.set_inter_op_parallelism_threads(min(2, int(threads)))
        except RuntimeError:
            pass  # already initialized in this process: keep its settings
        if deterministic:
            tf.config.experimental.enable_op_determinism()


@contextmanager
def private_python_random(seed):
    """Keras draws the seeds of initializers and dropout from Python's global `random`, which
    other threads also use (a Dask worker's do): give model building a private generator so
    the same seed builds the same model in any process or thread."""
    from keras.src.random import seed_generator

    if not hasattr(seed_generator, "python_random"):  # a Keras that works otherwise
        yield
        return
    saved = seed_generator.python_random
    seed_generator.python_random = random.Random(seed)
    try:
        yield
    finally:
        seed_generator.python_random = saved
