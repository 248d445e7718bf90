"""Prediction with test-time augmentation."""

import numpy as np

TTA_VIEWS = {"none": 1, "flip": 2, "flip+crops": 10}


def predict(model, x, tta="flip", batch_size=512):
    """Class probabilities (float32, rows summing to 1) of (n, 48, 48) pixels, averaged over
    test-time augmentations: the image and its mirror, and (flip+crops) each of the two shifted
    diagonally by 2 pixels four ways. Mirrored and unmirrored views stay balanced: on the cpu
    preset's fold models, shifts of the unmirrored image only scored below the mirror alone."""
    views = [x]
    if tta in ("flip", "flip+crops"):
        views.append(x[:, :, ::-1])
    if tta == "flip+crops":
        h, w = x.shape[1:3]
        for image in (x, x[:, :, ::-1]):
            padded = np.pad(image, ((0, 0), (2, 2), (2, 2)), mode="edge")
            views += [padded[:, dy : dy + h, dx : dx + w] for dy in (0, 4) for dx in (0, 4)]
    probs = np.zeros((len(x), model.output_shape[-1]), dtype=np.float64)
    for view in views:
        probs += model.predict(view[..., None].astype("float32"), batch_size=batch_size, verbose=0)
    probs /= probs.sum(axis=1, keepdims=True)
    return probs.astype(np.float32)
