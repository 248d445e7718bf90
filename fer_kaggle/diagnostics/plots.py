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
