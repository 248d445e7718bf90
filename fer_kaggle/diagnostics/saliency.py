"""Saliency maps: the gradient of the class score w.r.t. the input, on held-out rows only."""

import numpy as np

from fer_kaggle.diagnostics.gradients import class_log_prob_gradient
from fer_kaggle.diagnostics.plots import figure, save, show_image


def pick_held_out(valid_rows, y, per_class, n_classes, seed=0):
    """A few rows of each class from one fold's held-out rows."""
    rng = np.random.default_rng(seed)
    picked = []
    for c in range(n_classes):
        rows = valid_rows[y[valid_rows] == c]
        picked += sorted(rng.choice(rows, size=min(per_class, len(rows)), replace=False).tolist())
    return np.asarray(picked, dtype=np.int64)


def saliency_maps(model, images, classes):
    """|gradient| per pixel (the largest over the channels), scaled to [0, 1] per image so maps are comparable at a glance."""
    grads = np.abs(class_log_prob_gradient(model, np.asarray(images).astype("float32"), classes)).max(axis=-1)
    return grads / np.maximum(grads.max(axis=(1, 2), keepdims=True), 1e-12)


def plot_saliency(images, maps, true, pred, class_names, path, title):
    n = len(images)
    fig, axes = figure("grid", nrows=n, ncols=3, squeeze=False) if n <= 4 else figure("grid", nrows=(n + 1) // 2, ncols=6)
    axes = axes.reshape(-1, 3)
    for ax in axes.ravel():
        ax.axis("off")
    for (a_img, a_map, a_over), img, m, t, p in zip(axes, images, maps, true, pred):
        show_image(a_img, img)
        a_img.set_title(f"true {class_names[t]}, pred {class_names[p]}", fontsize=7)
        im = a_map.imshow(m, cmap="hot", vmin=0, vmax=1)
        a_map.set_title("|d log p(true) / d pixel|", fontsize=7)
        show_image(a_over, img)
        a_over.imshow(m, cmap="jet", alpha=0.45, vmin=0, vmax=1)
        a_over.set_title("overlay", fontsize=7)
    fig.colorbar(im, ax=axes.ravel().tolist(), fraction=0.02, label="gradient magnitude (per image, max = 1)")
    fig.suptitle(title)
    return save(fig, path)
