"""Confusion matrices, per-class scores, the most-confused pairs, misclassified images."""

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from fer_kaggle.diagnostics.plots import figure, save


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


def plot_confusion(counts, class_names, title, path):
    fig, axes = figure("wide", ncols=2)
    normalized = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    for ax, data, fmt, label in ((axes[0], counts, "d", "count"), (axes[1], normalized, ".2f", "share of true class")):
        im = ax.imshow(data, cmap="Blues")
        fig.colorbar(im, ax=ax, label=label, fraction=0.046)
        ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
        ax.set_yticks(range(len(class_names)), class_names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        for i in range(len(class_names)):
            for j in range(len(class_names)):
                value = format(data[i, j], fmt)
                ax.text(j, i, value, ha="center", va="center", fontsize=7,
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
        ax.imshow(images[row], cmap="gray", vmin=0, vmax=255)
        pred = int(probs[row].argmax())
        ax.set_title(f"true {class_names[y_true[row]]}\npred {class_names[pred]} {probs[row, pred]:.2f}", fontsize=8)
    fig.suptitle("Misclassified held-out images (OOF)")
    fig.tight_layout()
    return save(fig, path)
