"""Gradients of a scalar function of a model's input, on the TensorFlow or the JAX backend."""

import keras
import numpy as np

from fer_kaggle.errors import ConfigError


def input_gradient(score_fn, x):
    """d score_fn(x) / dx for a float32 batch x; score_fn maps a backend tensor to a scalar."""
    x = np.asarray(x, dtype="float32")
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        xt = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            score = score_fn(xt)
        return tape.gradient(score, xt).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(score_fn)(jax.numpy.asarray(x)))
    raise ConfigError(f"gradient diagnostics need the tensorflow or jax backend, not {backend}")


def class_log_prob_gradient(model, x, classes):
    """Gradient of each image's log-probability of its class, w.r.t. the input pixels."""
    onehot = np.eye(model.output_shape[-1], dtype="float32")[np.asarray(classes)]

    def score(xt):
        probs = model(xt, training=False)
        return keras.ops.sum(keras.ops.log(keras.ops.sum(probs * onehot, axis=-1) + 1e-7))

    return input_gradient(score, x)
