"""Small synthetic competitions, one per layout the toolkit reads, written exactly as Kaggle
serves such competitions, plus `test_labels.csv` so that each can score itself. The tests run
every stage on them offline; `fer-kaggle data --demo LAYOUT` chooses one.

- ntu: the FER-like faces of `fer_kaggle.data.demo` (48x48 grayscale, 7 expressions).
- digits: Digit Recognizer's layout (28x28 grayscale pixel columns, test rows without ids,
  `sample_submission.csv` = `ImageId,Label` from 1), ten stroke shapes.
- images: CIFAR-10's layout (32x32 RGB PNG files, `trainLabels.csv` = `id,label` with class
  names, `sampleSubmission.csv`), shapes of random colour on a random background.
- folders: Plant Seedlings' layout (`train/<class>/*.png`, flat `test/`,
  `sample_submission.csv` = `file,species`), RGB images of mixed sizes.

Every class is a shape (disk, ring, square, bars, cross, triangle, ...) drawn at a random
place, size and colour under noise, so a small CNN learns it well above chance in seconds.
"""

import io
from pathlib import Path

import numpy as np

from fer_kaggle import atomic

DEMO_LAYOUTS = ("ntu", "digits", "images", "folders")
SHAPES = ("disk", "ring", "square", "hbar", "vbar", "cross", "triangle", "diagonal", "dots", "frame")
NAMES = ("apple", "bagel", "cheese", "dates", "eggs", "figs", "grapes", "honey", "icing", "jam")


def shapes(n, n_classes, size, channels, seed=0):
    """(uint8 images (n, size, size, channels), labels (n,)): class c draws shape SHAPES[c]."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, size=n)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    images = np.empty((n, size, size, channels), dtype=np.uint8)
    for i, c in enumerate(labels):
        cx, cy = rng.uniform(0.35, 0.65, size=2)
        r = rng.uniform(0.18, 0.3)
        u, v = (xx - cx) / r, (yy - cy) / r
        mask = _shape(SHAPES[c % len(SHAPES)], u, v)
        if channels == 1:
            fg, bg = rng.uniform(0.6, 1.0), rng.uniform(0.0, 0.3)
            img = bg + (fg - bg) * mask
            img = img[..., None]
        else:
            fg, bg = rng.uniform(0, 1, size=3), rng.uniform(0, 1, size=3)
            while np.abs(fg - bg).sum() < 0.6:
                fg = rng.uniform(0, 1, size=3)
            img = bg + (fg - bg) * mask[..., None]
        img = img + rng.normal(scale=0.06, size=img.shape)
        images[i] = np.clip(img * 255, 0, 255).round().astype(np.uint8)
    return images, labels.astype(np.int64)


def _shape(kind, u, v):
    ru = np.sqrt(u**2 + v**2)
    return {
        "disk": ru < 1,
        "ring": (ru < 1) & (ru > 0.6),
        "square": (np.abs(u) < 0.8) & (np.abs(v) < 0.8),
        "hbar": (np.abs(u) < 1.1) & (np.abs(v) < 0.3),
        "vbar": (np.abs(u) < 0.3) & (np.abs(v) < 1.1),
        "cross": ((np.abs(u) < 1) & (np.abs(v) < 0.25)) | ((np.abs(u) < 0.25) & (np.abs(v) < 1)),
        "triangle": (v < 0.8) & (v > -0.9) & (np.abs(u) < (v + 0.9) * 0.6),
        "diagonal": (np.abs(u - v) < 0.35) & (np.abs(u + v) < 1.6),
        "dots": (np.sqrt((u - 0.5) ** 2 + v**2) < 0.35) | (np.sqrt((u + 0.5) ** 2 + v**2) < 0.35),
        "frame": (np.maximum(np.abs(u), np.abs(v)) < 1) & (np.maximum(np.abs(u), np.abs(v)) > 0.7),
    }[kind].astype(np.float32)


def _png(image):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buf, format="PNG")
    return buf.getvalue()


def write_demo(directory, layout, n_train=None, n_test=None, seed=7, n_classes=None):
    """Write the demo competition of `layout` into `directory`; returns the directory. The
    marker `COMPLETE` (or, for ntu, train.csv) is written last: a directory with it is whole."""
    directory = Path(directory)
    if layout == "ntu":
        from fer_kaggle.data.demo import write_demo_competition

        return write_demo_competition(directory, **({} if n_train is None else {"n_train": n_train}),
                                      **({} if n_test is None else {"n_test": n_test}))
    writer = {"digits": _digits, "images": _images, "folders": _folders}[layout]
    writer(directory, n_train or 1500, n_test or 300, seed, n_classes or 10)
    atomic.write_text(directory / "COMPLETE", "")
    return directory


def _digits(directory, n_train, n_test, seed, n_classes):
    x, y = shapes(n_train + n_test, n_classes, 28, 1, seed)
    pixels = ",".join(f"pixel{i}" for i in range(28 * 28))
    rows = lambda images: "".join(",".join(map(str, im.ravel().tolist())) + "\n" for im in images)  # noqa: E731
    atomic.write_text(directory / "train.csv", f"label,{pixels}\n" + "".join(
        f"{c}," + ",".join(map(str, im.ravel().tolist())) + "\n" for c, im in zip(y[:n_train], x[:n_train])))
    atomic.write_text(directory / "test.csv", f"{pixels}\n" + rows(x[n_train:]))
    atomic.write_text(directory / "sample_submission.csv",
                      "ImageId,Label\n" + "".join(f"{i + 1},0\n" for i in range(n_test)))
    atomic.write_text(directory / "test_labels.csv",
                      "id,label\n" + "".join(f"{i + 1},{c}\n" for i, c in enumerate(y[n_train:])))


def _images(directory, n_train, n_test, seed, n_classes):
    x, y = shapes(n_train + n_test, n_classes, 32, 3, seed)
    names = NAMES[:n_classes]
    for i in range(n_train):
        atomic.write_bytes(directory / "train" / f"{i + 1}.png", _png(x[i]))
    order = np.random.default_rng(seed + 1).permutation(n_test)  # test ids do not follow the classes
    for j in range(n_test):
        atomic.write_bytes(directory / "test" / f"{j + 1}.png", _png(x[n_train + order[j]]))
    atomic.write_text(directory / "trainLabels.csv", "id,label\n" + "".join(
        f"{i + 1},{names[c]}\n" for i, c in enumerate(y[:n_train])))
    atomic.write_text(directory / "sampleSubmission.csv", "id,label\n" + "".join(f"{j + 1},{names[0]}\n"
                                                                                 for j in range(n_test)))
    atomic.write_text(directory / "test_labels.csv", "id,label\n" + "".join(
        f"{j + 1},{names[y[n_train + order[j]]]}\n" for j in range(n_test)))


def _folders(directory, n_train, n_test, seed, n_classes):
    """Images of mixed sizes (32 to 40 pixels a side), as photographed seedlings are."""
    from PIL import Image

    rng = np.random.default_rng(seed + 2)
    x, y = shapes(n_train + n_test, n_classes, 40, 3, seed)
    names = NAMES[:n_classes]

    def resized(image):
        side = int(rng.integers(32, 41))
        return np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.BILINEAR))

    for i in range(n_train):
        atomic.write_bytes(directory / "train" / names[y[i]] / f"{i:05d}.png", _png(resized(x[i])))
    files = [f"t{j:05d}.png" for j in range(n_test)]
    for j, name in enumerate(files):
        atomic.write_bytes(directory / "test" / name, _png(resized(x[n_train + j])))
    atomic.write_text(directory / "sample_submission.csv", "file,species\n" + "".join(f"{f},{names[0]}\n"
                                                                                      for f in files))
    atomic.write_text(directory / "test_labels.csv", "id,label\n" + "".join(
        f"{f},{names[y[n_train + j]]}\n" for j, f in enumerate(files)))
