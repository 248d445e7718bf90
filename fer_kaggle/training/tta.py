"""Prediction with test-time augmentation."""

import numpy as np

from fer_kaggle.errors import ConfigError
from fer_kaggle.rows import Rows, chunks

# views per image: the image, its mirror, diagonal shifts (crops); for images whose class a
# vertical flip or a quarter turn keeps (aerial, microscope): both flips (flips), the four
# quarter turns (turns), and those turns mirrored too (dihedral: the square's eight symmetries)
TTA_VIEWS = {"none": 1, "flip": 2, "crops": 5, "flip+crops": 10, "flips": 4, "turns": 4, "dihedral": 8}
TTA_SHIFT = 1 / 24  # the diagonal shifts of the crops, as a fraction of the side (2 pixels at 48)
TURNING = ("turns", "dihedral")  # views that need square images
MIRRORING = ("flip", "flip+crops", "flips", "dihedral")  # views that include each image's mirror


def without_mirror(tta):
    """The TTA that a competition without mirror symmetry (digits, text) uses instead."""
    return {"flip": "none", "flip+crops": "crops", "flips": "none", "dihedral": "turns"}.get(tta, tta)


def usable_ttas(height, width):
    """The TTAs whose views fit images of this shape (quarter turns: square ones only)."""
    return [t for t in TTA_VIEWS if height == width or t not in TURNING]


def predict(model, x, tta="flip", batch_size=512):
    """Class probabilities (float32, rows summing to 1) of uint8 (n, h, w, c) images (an array,
    a memory map or `Rows`, read in chunks of rows.CHUNK_BYTES), averaged over test-time
    augmentations: the image and its mirror (flip), and each of them shifted diagonally four
    ways by TTA_SHIFT of the side (crops: the image and its four shifts only). Mirrored and
    unmirrored views stay balanced: on the cpu preset's fold models, shifts of the unmirrored
    image only scored below the mirror alone."""
    x = x if isinstance(x, Rows) else np.asarray(x)
    probs = np.zeros((len(x), model.output_shape[-1]), dtype=np.float64)
    for start, pixels in chunks(x, batch_size):
        for view in _views(to_model_size(model, pixels), tta):
            probs[start: start + len(pixels)] += model.predict(view.astype("float32"), batch_size=batch_size,
                                                               verbose=0)
    probs /= probs.sum(axis=1, keepdims=True)
    return probs.astype(np.float32)


def to_model_size(model, pixels):
    """`pixels` resized (bilinear) to the side `model` takes where they differ: a pretrained
    network trained at its own side, asked by a teacher or a diagnostic about the competition's
    training-size images."""
    height, width = (getattr(model, "input_shape", None) or (None, None, None))[1:3]  # None: takes any size
    if height is None or (pixels.shape[1], pixels.shape[2]) == (height, width):
        return pixels
    from keras import ops

    resized = ops.image.resize(pixels.astype("float32"), (height, width), interpolation="bilinear")
    return np.clip(np.round(ops.convert_to_numpy(resized)), 0, 255).astype(pixels.dtype)


def _views(x, tta):
    if tta in TURNING:
        if x.shape[1] != x.shape[2]:
            raise ConfigError(f"tta={tta} turns images a quarter: it needs square ones, not {x.shape[1]}x{x.shape[2]}")
        turns = [np.rot90(x, k, axes=(1, 2)) for k in range(4)]
        return turns + ([t[:, :, ::-1] for t in turns] if tta == "dihedral" else [])
    if tta == "flips":
        return [x, x[:, :, ::-1], x[:, ::-1], x[:, ::-1, ::-1]]
    bases = [x, x[:, :, ::-1]] if tta in MIRRORING else [x]
    views = list(bases)
    if tta in ("crops", "flip+crops"):
        h, w = x.shape[1:3]
        p = max(1, int(round(TTA_SHIFT * min(h, w))))
        for image in bases:
            padded = np.pad(image, ((0, 0), (p, p), (p, p), (0, 0)), mode="edge")
            views += [padded[:, dy: dy + h, dx: dx + w] for dy in (0, 2 * p) for dx in (0, 2 * p)]
    return views
