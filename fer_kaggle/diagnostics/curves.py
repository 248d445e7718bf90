"""Training curves of every fold of a variant: train against validation, per epoch."""

import csv
from pathlib import Path

from fer_kaggle.diagnostics.plots import figure, save


def read_history(path):
    """Rows of history.csv as floats; an epoch that was not validated has None there."""
    with open(path) as f:
        return [{k: (float(v) if v not in ("", None) else None) for k, v in row.items()} for row in csv.DictReader(f)]


def _validated(history, key):
    points = [(r["epoch"], r[key]) for r in history if r.get(key) is not None]
    return [e for e, _ in points], [v for _, v in points]


def fold_histories(variant_dir):
    return [read_history(p) for p in sorted(Path(variant_dir).glob("fold*/history.csv"))]


def plot_strengths(histories, path, title="The linear probe's strength"):
    """A linear probe's folds (history.csv: C, inner_cv_accuracy, one row per strength tried):
    its inner CV's accuracy against the strength C, one line per fold. A probe trains no epochs:
    this is what its fit chose among."""
    fig, ax = figure("wide")
    for k, h in enumerate(histories):
        tried = [(r["C"], r["inner_cv_accuracy"]) for r in h if r.get("inner_cv_accuracy") is not None]
        if tried:
            ax.plot(*zip(*tried), ".-", label=f"fold {k + 1}")
    ax.set_xscale("log")
    ax.set_xlabel("C (inverse strength of the L2 penalty)")
    ax.set_ylabel("inner-CV accuracy on the fold's training rows")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)


def plot_curves(histories_by_name, path, title="Training curves"):
    """histories_by_name: {label: [fold history, ...]}; loss and accuracy, train dashed."""
    fig, (ax_loss, ax_acc) = figure("wide", ncols=2)
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    for c, (name, histories) in enumerate(histories_by_name.items()):
        color = colors[c % len(colors)]
        for k, h in enumerate(histories):
            epochs = [r["epoch"] for r in h]
            label = name if k == 0 else None
            ax_loss.plot(epochs, [r["loss"] for r in h], "--", color=color, alpha=0.6)
            ax_loss.plot(*_validated(h, "val_loss"), ".-", color=color, label=label)
            ax_acc.plot(epochs, [r["accuracy"] for r in h], "--", color=color, alpha=0.6)
            ax_acc.plot(*_validated(h, "val_accuracy"), ".-", color=color, label=label)
    for ax, what in ((ax_loss, "loss"), (ax_acc, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(what)
        ax.set_title(f"{what}: validation (solid), train (dashed), one line per fold")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)
