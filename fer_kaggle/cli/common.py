"""What the commands share: one command's description (its arguments, example and handler
together), and the helpers several handlers use."""

import os
import resource
import sys
from dataclasses import dataclass
from typing import Callable


@dataclass
class Command:
    name: str
    help: str
    example: str
    arguments: Callable  # arguments(parser): adds the command's options
    run: Callable  # run(args): the handler
    locks: tuple = ()  # the folders it writes (attributes of args: "oof_dir", ...), one such run at a time on each


def names(text):
    return [n.strip() for n in text.split(",") if n.strip()] if text else None


def load_folds(oof_dir, comp):
    from fer_kaggle.atomic import read_json
    from fer_kaggle.data import load_folds as load

    folds = load(oof_dir, comp.identity, len(comp.y_train))
    return read_json(os.path.join(oof_dir, "folds.json")), folds


def use_preset(preset, comp):
    """The preset to run (demo on the demo data, else auto: chosen from the data and the machine,
    BENCHMARKS.md); its backend unless KERAS_BACKEND is set."""
    from fer_kaggle import presets

    preset = preset or ("demo" if comp.is_demo else "auto")
    if "backend" in presets.PRESETS.get(preset, {}) and "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", presets.PRESETS[preset]["backend"])
    return preset


def add_run_options(p, variants_help):
    p.add_argument("--preset", help="smoke, demo, cpu, auto or gpu: settings, time limit, jobs, backend (default: demo on "
                                    "the demo data, else auto)")
    if variants_help:
        p.add_argument("--variants", help=variants_help)
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a training setting or a model hyperparameter (repeatable)")
    p.add_argument("--tag", help="suffix for the variants' folder names, to keep runs with other settings apart")
    p.add_argument("--time-limit", type=float, help="seconds for each training run, set-up included (default: the preset's)")
    p.add_argument("--jobs", type=int, help="parallel fold jobs (default: the preset's)")
    p.add_argument("--threads", type=int, help="threads per fold job (default: cores / jobs)")
    p.add_argument("--piece-seconds", type=float,
                   help="stop, checkpointed, when no further epoch fits in this many seconds; exit status 75 "
                        "then means: run the same command again to resume (the time limit counts every piece); "
                        "0 = one piece (default: the preset's, 550 for gpu)")


def trainer(args, comp, folds, folds_meta, preset):
    """A function that trains variants K-fold with the run's options (time limit, jobs) and
    prints their leaderboard: what cv does, and what pseudo and distill do with new variants."""
    from fer_kaggle import presets
    from fer_kaggle.cv import run_cv

    time_limit = args.time_limit if args.time_limit is not None else presets.PRESETS[preset]["time_limit"]
    choosing = getattr(args, "spent_choosing", 0.0)  # the ladder's seconds (auto), spent before the training
    jobs = args.jobs or presets.PRESETS[preset]["jobs"]
    piece = args.piece_seconds if args.piece_seconds is not None else presets.PRESETS[preset].get("piece_seconds")

    def train(variants):
        limit = f", time limit {time_limit:.0f}s" if time_limit else ""
        if time_limit and choosing:
            limit += f" ({choosing:.0f}s of it spent timing the ladder)"
        spec = comp.spec
        only = [int(k) for k in args.folds.split(",")] if getattr(args, "folds", None) else None
        final = bool(only) and getattr(args, "final_model", False)
        scheme = f"{folds.max() + 1} folds" if only is None else \
            f"fold {','.join(map(str, only))} of {folds.max() + 1} only (a holdout" + \
            (", then a final model over every row: its test predictions submitted)" if final else ")")
        print(f"{args.command}: preset {preset}, {len(variants)} variants x {scheme} on "
              f"{len(comp.y_train)} images {spec.height}x{spec.width}x{spec.channels}, {spec.num_classes} classes, "
              f"metric {spec.metric} ({'demo' if comp.is_demo else comp.source}){limit}, {jobs} job(s)", flush=True)
        rows = run_cv(comp, folds, folds_meta, variants, args.oof_dir,
                      time_limit=max(1.0, time_limit - choosing) if time_limit else None, jobs=jobs,
                      scheduler=getattr(args, "scheduler", None), threads=args.threads, preset=preset,
                      piece_seconds=piece or None, only_folds=only, final_models=final)
        if only:
            _print_folds(args.oof_dir, variants, only)
        print_leaderboard(rows, only={v.name for v in variants})
        peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
        print(f"{args.command}: peak resident memory of one process {peak / 2**20:.2f} GiB")
        return rows

    return train


def _print_folds(oof_dir, variants, folds):
    from pathlib import Path

    from fer_kaggle import layout

    for v in variants:
        for k in folds:
            if layout.fold_is_done(Path(oof_dir) / v.name, k):
                d = layout.read_fold_done(Path(oof_dir) / v.name, k)
                print(f"{v.name} fold {k}: {d.get('metric', 'accuracy')} {d.get('score', d['accuracy']):.4f}, "
                      f"accuracy {d['accuracy']:.4f}, log loss {d['log_loss']:.4f}, {d['epochs']} epochs, "
                      f"{d['fit_seconds']:.0f}s fit, {d['predict_seconds']:.0f}s predict")
        if layout.fold_is_done(Path(oof_dir) / v.name, layout.FINAL):
            d = layout.read_fold_done(Path(oof_dir) / v.name, layout.FINAL)
            print(f"{v.name} final model: {d['rows']} rows (every one), {d['epochs']} epochs, {d['fit_seconds']:.0f}s "
                  f"fit, {d['predict_seconds']:.0f}s predict: the submission's test predictions (its score: the "
                  f"holdout's above)")


def print_leaderboard(rows, only=None):
    metric = rows[0]["metric"] if rows else "accuracy"
    print(f"{'name':24s} {'kind':8s} {metric[:9]:>9s} {'accuracy':>8s} {'log_loss':>8s} {'fold_sd':>7s} {'params':>11s} "
          f"{'MFLOPs':>8s} {'fit_s':>8s} {'pred_s':>7s} selected")
    for r in rows:
        mark = "*" if only and r["name"] in only else " "
        flops = f"{r['flops'] / 1e6:8.1f}" if r["flops"] != "" else f"{'':8s}"
        params = f"{r['params']:11,d}" if r["params"] != "" else f"{'':11s}"
        score = f"{float(r['score']):9.4f}" if r["metric"] == metric else f"{'':9s}"
        print(f"{mark}{r['name']:23s} {r['kind']:8s} {score} {r['accuracy']:8.4f} {r['log_loss']:8.4f} "
              f"{float(r['fold_accuracy_std'] or 0):7.4f} {params} {flops} {float(r['fit_seconds'] or 0):8.0f} "
              f"{float(r['predict_seconds'] or 0):7.0f} {r.get('selected', '')}")


def bincount(labels, n):
    import numpy as np

    return np.bincount(labels, minlength=n).tolist()


def print_ladder(rows, chosen, k):
    for r in rows:
        mark = "*" if r["network"] == chosen["network"] else " "
        noise = f" ±{r['step_spread'] * 50:3.0f}%" if "step_spread" in r else ""
        again = " (timed again)" if r.get("timings", 1) > 1 else ""
        doubt = " (still inconsistent with its FLOPs)" if r.get("consistent") is False else ""
        print(f" {mark}{r['network']:15s} {r['params'] / 1e6:5.2f}M params {r['flops'] / 1e6:7.1f} MFLOPs  step "
              f"{r['step_seconds'] * 1e3:7.1f} ms{noise} ({r['images_per_second']:6.0f} images/s)  epoch "
              f"{r['epoch_seconds']:7.1f} s  predict {r['predict_seconds']:6.1f} s"
              f"  epochs: {k} folds {r['fold_epochs']:6.1f}  holdout {r['holdout_epochs']:6.1f}{again}{doubt}")
    print(f"  chose {describe_choice(chosen, k)}: {chosen['why']}")
    for close in chosen.get("close_calls", []):
        print(f"  a close call: {close}")


def describe_choice(chosen, k):
    scheme = "one holdout model (fold 0)" if chosen["scheme"] == "holdout" else f"{k} fold models"
    if chosen.get("final_model"):
        scheme += " and a final model over every row"
    beside = f", with {', '.join(chosen['with'])}" if chosen.get("with") else ""
    return f"{chosen['network']} as {scheme}{beside}"
