"""Backend set-up: threads, deterministic ops, JAX's compilation cache, and a private random
generator for model building."""

import os
import random
from contextlib import contextmanager
from pathlib import Path

# Compiled steps kept across processes (fold jobs, pieces): the folds of a variant compile the
# same programs, which on a GPU take seconds each. FER_KAGGLE_JAX_CACHE= (empty) turns it off.
JAX_CACHE = Path.home() / ".cache" / "fer-kaggle" / "jax"


def configure_backend(threads=None, deterministic=True):
    """Threads and deterministic ops (TensorFlow), the compilation cache (JAX); call before the
    backend runs its first op."""
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
    elif keras.backend.backend() == "jax":
        cache = os.environ.get("FER_KAGGLE_JAX_CACHE", str(JAX_CACHE))
        if cache:
            import jax

            jax.config.update("jax_compilation_cache_dir", cache)
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


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
