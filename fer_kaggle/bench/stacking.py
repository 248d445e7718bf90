"""The optimism of a combiner fit on OOF predictions (`bench --only combiner`).

A blend's fold-k combiner (and a teacher's, `fer_kaggle.teaching.teacher`) is fit on the OOF
rows outside fold k; those rows were predicted by fold models that trained on fold k's rows,
so what it learns depends, at one remove, on fold k's labels. A clean combiner of fold k is
fit on predictions that never saw fold k: an inner K-fold of the members within the rows
outside fold k. The two, applied to the same fold-k predictions and scored on fold k, differ
by that dependency's optimism. Training CNNs K x K times is out of reach, so the members here
are quick scikit-learn models on the competition's own images (downsampled, flattened): the
mechanism is the same, the figure an estimate of its size.
"""

import numpy as np

SIDE = 16  # images downsampled to SIDE x SIDE gray for the quick members
MAX_ROWS = 3000


def quick_members(seed):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier

    return [LogisticRegression(C=0.05, max_iter=300), KNeighborsClassifier(15),
            RandomForestClassifier(100, min_samples_leaf=2, random_state=seed, n_jobs=1), GaussianNB()]


def features(x, rows):
    """Flattened gray SIDE x SIDE images of `rows`, standardized."""
    import keras

    images = np.asarray(x[rows], dtype=np.float32).mean(axis=-1, keepdims=True)
    small = keras.ops.convert_to_numpy(keras.ops.image.resize(images, (SIDE, SIDE))).reshape(len(rows), -1)
    return (small - small.mean(axis=0)) / (small.std(axis=0) + 1e-6)


def oof_of(models, x, y, folds, num_classes):
    """Each model's OOF probabilities over the rows of `folds`."""
    from sklearn.base import clone

    out = [np.zeros((len(y), num_classes), np.float32) for _ in models]
    for k in np.unique(folds):
        fit_rows, held = folds != k, folds == k
        for m, model in enumerate(models):
            fitted = clone(model).fit(x[fit_rows], y[fit_rows])
            out[m][np.ix_(held, fitted.classes_)] = fitted.predict_proba(x[held])
    return out


def combiner_optimism(x_images, y, num_classes, methods=("stack", "caruana"), k=5, inner_k=4, seeds=(0, 1)):
    """{method: {"standard": (accuracy, log loss), "clean": (...), "differences": per-fold
    (accuracy, log loss) of standard minus clean}} over `seeds` draws of rows and folds."""
    from fer_kaggle.ensemble import make_blender
    from fer_kaggle.metrics import accuracy, log_loss

    result = {m: {"standard": [], "clean": [], "differences": []} for m in methods}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.permutation(len(y))[:MAX_ROWS])
        x, labels = features(x_images, rows), np.asarray(y)[rows]
        folds = rng.permutation(len(rows)) % k
        models = quick_members(seed)
        oofs = oof_of(models, x, labels, folds, num_classes)
        for fold in range(k):
            outside, held = folds != fold, folds == fold
            inner_folds = rng.permutation(int(outside.sum())) % inner_k
            inner = oof_of(models, x[outside], labels[outside], inner_folds, num_classes)
            for method in methods:
                scores = {}
                for kind, train_preds in (("standard", [o[outside] for o in oofs]), ("clean", inner)):
                    combiner = make_blender(method, seed).fit(train_preds, labels[outside])
                    probs = combiner.predict_proba([o[held] for o in oofs])
                    scores[kind] = (accuracy(probs, labels[held]), log_loss(probs, labels[held]))
                    result[method][kind].append(scores[kind])
                result[method]["differences"].append(tuple(np.subtract(scores["standard"], scores["clean"])))
    return {m: {kind: np.mean(v, axis=0) if kind != "differences" else np.asarray(v) for kind, v in r.items()}
            for m, r in result.items()}
