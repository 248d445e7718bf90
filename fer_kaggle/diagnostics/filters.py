"""What convolution filters respond to: inputs found by gradient ascent from noise (with
decay, blur and jitter so they are readable), and one layer's activations for an image."""

import keras
import numpy as np
from scipy.ndimage import gaussian_filter

from fer_kaggle.diagnostics.gradients import input_gradient
from fer_kaggle.diagnostics.plots import figure, save, show_image


def conv_layers(model):
    return [layer.name for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.SeparableConv2D))]


def maximize_filters(model, layer_name, filters, steps=60, step_size=8.0, seed=0, progress=None):
    """Images (n, h, w, c) of pixel values 0-255 that maximize each filter's mean activation."""
    sub = keras.Model(model.inputs, model.get_layer(layer_name).output)
    rng = np.random.default_rng(seed)
    x = (128 + rng.normal(scale=20, size=(len(filters), *model.input_shape[1:]))).astype("float32")
    select = np.zeros((len(filters), sub.output_shape[-1]), dtype="float32")
    select[np.arange(len(filters)), filters] = 1.0

    def score(xt):
        act = sub(xt, training=False)
        return keras.ops.sum(keras.ops.mean(act, axis=(1, 2)) * select)

    for step in range(steps):
        shift = rng.integers(-2, 3, size=2)
        x = np.roll(x, shift, axis=(1, 2))  # jitter
        g = input_gradient(score, x)
        g /= np.sqrt(np.mean(g**2, axis=(1, 2, 3), keepdims=True)) + 1e-8
        x = x + step_size * g
        x = 128 + 0.98 * (x - 128)  # decay toward grey
        if step % 4 == 3:
            x = gaussian_filter(x, sigma=(0, 0.6, 0.6, 0))  # blur
        x = np.roll(x, -shift, axis=(1, 2))
        x = np.clip(x, 0, 255)
        if progress and (step + 1) % 20 == 0:
            progress(f"filters of {layer_name}: gradient ascent step {step + 1}/{steps}")
    return x


def plot_filters(images, filters, layer_name, path):
    fig, axes = figure("grid", nrows=4, ncols=(len(images) + 3) // 4, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, img, f in zip(axes.ravel(), images, filters):
        show_image(ax, img)
        ax.set_title(f"filter {f}", fontsize=8)
    fig.suptitle(f"Inputs that maximize filters of {layer_name} (gradient ascent from noise)")
    return save(fig, path)


def plot_activations(model, layer_name, image, path, max_maps=32):
    sub = keras.Model(model.inputs, model.get_layer(layer_name).output)
    act = np.asarray(sub(np.asarray(image)[None].astype("float32"), training=False))[0]
    n = min(max_maps, act.shape[-1])
    fig, axes = figure("grid", nrows=4, ncols=(n + 1 + 3) // 4, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    show_image(axes.ravel()[0], image)
    axes.ravel()[0].set_title("input", fontsize=8)
    for i, ax in enumerate(axes.ravel()[1 : n + 1]):
        im = ax.imshow(act[..., i], cmap="viridis")
        ax.set_title(f"map {i}", fontsize=7)
    fig.colorbar(im, ax=axes.ravel().tolist(), fraction=0.02, label="activation")
    fig.suptitle(f"Activations of {layer_name} ({act.shape[0]}x{act.shape[1]}x{act.shape[2]}) for one held-out image")
    return save(fig, path)
