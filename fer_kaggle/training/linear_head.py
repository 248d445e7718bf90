"""The linear head of a pretrained network (fer_kaggle.models.pretrained): a multinomial logistic
regression on its frozen pooled features, and the network's classifier set to it. The linear probe
fits it as a variant of its own (fer_kaggle.probe); fine-tuning with `head_init` starts its
classifier there (the head first, then the whole network: the backbone's first steps follow a
classifier that already separates the classes, not a random one's gradients)."""

import time
import warnings

import numpy as np

C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)  # inverse strengths tried, weakest first (each fit starts from the last)
INNER_FOLDS = 3
INNER_ROWS = 10000  # the inner CV chooses C on at most this many of the fold's training rows
MAX_ITER = 300
HEAD_INIT_ROWS = 5000  # training rows whose frozen features start a fine-tuned network's classifier


def fit_head(f, y, num_classes, seed=0, taught=None):
    """(scaler, classifier, C, inner scores): the standardized features' logistic regression,
    C chosen by INNER_FOLDS-fold CV on these rows (at most INNER_ROWS of them). `taught`:
    (features, target probabilities, weights) of a taught fold (pseudo-labels, distillation),
    which the final classifier fits instead: each row once per class its target gives a share,
    weighted by that share, which is the cross-entropy with soft targets."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(f)
    z = scaler.transform(f)
    rng = np.random.default_rng(seed)
    sub = rng.permutation(len(z))[:INNER_ROWS]
    zs, ys = z[sub], y[sub]
    scores = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter bounds the time
        warnings.filterwarnings("ignore", "The least populated class", UserWarning)  # a rare class: in fewer folds
        n_inner = min(INNER_FOLDS, np.sort(np.bincount(ys, minlength=2))[-2])  # the two largest classes in every inner fit
        if n_inner >= 2:
            inner = list(StratifiedKFold(n_inner, shuffle=True, random_state=seed).split(zs, ys))
            heads = [LogisticRegression(max_iter=MAX_ITER, warm_start=True) for _ in inner]
            for c in C_GRID:
                scores[c] = float(np.mean([h.set_params(C=c).fit(zs[tr], ys[tr]).score(zs[va], ys[va])
                                           for h, (tr, va) in zip(heads, inner)]))
        best = max(scores, key=scores.get) if scores else C_GRID[len(C_GRID) // 2]
        head = LogisticRegression(C=best, max_iter=MAX_ITER)
        if taught is None:
            head.fit(z, y)
        else:
            f_taught, targets, weights = taught
            rows, classes = np.nonzero(targets > 1e-3)
            head.fit(scaler.transform(f_taught)[rows], classes, sample_weight=targets[rows, classes] * weights[rows])
    return scaler, head, best, scores


def probabilities(scaler, head, f, num_classes):
    """Class probabilities of every class code (a class absent from the fold's rows gets 0)."""
    probs = np.zeros((len(f), num_classes), np.float32)
    probs[:, head.classes_] = head.predict_proba(scaler.transform(f))
    return probs


def set_classifier(model, scaler, head, num_classes):
    """The network's last layer set to the fitted classifier, the standardization folded in:
    softmax(W (f - mean) / scale + b) = softmax((W / scale) f + b - W mean / scale)."""
    w = np.zeros((num_classes, head.coef_.shape[1]), np.float32)
    b = np.full(num_classes, -1e4, np.float32)  # classes the fold never saw
    coef, intercept = head.coef_, head.intercept_
    if len(head.classes_) == 2:  # scikit-learn keeps one row for two classes: class 1 against class 0
        coef, intercept = np.stack([-coef[0] / 2, coef[0] / 2]), np.array([-intercept[0] / 2, intercept[0] / 2])
    w[head.classes_] = coef / scaler.scale_
    b[head.classes_] = intercept - (coef / scaler.scale_) @ scaler.mean_
    model.get_layer("probabilities").set_weights([w.T, b])


def init_head(model, images, targets, seed=0, max_rows=HEAD_INIT_ROWS, batch_size=32):
    """Set the classifier of `model` (a network with a `head_dropout` before its `probabilities`)
    to the logistic regression (fit_head) of its frozen features of up to `max_rows` of `images`
    (raw pixels as the model takes them, a random sample) and their labels (`targets`: labels, or
    soft targets whose likeliest class counts). Returns {rows, C, seconds}, or None where the
    model has no such head (nothing is changed)."""
    import keras  # on first use: the CLI chooses the backend first

    if not {"head_dropout", "probabilities"} <= {layer.name for layer in model.layers}:
        return None
    started = time.perf_counter()
    targets = np.asarray(targets)
    labels = targets.argmax(axis=1) if targets.ndim == 2 else targets
    rows = np.sort(np.random.default_rng(seed).permutation(len(labels))[:max_rows])
    extractor = keras.Model(model.inputs, model.get_layer("head_dropout").input)
    if len(np.unique(labels[rows])) < 2:
        return None
    f = np.asarray(extractor.predict(images[rows], batch_size=batch_size, verbose=0), np.float32)
    num_classes = int(model.output_shape[-1])
    scaler, head, c, _ = fit_head(f, labels[rows], num_classes, seed)
    set_classifier(model, scaler, head, num_classes)
    classifier = model.get_layer("probabilities")
    kernel, bias = classifier.get_weights()
    unseen = np.setdiff1d(np.arange(num_classes), head.classes_)
    bias[unseen] = bias[head.classes_].min()  # a class the sample missed still learns (not the probe's -1e4)
    classifier.set_weights([kernel, bias])
    return {"rows": int(len(rows)), "C": c, "seconds": round(time.perf_counter() - started, 1)}
