"""A preset's choice of network and fold scheme, made on the spot from measurements: each
network of the preset's ladder has its training step timed on this machine on the
competition's images, which gives the epochs the time limit affords it as K fold models or
as one holdout model (`cv --folds 0`: fold 0's model alone, trained on the same rows as a
fold job, K times as long); prediction with the preset's TTA is counted. The rule: the
widest network (most FLOPs) that affords at least MIN_EPOCHS epochs, as K fold models where
it affords them so (an ensemble, and every row scored), else as one holdout model, followed by
a final model over every row (fer_kaggle.refit: the same epochs, the submission's test
predictions) only where that costs the holdout model none of its epochs: where the time shared
by the two still affords each the most epochs the settings allow (`epochs`). Before the
ladder, a pretrained network timed the same way at its own side and batch: where fine-tuning
it affords PRETRAINED_MIN_EPOCHS epochs of each of K fold models, it is chosen, with the linear
probes trained beside it (their features' seconds kept out of its limit). Where the scratch rule
chooses one holdout model (tens of thousands of images), the pretrained network at smaller sides
is timed too, largest first: the first that affords PRETRAINED_HOLDOUT_EPOCHS as one holdout
model is fine-tuned instead, where a quick probe of its frozen features on rows outside the
holdout says ImageNet's features suit the images (kappa at least GATE_KAPPA).

The choice is kept in `oof/choice.json` with what it was made for (the competition, its
folds, the preset, the time limit, the ladder): a run resumed on this machine or another
trains what was chosen, and a changed competition or limit chooses again."""

import json
import time
from pathlib import Path

import numpy as np

from fer_kaggle import atomic

CHOICE = "choice.json"
# Wider networks at 3-12 epochs lost to or tied with vgg_fast16 at 15-19 (FER2013 and CIFAR-10
# fold 0); pool_first64, planned at 15.6 epochs with its TTA counted (16 trained), beat it by 4.5
# points on CIFAR-10 (BENCHMARKS.md).
MIN_EPOCHS = 15
# A pretrained network fine-tuned as K fold models where it affords this many epochs of each: ImageNet's
# weights start it near its end (clothing, fold 0: 0.785 held out after its first epoch, BENCHMARKS.md).
PRETRAINED_MIN_EPOCHS = 5
# Where the scratch ladder's choice is one holdout model (tens of thousands of images), a pretrained network
# at a smaller side (fer_kaggle.presets.SMALL_SIDES, largest first) that affords PRETRAINED_HOLDOUT_EPOCHS
# epochs as one holdout model is fine-tuned instead, where a quick linear probe of its frozen features
# (fer_kaggle.probe.quick_probe, on training rows outside the holdout) scores a kappa of at least
# GATE_KAPPA: ImageNet's features suit the images. The quick probes (5,000 rows outside fold 0, at 96 and
# 160 pixels): CIFAR-10 0.71 and 0.73, clothing 0.73 and 0.75, FER2013's faces 0.32 and 0.33. A few epochs
# at a larger side beat many at a smaller one: CIFAR-10, 3 epochs at AdamW 5e-4, 0.9194 held out at 128
# pixels against 0.9047 at 96, where 11 epochs at 96 (the rate then 2e-3) had reached 0.9083 (BENCHMARKS.md).
PRETRAINED_HOLDOUT_EPOCHS = 5
GATE_KAPPA = 0.5
# Timing that holds under a real machine's noise: SAMPLES timed calls a network (after its warm-up),
# their median; a network whose samples spread (interquartile range) over SPREAD of their median,
# or whose time disagrees with its FLOPs beside its neighbours (more work in less time, or time
# growing more than FLOPS_SLACK times faster than the work), is timed again, up to RETIMES times;
# the timing of lowest median counts (a busy machine only ever slows a step), every one is kept.
SAMPLES, SPREAD, FLOPS_SLACK, RETIMES = 5, 0.15, 1.25, 2
CLOSE = 0.10  # a choice whose deciding epochs are within 10% of the threshold is called close
# A holdout's final model over every row only where it costs the holdout none of its epochs: trading
# epochs for the final model's extra rows lost at equal time on FER2013 (a stand-in test of 5,742
# rows, vgg_fast16: 15 epochs 0.6386 against 7 + a final 7's 0.6210; 36 against 16 + 16: 0.6621 against
# 0.6482; BENCHMARKS.md, "A holdout's submission: its own model or a final model over every row?").


def measure_ladder(spec, n_train, n_test, n_folds, train_cfg, time_limit, names, pretrained=(), probes=(),
                   smaller=(), quick_probe=None):
    """One row per network: parameters, FLOPs an image, measured seconds of a step and of an
    epoch of a fold job's rows (validation's share included), seconds of one model's TTA
    prediction of its held-out rows and the test set, and the epochs `time_limit` affords K
    fold models and one holdout model. `pretrained`: variants (fer_kaggle.variant.Variant) to
    fine-tune, timed with their own training settings and image size, the time of `probes`
    (linear-probe variants trained beside them: one forward pass of every image and view)
    kept out of their limit. `smaller`: pretrained variants at smaller sides, largest first,
    timed only where neither a pretrained network's fold models nor a scratch network's fold
    models afford their epochs, until one affords PRETRAINED_HOLDOUT_EPOCHS as a holdout model;
    `quick_probe(variant)` (fer_kaggle.probe.quick_probe on rows outside the holdout) then
    measures how well its frozen features separate the classes."""
    from fer_kaggle.variant import Variant
    from fer_kaggle.probe import views

    scratch = [Variant(name, name, {}, train_cfg) for name in names]
    probe_seconds = 0.0
    for probe in probes:
        step = float(np.median(_timed_step(probe, spec, samples=3)[1]))
        probe_seconds += (n_train + n_test) * views(probe.train, spec) * step / probe.train["batch_size"] / 3
    rows = [_row(v, spec, n_train, n_test, n_folds, time_limit) for v in scratch]
    for _ in range(RETIMES):  # the suspects, timed again: their samples pooled
        suspects = inconsistent(rows)
        if not suspects:
            break
        rows = [_row(v, spec, n_train, n_test, n_folds, time_limit, r["step_samples"]) if r["network"] in suspects
                else r for v, r in zip(scratch, rows)]
    for r in rows:
        r["consistent"] = r["network"] not in inconsistent(rows)
    for variant in pretrained:
        row = _row(variant, spec, n_train, n_test, n_folds, max(0.0, time_limit - probe_seconds))
        rows.append({**row, "pretrained": True, "probes": [p.name for p in probes],
                     "probe_seconds": probe_seconds})
    if choose(rows, n_folds)["scheme"] == "folds":
        return rows  # fold models win over a holdout: the smaller sides train only as one holdout model
    for variant in smaller:
        row = {**_row(variant, spec, n_train, n_test, n_folds, time_limit), "pretrained": True, "smaller": True}
        rows.append(row)
        if row["holdout_epochs"] >= PRETRAINED_HOLDOUT_EPOCHS:
            if quick_probe is not None:
                row["quick_probe"] = quick_probe(variant)
            break
    return rows


def _timed_step(variant, spec, samples=SAMPLES):
    """(a model of the variant, `samples` timings of its training step)."""
    from fer_kaggle.training import measure_step_samples

    build = lambda: variant.build(spec)  # noqa: E731
    return build(), measure_step_samples(build, variant.train, samples=samples)


def inconsistent(rows):
    """Names of the networks whose timing is not to be trusted yet: samples spread over SPREAD of
    their median, or a step time that disagrees with the FLOPs beside a neighbour's (sorted by
    FLOPs: more work timed faster by over 10%, or time growing FLOPS_SLACK times faster than work)."""
    suspects = {r["network"] for r in rows if r["step_spread"] > SPREAD}
    ordered = sorted(rows, key=lambda r: r["flops"])
    for a, b in zip(ordered, ordered[1:]):
        time_ratio, work_ratio = b["step_seconds"] / a["step_seconds"], b["flops"] / max(a["flops"], 1)
        if time_ratio < 0.9 or time_ratio > FLOPS_SLACK * work_ratio:
            suspects |= {a["network"], b["network"]}
    return suspects


def _row(variant, spec, n_train, n_test, n_folds, time_limit, earlier=()):
    from fer_kaggle.models import count_flops
    from fer_kaggle.training import TTA_VIEWS
    from fer_kaggle.training.plan import VALIDATION_SHARE

    cfg = variant.train
    bs = cfg["batch_size"]
    steps = max(1, n_train * (n_folds - 1) // n_folds // bs)
    predicted = (n_train // n_folds + n_test) * TTA_VIEWS[cfg["tta"]]
    model, samples = _timed_step(variant, spec)
    timings = [list(t) for t in earlier] + [list(samples)]
    best = min(timings, key=np.median)
    step = float(np.median(best))
    q25, q75 = np.percentile(best, [25, 75])
    epoch, predict = step * steps * (1 + VALIDATION_SHARE), predicted * step / bs / 3  # a forward pass ~ 1/3 step
    return {"network": variant.name, "params": int(model.count_params()), "flops": count_flops(model),
            "step_seconds": step, "step_samples": timings, "step_spread": float(q75 - q25) / step,
            "timings": len(timings), "images_per_second": bs / step, "epoch_seconds": epoch,
            "predict_seconds": predict,
            "fold_epochs": max(0.0, time_limit - n_folds * predict) / (n_folds * epoch),
            "holdout_epochs": max(0.0, time_limit - predict) / epoch,
            # a holdout model and a final model over every row, the same epochs each (its test prediction <= predict)
            "final_epochs": max(0.0, time_limit - 2 * predict) / (epoch * (1 + n_folds / max(1, n_folds - 1))),
            "max_epochs": cfg["epochs"]}


def choose(rows, n_folds, min_epochs=MIN_EPOCHS):
    """{network, scheme ('folds' or 'holdout'), epochs, why, with (variants trained beside
    it)} by the rules above: a pretrained network that affords PRETRAINED_MIN_EPOCHS as K fold
    models first, with its linear probes; else the scratch ladder's rule (the fastest network
    as K fold models where none affords `min_epochs`), whose holdout model a smaller side's
    pretrained network replaces where it affords its epochs and its quick probe suits."""
    for r in sorted([r for r in rows if r.get("pretrained") and not r.get("smaller")], key=lambda r: -r["flops"]):
        if r["fold_epochs"] >= PRETRAINED_MIN_EPOCHS:
            return {"network": r["network"], "scheme": "folds", "epochs": r["fold_epochs"], "with": r["probes"],
                    "why": f"a pretrained network that affords {PRETRAINED_MIN_EPOCHS} epochs of fine-tuning as "
                           f"{n_folds} fold models ({r['fold_epochs']:.1f}), beside its linear probe "
                           f"({r['probe_seconds']:.0f}s of features)"}
    scratch = _scratch_choice([r for r in rows if not r.get("pretrained")], n_folds, min_epochs)
    if scratch["scheme"] != "holdout":
        return scratch
    r = next((r for r in rows if r.get("smaller") and r["holdout_epochs"] >= PRETRAINED_HOLDOUT_EPOCHS), None)
    probe = r and r.get("quick_probe")
    if not probe:  # no smaller side affords its epochs, or no evidence that its features suit
        return scratch
    seen = (f"{r['network']} (pretrained) affords {r['holdout_epochs']:.1f} epochs as one holdout model; its "
            f"frozen features' quick probe on {probe['rows']} training rows scored kappa "
            f"{probe['kappa']:.2f} (accuracy {probe['accuracy']:.3f})")
    if probe["kappa"] < GATE_KAPPA:
        return {**scratch, "why": f"{scratch['why']}; {seen}, under the {GATE_KAPPA} that says ImageNet's "
                                  f"features suit these images"}
    return {"network": r["network"], "scheme": "holdout", **_final_model(r),
            "why": f"no network affords {min_epochs} epochs as {n_folds} fold models; {seen}, over the "
                   f"{GATE_KAPPA} that says ImageNet's features suit these images, so fine-tuned rather than "
                   f"{scratch['network']} from scratch; " + _final_why(r)}


def _scratch_choice(rows, n_folds, min_epochs):
    for r in sorted(rows, key=lambda r: -r["flops"]):
        if r["fold_epochs"] >= min_epochs:
            return {"network": r["network"], "scheme": "folds", "epochs": r["fold_epochs"],
                    "why": f"the widest network that affords {min_epochs} epochs as {n_folds} fold models "
                           f"({r['fold_epochs']:.1f})"}
        if r["holdout_epochs"] >= min_epochs:
            return {"network": r["network"], "scheme": "holdout", **_final_model(r),
                    "why": f"the widest network that affords {min_epochs} epochs: {r['holdout_epochs']:.1f} as one "
                           f"holdout model, {r['fold_epochs']:.1f} as {n_folds} fold models; " + _final_why(r)}
    fastest = min(rows, key=lambda r: r["epoch_seconds"])
    return {"network": fastest["network"], "scheme": "folds", "epochs": fastest["fold_epochs"],
            "why": f"no network affords {min_epochs} epochs: the fastest, as {n_folds} fold models "
                   f"({fastest['fold_epochs']:.1f} epochs)"}


def _final_free(row):
    """Whether the time affords a holdout model and a final model over every row each the most
    epochs the settings allow (the holdout then trains no fewer epochs for the final model)."""
    return row.get("final_epochs", 0.0) >= row.get("max_epochs", float("inf"))


def _final_model(row):
    """A holdout's epochs, and whether a final model over every row follows it."""
    if _final_free(row):
        return {"epochs": row["max_epochs"], "final_model": True}
    return {"epochs": row["holdout_epochs"], "final_model": False}


def _final_why(row):
    final, most = row.get("final_epochs", 0.0), row.get("max_epochs", "its")
    if _final_free(row):
        return (f"then a final model over every row, its test predictions submitted (the time affords both models "
                f"{final:.1f} epochs, over the {most} they train)")
    return (f"its own test predictions submitted (a final model over every row would cut both to {final:.1f} epochs, "
            f"under the {most} the holdout may train: fewer epochs cost more than the extra rows give)")


def close_calls(rows, n_folds, min_epochs=MIN_EPOCHS):
    """What could have gone the other way: each scratch network and scheme whose epochs are within
    CLOSE of the threshold (a few percent of timing noise would move it across)."""
    out = []
    for r in sorted((r for r in rows if not r.get("pretrained")), key=lambda r: -r["flops"]):
        for scheme, epochs in ((f"{n_folds} fold models", r["fold_epochs"]), ("one holdout model", r["holdout_epochs"])):
            if abs(epochs - min_epochs) <= CLOSE * min_epochs:
                out.append(f"{r['network']} affords {epochs:.1f} epochs as {scheme} (threshold {min_epochs})")
        final, holdout = r.get("final_epochs", 0.0), r["fold_epochs"] < min_epochs <= r["holdout_epochs"]
        most = r.get("max_epochs", float("inf"))
        if holdout and abs(final - most) <= CLOSE * most:
            out.append(f"{r['network']} affords {final:.1f} epochs as a holdout model and a final model over every "
                       f"row (threshold: the {most} it may train)")
    for r in (r for r in rows if r.get("smaller")):
        if abs(r["holdout_epochs"] - PRETRAINED_HOLDOUT_EPOCHS) <= CLOSE * PRETRAINED_HOLDOUT_EPOCHS:
            out.append(f"{r['network']} affords {r['holdout_epochs']:.1f} epochs as one holdout model "
                       f"(threshold {PRETRAINED_HOLDOUT_EPOCHS})")
        if "quick_probe" in r and abs(r["quick_probe"]["kappa"] - GATE_KAPPA) <= CLOSE:
            out.append(f"{r['network']}'s quick probe scored kappa {r['quick_probe']['kappa']:.2f} "
                       f"(threshold {GATE_KAPPA})")
    for r in (r for r in rows if r.get("pretrained") and not r.get("smaller")):
        if abs(r["fold_epochs"] - PRETRAINED_MIN_EPOCHS) <= CLOSE * PRETRAINED_MIN_EPOCHS:
            out.append(f"{r['network']} affords {r['fold_epochs']:.1f} epochs as {n_folds} fold models "
                       f"(threshold {PRETRAINED_MIN_EPOCHS})")
    return out


def chosen(oof_dir, made_for, measure, n_folds, log=print):
    """The choice kept in `oof_dir/choice.json` for `made_for` (a dict naming what it is for),
    else a new one from `measure()` (the ladder's rows), written there with the seconds the
    ladder took (`ladder_seconds`: the run's time limit counts them). Returns (choice, rows or
    None when it was kept)."""
    path, made_for = Path(oof_dir) / CHOICE, json.loads(json.dumps(made_for))  # as it reads back
    if path.exists():
        kept = atomic.read_json(path)
        if kept.get("made_for") == made_for:
            return kept["choice"], None
        log(f"{path}: made for another competition, folds, preset, limit or ladder: choosing again")
    started = time.perf_counter()
    rows = measure()
    choice = {**choose(rows, n_folds), "ladder_seconds": round(time.perf_counter() - started, 1)}
    close = close_calls(rows, n_folds)
    if close:
        choice = {**choice, "close_calls": close}
    atomic.write_json(path, {"made_for": made_for, "choice": choice, "ladder": rows})
    return choice, rows


def ladder_choice(preset, comp, folds, folds_meta, oof_dir, settings=None, time_limit=None, threads=None,
                  log=print):
    """What a preset with a ladder (`auto`) trains on this competition and machine, for a library
    caller as for `fer-kaggle cv`: (the variant names, in training order: any probes, then the
    network; whether the scheme is one holdout model (fold 0); the choice; the ladder's measured
    rows, or None where the choice kept in `oof_dir` was reused)."""
    from fer_kaggle import presets
    from fer_kaggle.data.folds import FOLD_KEYS
    from fer_kaggle.training import configure_backend

    spec, k = presets.PRESETS[preset], int(folds.max()) + 1
    limit = time_limit if time_limit is not None else spec["time_limit"]
    train = presets.resolve(preset, None, settings, spec=comp.spec)[0].train
    pretrained, probes, smaller = presets.pretrained_rungs(preset, settings, comp.spec)
    made_for = {"preset": preset, "folds": {key: folds_meta[key] for key in FOLD_KEYS}, "time_limit": limit,
                "ladder": list(spec["ladder"]), "train": train,
                "pretrained": {v.name: v.train for v in pretrained + probes + smaller}}

    def quick_probe(variant):  # on rows outside fold 0, the holdout: its score never sees its own labels
        from fer_kaggle import probe

        return probe.quick_probe(variant, comp.spec, comp.x_train, comp.y_train, np.flatnonzero(folds != 0))

    def measure():
        configure_backend(threads)
        log(f"cv: preset {preset} times its ladder on this machine ({len(spec['ladder']) + len(pretrained)} networks, "
            f"and the pretrained one at smaller sides where one holdout model is chosen)")
        return measure_ladder(comp.spec, len(comp.y_train), len(comp.test_ids), k, train, limit or 3450,
                              spec["ladder"], pretrained, probes, smaller, quick_probe)

    picked, rows = chosen(oof_dir, made_for, measure, k)
    return list(picked.get("with", [])) + [picked["network"]], picked["scheme"] == "holdout", picked, rows
