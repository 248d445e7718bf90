"""Whether a mirror (or a vertical flip, or a quarter turn) keeps an image's class, measured on the
competition's own images, cheaply: a linear classifier of small copies of a few thousand
training images, fitted on three quarters of them, is scored on the other quarter as they are and
transformed. Two pieces of evidence:

- retained: the share of its skill above chance the classifier keeps on the transformed held-out
  images (a mirrored face is still a plausible face of its expression; a mirrored 3 is no digit);
- augmented: how its held-out accuracy changes when the transformed training images are added
  with their labels (a symmetry costs nothing; a transform that changes the class teaches noise).

A transform keeps the class where both say so (retained at least KEEPS, and the augmented
classifier within COST of the plain one); it changes the class where the retained skill is below
CHANGES; otherwise the evidence is too weak, and the known competition's prior, else the default,
decides. Measured here (`fer-kaggle bench --only symmetry`, BENCHMARKS.md): mirrors of clothing,
FER2013 and CIFAR-10 keep 0.70-0.95 of the skill (the augmented classifier -1.6 to +3.9 points);
of handwritten digits (scikit-learn's) 0.29; vertical flips and quarter turns of all of them 0.37
or less.
"""

import numpy as np

SIDE = 16  # the small copies' side
ROWS = 4000  # training images used at most
KEEPS, CHANGES = 0.6, 0.45  # retained skill: above KEEPS a symmetry (with COST), below CHANGES not
COST = 0.03  # accuracy the augmented classifier may lose where the transform is a symmetry
TRANSFORMS = {"hflip": lambda x: x[:, :, ::-1], "vflip": lambda x: x[:, ::-1],
              "rot90": lambda x: np.rot90(x, 1, axes=(1, 2))}


def measure(x, y, seed=0, rows=ROWS):
    """{transform: {"retained", "augmented", "keeps" (True, False, or None: too weak to say)}} of
    the images `x` (n, h, w, c) uint8 with classes `y`; {} where there is too little signal (fewer
    than 100 images, or a classifier no better than chance)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(y)
    if len(y) < 100 or len(np.unique(y)) < 2:
        return {}
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.permutation(len(y))[:rows])  # read in file order (a memory map), then shuffled:
    x, y = np.asarray(x[picked]), y[picked]  # files often come one class after another
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    cut = int(0.75 * len(y))
    chance = np.bincount(y[cut:]).max() / len(y[cut:])

    def fit(features, labels):
        scaler = StandardScaler().fit(features)
        return scaler, LogisticRegression(C=0.05, max_iter=300).fit(scaler.transform(features), labels)

    def accuracy(model, features, labels):
        scaler, classifier = model
        return float(np.mean(classifier.predict(scaler.transform(features)) == labels))

    plain = _small(x)
    model = fit(plain[:cut], y[:cut])
    skill = accuracy(model, plain[cut:], y[cut:]) - chance
    if skill < 0.05:
        return {}
    evidence = {}
    for name, transform in TRANSFORMS.items():
        if name == "rot90" and x.shape[1] != x.shape[2]:
            continue
        turned = _small(transform(x))
        retained = (accuracy(model, turned[cut:], y[cut:]) - chance) / skill
        both = fit(np.concatenate([plain[:cut], turned[:cut]]), np.concatenate([y[:cut], y[:cut]]))
        augmented = accuracy(both, plain[cut:], y[cut:]) - (skill + chance)
        keeps = True if retained >= KEEPS and augmented >= -COST else False if retained < CHANGES else None
        evidence[name] = {"retained": round(float(retained), 3), "augmented": round(float(augmented), 4),
                          "keeps": keeps}
    return evidence


def _small(x):
    """Each image as SIDE x SIDE luminance-preserving pixels (area-averaged), flattened."""
    from PIL import Image

    out = np.empty((len(x), SIDE * SIDE * x.shape[-1]), np.float32)
    for i, image in enumerate(x):
        pixels = image[..., 0] if image.shape[-1] == 1 else image
        out[i] = np.asarray(Image.fromarray(np.ascontiguousarray(pixels)).resize((SIDE, SIDE), Image.Resampling.BOX),
                            np.float32).reshape(-1)
    return out
