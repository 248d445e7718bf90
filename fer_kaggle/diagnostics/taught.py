"""What pseudo-labeling and distillation were worth: the rows of their summaries in oof/
(`pseudo.json`, `distill.json`) and the label-fraction plot."""

from pathlib import Path

from fer_kaggle import atomic
from fer_kaggle.diagnostics.plots import figure, save


def summaries(oof_dir, name):
    return [atomic.read_json(p) for p in sorted(Path(oof_dir).glob(f"*/{name}"))]


def pseudo_rows(oof_dir):
    rows = []
    for s in summaries(oof_dir, "pseudo.json"):
        folds = list(s["folds"].values())
        admitted = sum(f["admitted_test"] + f["admitted_hidden"] for f in folds) / max(1, len(folds))
        fraction = "" if s["label_fraction"] is None else f"{s['label_fraction']:g}"
        rows.append([s["variant"], s["before"], fraction, f"{s['accuracy_before']:.4f}", f"{s['accuracy']:.4f}",
                     f"{s['accuracy'] - s['accuracy_before']:+.4f}", f"{s['log_loss_before']:.4f}",
                     f"{s['log_loss']:.4f}", f"{s['teacher_accuracy']:.4f}", f"{admitted:.0f}"])
    return rows


def distill_rows(oof_dir):
    rows = []
    for s in summaries(oof_dir, "distill.json"):
        speed = s["images_per_second"]
        labels_only = "" if s["labels_only_accuracy"] is None else f"{s['labels_only_accuracy']:.4f}"
        rows.append([s["variant"], f"{s['teacher_accuracy']:.4f}", f"{s['accuracy']:.4f}", labels_only,
                     f"{speed['teacher']:,.0f}", f"{speed['student']:,.0f}", f"{speed['speedup']:.1f}x"])
    return rows


def plot_label_fractions(oof_dir, path):
    """OOF accuracy against the fraction of labels kept: supervised only, and pseudo-labeled."""
    points = sorted((s["label_fraction"], s["accuracy_before"], s["accuracy"], s["before"])
                    for s in summaries(oof_dir, "pseudo.json") if s["label_fraction"] is not None)
    if not points:
        return None
    fig, ax = figure("wide")
    fractions = [p[0] for p in points]
    ax.plot(fractions, [p[1] for p in points], "o-", label="labeled rows only")
    ax.plot(fractions, [p[2] for p in points], "s-", label="+ pseudo-labeled pool (hidden rows and test images)")
    ax.set_xlabel("fraction of each fold's training labels kept")
    ax.set_ylabel("OOF accuracy (all rows, same folds)")
    ax.set_title("Semi-supervised: " + ", ".join(sorted({p[3].split("-lf")[0] for p in points})))
    ax.legend()
    ax.grid(alpha=0.3)
    return save(fig, path)
