"""`models`, `report`, `predict` and `bench`: looking at what was trained, and using it."""

import sys
from pathlib import Path

from fer_kaggle.progress import Stopwatch
from fer_kaggle.cli.common import Command, load_folds, names


def run_models(args):
    from fer_kaggle.models import builder_of, count_flops, create_model, list_models

    spec = _spec_in_use(args.data_dir)
    shape, classes = (spec.input_shape, spec.num_classes) if spec else ((48, 48, 1), 7)
    print(f"models for {shape[0]}x{shape[1]}x{shape[2]} images and {classes} classes"
          + ("" if spec else " (FER2013's; no competition chosen yet)") + ":")
    print(f"{'variant':14s} {'params':>11s} {'MFLOPs/image':>13s}  description")
    for name in list_models():
        model = create_model(name, shape, classes)
        doc = (builder_of(name).__doc__ or "").strip().splitlines()[0]
        print(f"{name:14s} {model.count_params():11,d} {count_flops(model) / 1e6:13.1f}  {doc}")


def _spec_in_use(data_dir):
    from fer_kaggle.data.store import spec_in_use

    return spec_in_use(data_dir)


def run_report(args):
    from fer_kaggle.data import store
    from fer_kaggle.diagnostics.report import Report

    comp = store.load(args.data_dir)
    _, folds = load_folds(args.oof_dir, comp)
    target = args.variant or (f"blend-{args.blend}" if args.blend and not args.blend.startswith("blend-") else args.blend)
    target = target or _submitted_blend(args.submissions_dir, args.oof_dir)
    watch = Stopwatch()
    report = Report(comp, folds, args.oof_dir, args.out, target=target, progress=lambda m: print(watch.line(m), flush=True),
                    per_class=args.per_class, lime_samples=args.lime_samples, ascent_steps=args.ascent_steps)
    sections = report.make(names(args.only))
    for name, title, figures, _ in sections:
        for png, _ in figures:
            print(f"report: {name}: {png}")
    print(f"report: {args.out}/index.html ({report.target})")


def _submitted_blend(submissions_dir, oof_dir):
    """The blend behind the newest submission, where its predictions are still in `oof_dir`:
    what `make all` submitted is what its report shows (None: the leaderboard's best)."""
    from fer_kaggle import layout

    latest = layout.latest_submission(submissions_dir)
    if latest:
        name = f"{layout.BLEND_PREFIX}{latest[1]['method']}"
        if layout.is_finished(Path(oof_dir) / name):
            return name
    return None


def report_arguments(p):
    group = p.add_mutually_exclusive_group()
    group.add_argument("--variant", help="the variant to study (default: the newest submission's blend, else the best "
                                         "on the leaderboard)")
    group.add_argument("--blend", help="a blend method from `fer-kaggle blend` (its model figures use its heaviest member)")
    p.add_argument("--only", help="comma-separated figures: confusion, misclassified, curves, compare, ablations, taught, "
                                  "saliency, filters, lime (index.html shows those made)")
    p.add_argument("--out", default="reports", help="output folder (default: reports)")
    p.add_argument("--per-class", type=int, default=2, help="LIME images per class (default 2)")
    p.add_argument("--lime-samples", type=int, default=300, help="LIME perturbed samples per image (default 300)")
    p.add_argument("--ascent-steps", type=int, default=60, help="gradient ascent steps for filters (default 60)")


def run_predict(args):
    from fer_kaggle.data import store
    from fer_kaggle.data.images import read_images
    from fer_kaggle.predict import load_predictor, predictions_csv, spec_for, write_predictions

    comp = folds = folds_meta = None
    if not args.model.endswith(".keras"):
        comp = store.load(args.data_dir)
        folds_meta, folds = load_folds(args.oof_dir, comp)
    spec = spec_for(args.model, comp)
    image_names, images, kind = read_images(args.input, spec.height, spec.width, spec.channels)
    predictor, what, decision = load_predictor(args.model, args.oof_dir, comp, folds, folds_meta, tta=args.tta)
    watch = Stopwatch()
    probs = predictor(images)
    if args.out:
        write_predictions(args.out, image_names, probs, kind, spec, decision)
        print(watch.line(f"predict: {len(image_names)} images with {what}: wrote {args.out}"))
    else:
        sys.stdout.write(predictions_csv(image_names, probs, kind, spec, decision))


def predict_arguments(p):
    p.add_argument("input", help="a pixel CSV (id,feature / label,feature / emotion,pixels,Usage / pixel columns), a "
                                 "folder of images or an image file, of any size and mode")
    p.add_argument("--model", required=True, help="a .keras model (e.g. a distilled student), a variant or a blend")
    p.add_argument("--out", help="write the predictions here (default: print them)")
    p.add_argument("--tta", default="none", choices=("none", "flip", "crops", "flip+crops", "flips", "turns", "dihedral"),
                   help="test-time augmentation of a .keras model (variants and blends use their own)")


def run_bench(args):
    from fer_kaggle import presets
    from fer_kaggle.bench import blending, memory, training as bench_training
    from fer_kaggle.bench.parse import bench_parse
    from fer_kaggle.data import store

    only = set(names(args.only) or ["parse", "training", "ladder", "blend", "memory"])
    comp = store.load(args.data_dir) if not args.source else store.prepare(args.data_dir, source=args.source)[0]
    spec = comp.spec
    if "parse" in only:
        print(f"reading {comp.source} (best of {args.repeats}):")
        for name, seconds, ratio in bench_parse(comp.source, repeats=args.repeats):
            print(f"  {name:36s} {seconds:8.3f} s   {ratio:6.1f}x faster than the baseline")
    variants = presets.resolve(args.preset, names(args.variants), presets.parse_settings(args.set), spec=spec)
    if "training" in only:
        from fer_kaggle.training import configure_backend

        import keras

        configure_backend(args.threads)
        print(f"training images/s of {spec.height}x{spec.width}x{spec.channels} images, preset {args.preset} "
              f"({keras.backend.backend()} backend, {args.threads or 'all'} threads), {args.steps} steps, the faster "
              f"of {bench_training.TIMED_EPOCHS} epochs after the first:")
        for v in variants:
            build = lambda v=v: v.build(spec)  # noqa: E731
            plain = bench_training.plain_fit_images_per_second(build, v.train["batch_size"], args.steps)
            ours = bench_training.toolkit_images_per_second(build, v.train, args.steps)
            print(f"  {v.name:16s} batch {v.train['batch_size']:4d}: plain model.fit {plain:8.0f}   toolkit (augmentation "
                  f"in the step) {ours:8.0f}   ratio {ours / plain:5.2f}")
            pred = bench_training.prediction_images_per_second(build)
            print(f"  {'':16s} prediction images/s: " + "   ".join(f"tta {t} {r:,.0f}" for t, r in pred.items()))
    if "ladder" in only:
        _print_ladder(args, comp, variants)
    if "blend" in only:
        for n in (len(presets.PRESETS[args.preset]["variants"]), 100):
            seconds, method = blending.blend_seconds(n, len(comp.y_train), spec.num_classes, spec.metric)
            print(f"blend: {n:3d} members x {len(comp.y_train)} rows x {spec.num_classes} classes: {seconds:6.1f} s "
                  f"(every method by nested CV on {spec.metric}; chose {method})")
    if "symmetry" in only:
        from fer_kaggle.data.symmetry import measure
        from fer_kaggle.spec import describe_symmetry as describe

        evidence = measure(comp.x_train, comp.y_train)
        print(f"symmetry: {spec.competition or comp.source} (flip {'used' if spec.flip else 'not used'}):")
        for name, e in evidence.items():
            print(f"  {name:6s} keeps the class: {e['keeps']}: {describe(name, evidence)}")
    if "combiner" in only:
        _print_combiner_optimism(comp)
    if "final" in only:
        _print_final_model(args, comp, variants[0])
    if "memory" in only:
        rss = memory.fold_job_peak_rss_bytes(args.data_dir, args.preset, variants[0].name)
        print(f"memory: one fold job of {variants[0].name} on the data in use: peak resident {rss / 2**30:.2f} GiB")


def _print_combiner_optimism(comp):
    import numpy as np

    from fer_kaggle.bench.stacking import MAX_ROWS, SIDE, combiner_optimism

    result = combiner_optimism(comp.x_train, comp.y_train, comp.spec.num_classes)
    print(f"combiner optimism: four quick members on {SIDE}x{SIDE} gray images ({MAX_ROWS} rows at most, 5 folds, "
          f"two draws); a fold's combiner fit on the other folds' OOF (standard) against one fit on an inner 4-fold "
          f"OOF that never saw the fold (clean), scored on the fold:")
    for method, r in result.items():
        d = r["differences"]
        err = d.std(axis=0, ddof=1) / np.sqrt(len(d))
        print(f"  {method:8s} accuracy standard {r['standard'][0]:.4f} clean {r['clean'][0]:.4f} (difference "
              f"{d[:, 0].mean():+.4f} +- {err[0]:.4f}); log loss standard {r['standard'][1]:.4f} clean "
              f"{r['clean'][1]:.4f} (difference {d[:, 1].mean():+.4f} +- {err[1]:.4f})")


def _print_final_model(args, comp, variant):
    from fer_kaggle.bench.final_model import STAND_IN_FOLDS, compare
    from fer_kaggle.training import configure_backend

    configure_backend(args.threads)
    images, k = variant.images(comp), args.ladder_folds
    epochs = [int(e) for e in args.final_epochs.split(",")]
    print(f"final model: {variant.name} (preset {args.preset}), 1/{STAND_IN_FOLDS} of the training rows standing in for "
          f"the test set; at equal time, one holdout model of E epochs against a holdout model and a final model over "
          f"every row of E' = E x {k - 1}/{2 * k - 1} epochs each:", flush=True)
    r = compare(variant, images.x_train, comp.y_train, images.spec, epochs, k, log=lambda m: print(m, flush=True))
    for arms in r["results"]:
        h, s, f = arms["holdout"], arms["short holdout"], arms["final"]
        print(f"  E={h['epochs']:3d}: holdout's own submission {h['stand_in']:.4f} ({h['seconds']:.0f}s; held out "
              f"{h['held_out']:.4f}) | E'={f['epochs']}: final model's {f['stand_in']:.4f} (with its holdout model "
              f"{s['seconds'] + f['seconds']:.0f}s; that holdout's own {s['stand_in']:.4f}, held out {s['held_out']:.4f})"
              f" | final minus holdout {f['stand_in'] - h['stand_in']:+.4f} on {r['stand_in_rows']} stand-in rows")


def _print_ladder(args, comp, variants):
    import numpy as np

    from fer_kaggle import choice, presets
    from fer_kaggle.probe import quick_probe
    from fer_kaggle.cli.common import print_ladder
    from fer_kaggle.training import configure_backend

    configure_backend(args.threads)
    preset = presets.PRESETS[args.preset]
    limit, k, spec = preset["time_limit"] or 3450, args.ladder_folds, comp.spec
    ladder = preset.get("ladder") or presets.LADDER
    pretrained, probes, smaller = presets.pretrained_rungs(args.preset, presets.parse_settings(args.set), spec)
    every_row = np.arange(len(comp.y_train))  # the quick probe's rows: nothing here is scored on them
    rows = choice.measure_ladder(spec, len(comp.y_train), len(comp.test_ids), k, variants[0].train, limit, ladder,
                                 pretrained, probes, smaller,
                                 lambda v: quick_probe(v, spec, comp.x_train, comp.y_train, every_row))
    print(f"ladder: the networks' training steps on {spec.height}x{spec.width}x{spec.channels} images, batch "
          f"{variants[0].train['batch_size']} (the pretrained ones: their own side and batch), and the epochs "
          f"{limit:.0f}s (preset {args.preset}) afford as {k} fold models or one holdout model (`cv --folds 0`), "
          f"TTA counted:")
    print_ladder(rows, choice.choose(rows, k), k)
    if "ladder" not in preset:
        print(f"  (preset {args.preset} trains {', '.join(v.model for v in variants)} x {k} folds, not the choice; "
              f"preset auto trains the choice)")


def bench_arguments(p):
    p.add_argument("--source", help="the competition to read and time (default: the one in use)")
    p.add_argument("--repeats", type=int, default=3, help="best of N runs of each reader (default 3)")
    p.add_argument("--only", help="comma-separated: parse, training, ladder, blend, memory (default: all), symmetry, "
                                  "combiner, final")
    p.add_argument("--ladder-folds", type=int, default=5, help="the K of the ladder's K fold models (default 5; also "
                                                              "the holdout's K in --only final)")
    p.add_argument("--final-epochs", default="15,36", metavar="E[,E]",
                   help="--only final: the holdout model's epochs at which to compare (default 15,36)")
    p.add_argument("--preset", default="cpu", help="whose variants and settings to time (default cpu)")
    p.add_argument("--variants", help="comma-separated variants (default: the preset's)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a training setting or a model hyperparameter of the timed variants (repeatable)")
    p.add_argument("--steps", type=int, default=30, help="training steps per timed epoch (default 30)")
    p.add_argument("--threads", type=int, help="backend threads (default: all cores)")


COMMANDS = [
    Command("models", "list the registered model variants with parameters and FLOPs for the competition in use",
            "fer-kaggle models", lambda p: None, run_models),
    Command("report", "figures and one HTML page: confusion, curves, CNN vs DNN, saliency, filters, LIME",
            "fer-kaggle report --blend stack --only confusion,curves", report_arguments, run_report),
    Command("predict", "predict new images of any size and mode: a pixel CSV, a folder of images, or one image",
            "fer-kaggle predict --model oof/vgg_fast16+kd/final/model.keras faces/ --out faces.csv\n"
            "  fer-kaggle predict --model blend-stack data/test.csv --out submission.csv", predict_arguments,
            run_predict),
    Command("bench", "benchmarks for the competition in use, each against its baseline in the same run",
            "fer-kaggle bench --only training,blend", bench_arguments, run_bench),
]
