"""`oof/leaderboard.csv`: every finished variant and blend, best first by the competition's metric."""

import csv
import io
from pathlib import Path

from fer_kaggle import atomic, layout, metrics


LEADERBOARD_COLUMNS = ("name", "kind", "metric", "score", "accuracy", "log_loss", "fold_accuracy_std", "params",
                       "flops", "fit_seconds", "predict_seconds", "selected")


def leaderboard_rows(oof_dir, metric=None):
    """Every variant and blend, best first by the competition's metric (`metric`; None: the one
    their metrics.json name), ties broken by log loss."""
    rows = []
    for name in layout.finished(oof_dir):
        m = atomic.read_json(Path(oof_dir) / name / layout.METRICS)
        if "accuracy" not in m:
            continue
        row = {"name": m.get("variant", name), "kind": m.get("kind", "variant"),
               **{c: m.get(c, "") for c in LEADERBOARD_COLUMNS[2:]},
               "selected": "yes" if m.get("selected") else ""}  # OOF chosen with the held-out labels
        if row["metric"] in ("", None):
            row["metric"], row["score"] = "accuracy", m["accuracy"]
        rows.append(row)
    metric = metric or (rows[0]["metric"] if rows else "accuracy")
    rows = [r for r in rows if r["metric"] == metric] + [r for r in rows if r["metric"] != metric]
    key = metrics.get_metric(metric).sort_key
    rows.sort(key=lambda r: (r["metric"] != metric, key(r["score"]), float(r["log_loss"])))
    return rows


def write_leaderboard(oof_dir, metric=None):
    rows = leaderboard_rows(oof_dir, metric)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=LEADERBOARD_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()})
    atomic.write_text(Path(oof_dir) / "leaderboard.csv", out.getvalue())
    return rows
