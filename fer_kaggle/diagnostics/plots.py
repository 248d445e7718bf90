"""Shared figure setup: Agg (no display), a fixed size and resolution, atomic PNG writes."""

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fer_kaggle import atomic  # noqa: E402

DPI = 100
SIZES = {"wide": (12, 5), "square": (7, 6), "grid": (10, 8), "table": (10, 4)}


def figure(kind="square", **kwargs):
    return plt.subplots(figsize=SIZES[kind], dpi=DPI, **kwargs)


def save(fig, path):
    """Write the figure as a PNG of exactly its fixed size (no tight cropping), atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    atomic.write_bytes(path, buf.getvalue())
    return path


def pixel_size(kind):
    w, h = SIZES[kind]
    return int(w * DPI), int(h * DPI)


def show_image(ax, image, **kwargs):
    """An image of the competition, uint8 (h, w, c): grayscale with a gray map, RGB as it is."""
    import numpy as np

    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 2:
        return ax.imshow(image, cmap="gray", vmin=0, vmax=255, **kwargs)
    return ax.imshow(np.clip(image, 0, 255).astype("uint8"), **kwargs)


def as_rgb(image):
    """float RGB in [0, 1] of a uint8 (h, w, c) image, for overlays."""
    import numpy as np

    image = np.asarray(image, dtype="float64") / 255.0
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image
