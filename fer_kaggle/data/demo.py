"""The synthetic demo competition: seeded 48x48 face-like images of 7 expressions.

Expressions differ in drawn features (mouth curve, opening and asymmetry, brow angle and
height, eye opening), sampled with overlap between classes, under pose (shift, scale,
rotation), lighting (level, gradient, contrast) and pixel noise. Class frequencies follow
FER2013's. It is written in exactly the NTU layout, plus `test_labels.csv` so the demo can
score itself.
"""

from pathlib import Path

import numpy as np

from fer_kaggle import atomic

# FER2013's train class counts: angry, disgust, fear, happy, sad, surprise, neutral.
FER2013_COUNTS = np.array([3995, 436, 4097, 7215, 4830, 3171, 4965])

# Per class: mouth curve (+ smile), mouth opening, mouth asymmetry, brow angle (+ inner end
# down, a frown), brow lift, eye opening.
EXPRESSIONS = np.array(
    [
        [-0.25, 0.05, 0.0, 0.70, -0.05, 0.60],  # angry
        [-0.35, 0.10, 0.60, 0.35, -0.05, 0.50],  # disgust
        [-0.30, 0.35, 0.0, -0.45, 0.10, 1.30],  # fear
        [0.90, 0.20, 0.0, 0.00, 0.00, 0.80],  # happy
        [-0.75, 0.00, 0.0, -0.55, 0.00, 0.75],  # sad
        [0.00, 0.80, 0.0, -0.10, 0.15, 1.40],  # surprise
        [0.00, 0.00, 0.0, 0.00, 0.00, 1.00],  # neutral
    ],
    dtype=np.float32,
)
FEATURE_JITTER = np.array([0.20, 0.10, 0.15, 0.20, 0.04, 0.15], dtype=np.float32)


def generate(n, seed=0):
    """Return (images uint8 (n, 48, 48), labels int64 (n,)), deterministic in `seed`."""
    rng = np.random.default_rng(seed)
    prior = FER2013_COUNTS / FER2013_COUNTS.sum()
    labels = rng.choice(len(prior), size=n, p=prior)
    images = np.empty((n, 48, 48), dtype=np.uint8)
    for lo in range(0, n, 512):
        hi = min(lo + 512, n)
        images[lo:hi] = _render(labels[lo:hi], rng)
    return images, labels.astype(np.int64)


def _soft(d, width=0.025):
    """1 inside (d < 0), 0 outside, with a soft edge: anti-aliased shapes."""
    return 1.0 / (1.0 + np.exp(np.clip(d / width, -30, 30)))


def _render(labels, rng):
    n = len(labels)
    f = EXPRESSIONS[labels] + rng.normal(size=(n, 6)).astype(np.float32) * FEATURE_JITTER
    curve, opening, asym, brow_angle, brow_lift, eye_open = (f[:, i, None, None] for i in range(6))
    opening = np.maximum(opening, 0.0)
    eye_open = np.clip(eye_open, 0.2, 1.8)

    # Pose: each output pixel maps back into face coordinates (u right, v down, face ~ unit).
    shift = rng.normal(scale=2.0, size=(n, 2))
    scale = rng.uniform(0.9, 1.1, size=n) * 22.0
    angle = rng.normal(scale=0.12, size=n)
    py, px = np.mgrid[0:48, 0:48].astype(np.float32) - 23.5
    x = (px[None] - shift[:, 0, None, None]) / scale[:, None, None]
    y = (py[None] - shift[:, 1, None, None]) / scale[:, None, None]
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    u, v = cos * x + sin * y, -sin * x + cos * y

    skin = rng.uniform(0.55, 0.85, size=(n, 1, 1))
    background = rng.uniform(0.1, 0.9, size=(n, 1, 1))
    face = _soft((u / 0.78) ** 2 + (v / 0.98) ** 2 - 1.0, 0.05)
    img = background * (1 - face) + skin * face

    dark = np.zeros_like(img)
    for side in (-1.0, 1.0):
        eu, ev = u - side * 0.33, v + 0.15
        dark = np.maximum(dark, _soft((eu / 0.15) ** 2 + (ev / (0.075 * eye_open)) ** 2 - 1.0, 0.15))
        # Brow: a thick segment whose inner end drops with brow_angle.
        t = np.clip((side * u - 0.12) / 0.36, 0.0, 1.0)
        bx = side * (0.12 + 0.36 * t)
        by = -0.42 - brow_lift + brow_angle * 0.2 * (1.0 - t) - 0.03 * t * (1 - t)
        dist = np.sqrt((u - bx) ** 2 + (v - by) ** 2)
        dark = np.maximum(dark, 0.9 * _soft(dist - 0.045))

    # Mouth: a curved line y(x) that opens into a dark lens.
    mx = np.clip(u / 0.32, -1.0, 1.0)
    centre = 0.45 - curve * 0.18 * mx**2 + asym * 0.09 * mx + curve * 0.04
    half_open = opening * 0.11 * (1 - mx**2) + 0.022
    inside_x = _soft(np.abs(u) - 0.32, 0.03)
    dark = np.maximum(dark, inside_x * _soft(np.abs(v - centre) - half_open))

    img = img * (1 - 0.75 * dark * face)
    # Lighting: a gradient across the face, contrast and level jitter, then sensor noise.
    gx, gy = rng.normal(scale=0.25, size=(2, n, 1, 1))
    img = img * (1 + gx * px[None] / 24 + gy * py[None] / 24)
    img = (img - 0.5) * rng.uniform(0.6, 1.3, size=(n, 1, 1)) + 0.5 + rng.normal(scale=0.08, size=(n, 1, 1))
    img = img + rng.normal(scale=rng.uniform(0.02, 0.06, size=(n, 1, 1)), size=img.shape)
    return np.clip(img * 255.0, 0, 255).round().astype(np.uint8)


def _pixel_rows(keys, images):
    lines = (f"{k},{' '.join(map(str, img.ravel().tolist()))}" for k, img in zip(keys, images))
    return "\n".join(lines) + "\n"


def write_demo_competition(directory, n_train=2800, n_test=700, seed=2013):
    """Write the demo competition in the NTU layout into `directory`; returns the directory."""
    directory = Path(directory)
    x_train, y_train = generate(n_train, seed=seed)
    x_test, y_test = generate(n_test, seed=seed + 1)
    ids = np.arange(n_test)
    # test_labels.csv first and train.csv last: a directory with train.csv is complete.
    atomic.write_text(directory / "test_labels.csv", "id,label\n" + "".join(f"{i},{c}\n" for i, c in zip(ids, y_test)))
    atomic.write_text(directory / "sample_submission.csv", "id,label\n" + "".join(f"{i},0\n" for i in ids))
    atomic.write_text(directory / "test.csv", "id,feature\n" + _pixel_rows(ids, x_test))
    atomic.write_text(directory / "train.csv", "label,feature\n" + _pixel_rows(y_train, x_train))
    return directory
