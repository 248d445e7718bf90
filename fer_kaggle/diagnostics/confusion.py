"""Confusion matrices, per-class scores, the most-confused pairs, misclassified images."""

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from fer_kaggle.diagnostics.plots import figure, save, show_image


def confusion_counts(y_true, probs, n_classes):
    return confusion_matrix(y_true, probs.argmax(axis=1), labels=np.arange(n_classes))


def per_class_table(y_true, probs, class_names):
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, probs.argmax(axis=1), labels=np.arange(len(class_names)), zero_division=0)
    return [{"class": c, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for c, p, r, f, s in zip(class_names, precision, recall, f1, support)]


def most_confused_pairs(counts, class_names, top=5):
    """(true, predicted, count, share of the true class) for the largest off-diagonal cells."""
    off = counts.astype(float).copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(off, axis=None)[::-1][:top]
    rows = []
    for flat in order:
        t, p = np.unravel_index(flat, off.shape)
        if off[t, p] > 0:
            rows.append((class_names[t], class_names[p], int(off[t, p]), float(off[t, p] / max(1, counts[t].sum()))))
    return rows


NUMBERS_UP_TO = 15  # classes: above this the cells carry no numbers, and tick labels shrink (readable at 100)


def plot_confusion(counts, class_names, title, path):
    fig, axes = figure("wide", ncols=2)
    n = len(class_names)
    normalized = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    tick_size = 8 if n <= NUMBERS_UP_TO else max(3, int(8 * NUMBERS_UP_TO / n) + 2)
    step = 1 if n <= 50 else int(np.ceil(n / 50))  # at most 50 tick labels a side
    for ax, data, fmt, label in ((axes[0], counts, "d", "count"), (axes[1], normalized, ".2f", "share of true class")):
        im = ax.imshow(data, cmap="Blues")
        fig.colorbar(im, ax=ax, label=label, fraction=0.046)
        ticks = list(range(0, n, step))
        ax.set_xticks(ticks, [class_names[t] for t in ticks], rotation=45 if n <= NUMBERS_UP_TO else 90,
                      ha="right" if n <= NUMBERS_UP_TO else "center", fontsize=tick_size)
        ax.set_yticks(ticks, [class_names[t] for t in ticks], fontsize=tick_size)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if n > NUMBERS_UP_TO:
            continue
        for i in range(n):
            for j in range(n):
                value = format(data[i, j], fmt)
                ax.text(j, i, value, ha="center", va="center", fontsize=7 if n <= 10 else 5,
                        color="white" if data[i, j] > data.max() / 2 else "black")
    axes[0].set_title(f"{title}: counts")
    axes[1].set_title(f"{title}: row-normalized")
    fig.tight_layout()
    return save(fig, path)


def plot_misclassified(images, y_true, probs, class_names, path, n=24, seed=0):
    wrong = np.flatnonzero(probs.argmax(axis=1) != y_true)
    chosen = np.random.default_rng(seed).choice(wrong, size=min(n, len(wrong)), replace=False) if len(wrong) else []
    fig, axes = figure("grid", nrows=4, ncols=6)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, row in zip(axes.ravel(), sorted(chosen)):
        show_image(ax, images[row])
        pred = int(probs[row].argmax())
        ax.set_title(f"true {class_names[y_true[row]]}\npred {class_names[pred]} {probs[row, pred]:.2f}", fontsize=8)
    fig.suptitle("Misclassified held-out images (OOF)")
    fig.tight_layout()
    return save(fig, path)
