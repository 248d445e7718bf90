"""The `fer-kaggle` command line: thin subcommands over the library.

Library errors (fer_kaggle.errors) become one line on stderr and exit status 2.
"""

import argparse
import os
import resource
import sys
import time
from pathlib import Path

from fer_kaggle import CLASS_NAMES
from fer_kaggle.clock import Stopwatch
from fer_kaggle.errors import FerKaggleError, PieceEnded

PIECE_ENDED_STATUS = 75  # EX_TEMPFAIL: not finished, run the same command again

DEFAULT_COMPETITION = os.environ.get("COMPETITION") or "challenges-in-representation-learning-facial-expression-recognition-challenge"



def cmd_data(args):
    from fer_kaggle.data import store
    from fer_kaggle.data.download import kaggle_credentials_present

    credentials = args.competition if kaggle_credentials_present() else None
    comp, kind = store.prepare(args.data_dir, source=args.source, download=args.competition if args.download else None,
                               demo=args.demo, credentials=credentials)
    if kind == "demo" and not args.demo:
        print("no competition data given (--source/DATA) and no Kaggle credentials: using the synthetic demo competition")
    counts = ", ".join(f"{n} {c}" for n, c in zip(CLASS_NAMES, _bincount(comp.y_train)))
    print(f"data ({kind}): {comp.source}")
    print(f"  train: {len(comp.y_train)} images {comp.x_train.shape[1]}x{comp.x_train.shape[2]} ({counts})")
    print(f"  test:  {len(comp.test_ids)} images" + (", labels known (demo)" if comp.test_labels is not None else ""))
    print(f"  train sha256: {comp.train_sha256}")


def cmd_folds(args):
    from fer_kaggle.data import store, write_folds

    comp = store.load(args.data_dir)
    folds, written = write_folds(args.oof_dir, comp.y_train, comp.train_sha256, k=args.k, seed=args.seed, force=args.force)
    sizes = "/".join(str(int((folds == f).sum())) for f in range(folds.max() + 1))
    verb = "wrote" if written else "kept"
    print(f"folds: {verb} {args.oof_dir}/folds.csv: {folds.max() + 1} stratified folds of {sizes} rows (seed {args.seed})")


def cmd_bench(args):
    from fer_kaggle import presets
    from fer_kaggle.bench import blending, memory, training as bench_training
    from fer_kaggle.bench.parse import bench_parse
    from fer_kaggle.data import store

    only = set(_names(args.only) or ["parse", "training", "blend", "memory"])
    comp = None
    if "parse" in only:
        source = args.source or store.prepare(args.data_dir)[0].source
        print(f"parsing train.csv of {source} (best of {args.repeats}):")
        for name, seconds, ratio in bench_parse(source, repeats=args.repeats):
            print(f"  {name:36s} {seconds:8.3f} s   {ratio:6.1f}x faster than the baseline")
    spec = presets.PRESETS[args.preset]
    variants = presets.resolve(args.preset, _names(args.variants))
    if "training" in only:
        from fer_kaggle.models import create_model
        from fer_kaggle.training import configure_backend

        import keras

        configure_backend(args.threads)
        print(f"training images/s, preset {args.preset} ({keras.backend.backend()} backend, {args.threads or 'all'} "
              f"threads), {args.steps} steps, the faster of {bench_training.TIMED_EPOCHS} epochs after the first:")
        for v in variants:
            build = lambda v=v: create_model(v.model, **v.model_hp)  # noqa: E731
            plain = bench_training.plain_fit_images_per_second(build, v.train["batch_size"], args.steps)
            ours = bench_training.toolkit_images_per_second(build, v.train, args.steps)
            print(f"  {v.name:16s} batch {v.train['batch_size']:4d}: plain model.fit {plain:8.0f}   toolkit (augmentation "
                  f"in the step) {ours:8.0f}   ratio {ours / plain:5.2f}")
            pred = bench_training.prediction_images_per_second(build)
            print(f"  {'':16s} prediction images/s: " + "   ".join(f"tta {t} {r:,.0f}" for t, r in pred.items()))
    if "blend" in only:
        comp = comp or store.load(args.data_dir)
        for n in (len(spec["variants"]), 100):
            seconds, method = blending.blend_seconds(n, len(comp.y_train))
            print(f"blend: {n:3d} members x {len(comp.y_train)} rows: {seconds:6.1f} s (every method by nested CV; "
                  f"chose {method})")
    if "memory" in only:
        rss = memory.fold_job_peak_rss_bytes(args.data_dir, args.preset, variants[0].name)
        print(f"memory: one fold job of {variants[0].name} on the data in use: peak resident {rss / 2**30:.2f} GiB")


def cmd_cv(args):
    from fer_kaggle import presets
    from fer_kaggle.data import store

    comp = store.load(args.data_dir)
    folds_meta, folds = _folds(args.oof_dir, comp)
    preset = _use_preset(args.preset, comp)
    variants = presets.resolve(preset, _names(args.variants), presets.parse_settings(args.set), args.tag, args.tuning_dir)
    _trainer(args, comp, folds, folds_meta, preset)(variants)


def _use_preset(preset, comp):
    """The preset to run (demo on the demo data, else cpu); its backend unless KERAS_BACKEND is set."""
    from fer_kaggle import presets

    preset = preset or ("demo" if comp.is_demo else "cpu")
    if "backend" in presets.PRESETS.get(preset, {}) and "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", presets.PRESETS[preset]["backend"])
    return preset


def _trainer(args, comp, folds, folds_meta, preset):
    """A function that trains variants K-fold with the run's options (time limit, jobs) and
    prints their leaderboard: what cv does, and what pseudo and distill do with new variants."""
    from fer_kaggle import presets
    from fer_kaggle.cv import run_cv

    time_limit = args.time_limit if args.time_limit is not None else presets.PRESETS[preset]["time_limit"]
    jobs = args.jobs or presets.PRESETS[preset]["jobs"]
    piece = args.piece_seconds if args.piece_seconds is not None else presets.PRESETS[preset].get("piece_seconds")

    def train(variants):
        limit = f", time limit {time_limit:.0f}s" if time_limit else ""
        print(f"{args.command}: preset {preset}, {len(variants)} variants x {folds.max() + 1} folds on "
              f"{len(comp.y_train)} rows ({'demo' if comp.is_demo else comp.source}){limit}, {jobs} job(s)", flush=True)
        rows = run_cv(comp, folds, folds_meta, variants, args.oof_dir, time_limit=time_limit or None, jobs=jobs,
                      scheduler=getattr(args, "scheduler", None), threads=args.threads, preset=preset,
                      piece_seconds=piece or None)
        print_leaderboard(rows, only={v.name for v in variants})
        peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
        print(f"{args.command}: peak resident memory of one process {peak / 2**20:.2f} GiB")
        return rows

    return train


def cmd_pseudo(args):
    from fer_kaggle import presets
    from fer_kaggle.data import store
    from fer_kaggle.teaching.pseudo import finished_variant, run_label_fraction, run_pseudo
    from fer_kaggle.teaching.teacher import resolve_teacher

    comp = store.load(args.data_dir)
    folds_meta, folds = _folds(args.oof_dir, comp)
    preset = _use_preset(args.preset, comp)
    train = _trainer(args, comp, folds, folds_meta, preset)
    options = {"precision": args.precision, "hard": args.labels == "hard", "weight": args.weight, "train_cv": train,
               "seed": args.seed}
    if args.label_fraction:
        students = presets.resolve(preset, _names(args.variants), presets.parse_settings(args.set), args.tag)
        fractions = [float(f) for f in _names(args.label_fraction)]
        summaries = run_label_fraction(comp, folds, folds_meta, args.oof_dir, students, fractions, **options)
    else:
        if args.set or args.tag:
            from fer_kaggle.errors import ConfigError

            raise ConfigError("pseudo retrains finished variants with their own settings: --set and --tag apply to "
                              "the preset's variants of --label-fraction only")
        members, method = resolve_teacher(args.source, args.oof_dir, args.submissions_dir)
        students = [finished_variant(args.oof_dir, n) for n in _names(args.variants)] if args.variants else None
        summaries = run_pseudo(comp, folds, folds_meta, args.oof_dir, members, method, students, rounds=args.rounds,
                               **options)
    print(f"{'variant':28s} {'before':20s} {'acc_before':>10s} {'accuracy':>9s} {'log_loss':>9s} {'admitted/fold':>13s}")
    for s in summaries:
        admitted = sum(f["admitted_test"] + f["admitted_hidden"] for f in s["folds"].values()) / len(s["folds"])
        print(f"{s['variant']:28s} {s['before']:20s} {s['accuracy_before']:10.4f} {s['accuracy']:9.4f} "
              f"{s['log_loss']:9.4f} {admitted:13.0f}")


def cmd_distill(args):
    from fer_kaggle import presets
    from fer_kaggle.data import store
    from fer_kaggle.models import count_flops, create_model
    from fer_kaggle.teaching.distill import run_distill
    from fer_kaggle.teaching.teacher import resolve_teacher

    comp = store.load(args.data_dir)
    folds_meta, folds = _folds(args.oof_dir, comp)
    preset = _use_preset(args.preset, comp)
    members, method = resolve_teacher(args.teacher, args.oof_dir, args.submissions_dir)
    candidates = presets.resolve(preset, [args.student] if args.student else None, presets.parse_settings(args.set),
                                 args.tag)
    student = min(candidates, key=lambda v: count_flops(create_model(v.model, **v.model_hp)))  # the fastest
    s = run_distill(comp, folds, folds_meta, args.oof_dir, members, method, student, alpha=args.alpha,
                    temperature=args.temperature, test_images=not args.no_test_images, speed_images=args.speed_images,
                    train_cv=_trainer(args, comp, folds, folds_meta, preset), seed=args.seed)
    speed = s["images_per_second"]
    print(f"distill: OOF accuracy: teacher {s['teacher_accuracy']:.4f}, student {s['variant']} {s['accuracy']:.4f}"
          + (f", {s['labels_only']} on labels alone {s['labels_only_accuracy']:.4f}" if s["labels_only"] else
             f" (train {student.name} on labels alone with `fer-kaggle cv --variants {student.name}` to compare)"))
    print(f"distill: prediction: teacher ({speed['teacher_models']} models with TTA) {speed['teacher']:,.0f} images/s, "
          f"final student {speed['student']:,.0f} images/s ({speed['speedup']:.1f}x)")
    print(f"distill: the model to ship: {s['final_model']} (predict with `fer-kaggle predict --model {s['final_model']} "
          f"IMAGES`)")


def cmd_predict(args):
    from fer_kaggle.data import store
    from fer_kaggle.data.images import read_images
    from fer_kaggle.predict import load_predictor, predictions_csv, write_predictions

    names, images, kind = read_images(args.input)
    comp = folds = folds_meta = None
    if not args.model.endswith(".keras"):
        comp = store.load(args.data_dir)
        folds_meta, folds = _folds(args.oof_dir, comp)
    predictor, what = load_predictor(args.model, args.oof_dir, comp, folds, folds_meta, tta=args.tta)
    watch = Stopwatch()
    probs = predictor(images)
    if args.out:
        write_predictions(args.out, names, probs, kind, CLASS_NAMES)
        print(watch.line(f"predict: {len(names)} images with {what}: wrote {args.out}"))
    else:
        sys.stdout.write(predictions_csv(names, probs, kind, CLASS_NAMES))


def _folds(oof_dir, comp):
    from fer_kaggle.atomic import read_json
    from fer_kaggle.data import load_folds

    folds = load_folds(oof_dir, comp.train_sha256, len(comp.y_train))
    return read_json(os.path.join(oof_dir, "folds.json")), folds


def _names(text):
    return [n.strip() for n in text.split(",") if n.strip()] if text else None


def print_leaderboard(rows, only=None):
    print(f"{'name':24s} {'kind':8s} {'accuracy':>8s} {'log_loss':>8s} {'fold_sd':>7s} {'params':>11s} "
          f"{'MFLOPs':>8s} {'fit_s':>8s} {'pred_s':>7s} selected")
    for r in rows:
        mark = "*" if only and r["name"] in only else " "
        flops = f"{r['flops'] / 1e6:8.1f}" if r["flops"] != "" else f"{'':8s}"
        params = f"{r['params']:11,d}" if r["params"] != "" else f"{'':11s}"
        print(f"{mark}{r['name']:23s} {r['kind']:8s} {r['accuracy']:8.4f} {r['log_loss']:8.4f} "
              f"{float(r['fold_accuracy_std'] or 0):7.4f} {params} {flops} {float(r['fit_seconds'] or 0):8.0f} "
              f"{float(r['predict_seconds'] or 0):7.0f} {r.get('selected', '')}")


def cmd_leaderboard(args):
    from fer_kaggle.cv import write_leaderboard

    rows = write_leaderboard(args.oof_dir)
    if not rows:
        print(f"no finished variants in {args.oof_dir}/ yet: run `fer-kaggle cv` (or `make cv`)")
        return
    print_leaderboard(rows)


def cmd_models(args):
    from fer_kaggle.models import builder_of, count_flops, create_model, list_models

    print(f"{'variant':14s} {'params':>11s} {'MFLOPs/image':>13s}  description")
    for name in list_models():
        model = create_model(name)
        doc = (builder_of(name).__doc__ or "").strip().splitlines()[0]
        print(f"{name:14s} {model.count_params():11,d} {count_flops(model) / 1e6:13.1f}  {doc}")


def cmd_tune(args):
    from fer_kaggle import presets, tuning
    from fer_kaggle.data import store
    from fer_kaggle.training import configure_backend

    comp = store.load(args.data_dir)
    _, folds = _folds(args.oof_dir, comp)
    preset = args.preset or ("smoke" if comp.is_demo else "cpu")
    base_train = presets.resolve(preset, ["cnn_tiny"], presets.parse_settings(args.set))[0].train
    configure_backend(args.threads)
    target = None
    if args.match_params:
        target = _params_of(args.match_params, args.oof_dir)
        print(f"tune: sizing {args.family} to {target:,} parameters, those of {args.match_params}")
    folds_to_use = [int(k) for k in args.folds.split(",")]
    rows = tuning.search(args.search, args.family, (comp.x_train, comp.y_train, folds), base_train, folds_to_use,
                         tuner=args.tuner, max_params=args.max_params, trials=args.trials, max_epochs=args.max_epochs,
                         target_params=target, tuning_dir=args.tuning_dir, seed=args.seed, top=args.top,
                         time_limit=args.time_limit)
    if not rows:
        print("tune: worker finished; the chief summarizes and exports")
        return
    print(f"{'trial':6s} {'status':10s} {'params':>10s} {'val_acc':>8s} {'seconds':>8s}  hyperparameters")
    for r in rows:
        params = f"{r['params']:,}" if r["params"] else ""
        score = f"{r['score']:.4f}" if r["score"] is not None else ""
        secs = f"{r['seconds']:.0f}" if r["seconds"] is not None else ""
        print(f"{r['trial']:6s} {r['status']:10s} {params:>10s} {score:>8s} {secs:>8s}  {r['hyperparameters']}")
    skipped = sum(r["status"] == "FAILED" for r in rows)
    print(f"tune: {len(rows) - skipped} trials run, {skipped} skipped (over the parameter budget or failed); "
          f"best exported to {args.tuning_dir}/{args.search}/best/ (train them: fer-kaggle cv --variants tuned:{args.search})")


def _params_of(variant, oof_dir):
    """The parameter count of a finished variant in oof/, or of a registered model."""
    from fer_kaggle.atomic import read_json
    from fer_kaggle.models import create_model

    config = Path(oof_dir) / variant / "config.json"
    return int(read_json(config)["params"]) if config.exists() else int(create_model(variant).count_params())


def cmd_blend(args):
    from fer_kaggle.blend import run_blend
    from fer_kaggle.cv import write_leaderboard
    from fer_kaggle.data import store

    comp = store.load(args.data_dir)
    folds_meta, folds = _folds(args.oof_dir, comp)
    watch = Stopwatch()
    manifest = run_blend(comp, folds, folds_meta, args.oof_dir, args.submissions_dir, method=args.method,
                         members=_names(args.members), name=args.name, seed=args.seed,
                         log=lambda m: print(watch.line(m), flush=True),
                         progress=lambda m, f: print(watch.line(f"blend: {m}", f), flush=True))
    write_leaderboard(args.oof_dir)
    weights = ", ".join(f"{k} {v:.3f}" for k, v in manifest["weights"].items())
    print(f"blend: {manifest['method']} of {len(manifest['members'])} members ({weights})")
    print(f"  nested-CV accuracy {manifest['cv']['accuracy']:.4f}, log loss {manifest['cv']['log_loss']:.4f}")
    if "demo_test_accuracy" in manifest:
        print(f"  demo test accuracy {manifest['demo_test_accuracy']:.4f}")
    print(f"  wrote {args.submissions_dir}/{manifest['csv']} and its manifest")


def cmd_submit(args):
    from fer_kaggle.atomic import read_json, write_json
    from fer_kaggle.data import store
    from fer_kaggle.errors import SubmissionError
    from fer_kaggle.submit import KaggleClient, read_submission, sha256_file, wait_for_score

    path = Path(args.path) if args.path else _latest_submission(args.submissions_dir)
    comp = store.load(args.data_dir)
    ids, _ = read_submission(path, comp.test_ids, len(comp.class_names))
    manifest_path = path.with_suffix(".json")
    manifest = read_json(manifest_path) if manifest_path.exists() else None
    if manifest and manifest.get("csv_sha256") != sha256_file(path):
        raise SubmissionError(f"{path} changed since its manifest was written (sha256 differs): blend again")
    print(f"submit: {path} is valid ({len(ids)} rows)")
    if args.dry_run:
        return
    if not args.competition:
        raise SubmissionError("name the competition: --competition SLUG (or COMPETITION=SLUG for make)")
    client = KaggleClient()
    client.submit(path, args.competition, args.message)
    record = {"competition": args.competition, "message": args.message,
              "submitted_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "status": "submitted"}
    print(f"submit: uploaded to {args.competition}")
    if args.wait:
        score = wait_for_score(client, args.competition, path.name, timeout=args.timeout)
        if score is None:
            print(f"submit: no score after {args.timeout:.0f}s; `fer-kaggle submissions` shows it once recorded")
        else:
            record.update(score)
            print(f"submit: public score {score['public_score']}")
    if manifest is not None:
        manifest["kaggle"] = record
        write_json(manifest_path, manifest)


def _latest_submission(directory):
    from fer_kaggle.errors import SubmissionError

    csvs = sorted(Path(directory).glob("*.csv"))
    if not csvs:
        raise SubmissionError(f"no submission in {directory}/: run `fer-kaggle blend` (or `make blend`) first")
    return csvs[-1]


def cmd_submissions(args):
    from fer_kaggle.atomic import read_json

    manifests = sorted(Path(args.submissions_dir).glob("*.json"))
    if not manifests:
        print(f"no submissions in {args.submissions_dir}/ yet")
        return
    if args.latest:
        m = read_json(manifests[-1])
        print(f"submission: {Path(args.submissions_dir) / m['csv']} ({m['method']} of {', '.join(m['members'])})")
        print(f"nested-CV accuracy {m['cv']['accuracy']:.4f}, log loss {m['cv']['log_loss']:.4f}")
        if Path("reports", "index.html").exists():
            print(f"report: {Path('reports', 'index.html').resolve()}")
        return
    print(f"{'submission':44s} {'method':9s} {'cv_acc':>7s} {'cv_loss':>7s} {'public':>7s} {'private':>7s}")
    for path in manifests:
        m = read_json(path)
        kaggle = m.get("kaggle") or {}
        public, private = kaggle.get("public_score"), kaggle.get("private_score")
        print(f"{path.stem:44s} {m['method']:9s} {m['cv']['accuracy']:7.4f} {m['cv']['log_loss']:7.4f} "
              f"{'' if public is None else f'{public:.4f}':>7s} {'' if private is None else f'{private:.4f}':>7s}")


def cmd_report(args):
    from fer_kaggle.data import store
    from fer_kaggle.diagnostics.report import Report

    comp = store.load(args.data_dir)
    _, folds = _folds(args.oof_dir, comp)
    target = args.variant or (f"blend-{args.blend}" if args.blend and not args.blend.startswith("blend-") else args.blend)
    target = target or _submitted_blend(args.submissions_dir, args.oof_dir)
    watch = Stopwatch()
    report = Report(comp, folds, args.oof_dir, args.out, target=target, progress=lambda m: print(watch.line(m), flush=True),
                    per_class=args.per_class, lime_samples=args.lime_samples, ascent_steps=args.ascent_steps)
    sections = report.make(_names(args.only))
    for name, title, figures, _ in sections:
        for png, _ in figures:
            print(f"report: {name}: {png}")
    print(f"report: {args.out}/index.html ({report.target})")


def _submitted_blend(submissions_dir, oof_dir):
    """The blend behind the newest submission, where its predictions are still in `oof_dir`:
    what `make all` submitted is what its report shows (None: the leaderboard's best)."""
    from fer_kaggle.atomic import read_json

    manifests = sorted(Path(submissions_dir).glob("*.json"), key=lambda path: path.stat().st_mtime_ns)
    if manifests:
        name = f"blend-{read_json(manifests[-1])['method']}"
        if (Path(oof_dir) / name / "oof.npy").exists():
            return name
    return None


def _bincount(labels):
    import numpy as np

    return np.bincount(labels, minlength=len(CLASS_NAMES)).tolist()


GLOBAL_OPTIONS = (  # flag, environment variable, default, what
    ("--data-dir", "FER_KAGGLE_DATA_DIR", "data", "the data folder"),
    ("--oof-dir", "FER_KAGGLE_OOF_DIR", "oof", "the OOF folder"),
    ("--tuning-dir", "FER_KAGGLE_TUNING_DIR", "tuning", "the tuning folder"),
    ("--submissions-dir", "FER_KAGGLE_SUBMISSIONS_DIR", "submissions", "the submissions folder"),
)
EXAMPLES = {
    "data": "fer-kaggle data --source ../shared/data/fer2013.zip\n  fer-kaggle data --demo --data-dir /tmp/demo",
    "folds": "fer-kaggle folds --k 5 --seed 0",
    "cv": "fer-kaggle cv --preset cpu\n  fer-kaggle cv --variants vgg_fast16 --set epochs=20 --time-limit 1800",
    "tune": "fer-kaggle tune --search xc --family xception --max-params 500000 --trials 10",
    "leaderboard": "fer-kaggle leaderboard",
    "models": "fer-kaggle models",
    "blend": "fer-kaggle blend --method best\n  fer-kaggle blend --method caruana --members 'vgg_*'",
    "submit": "fer-kaggle submit --latest --dry-run",
    "submissions": "fer-kaggle submissions --latest",
    "report": "fer-kaggle report --blend stack --only confusion,curves",
    "bench": "fer-kaggle bench --only training,blend",
    "pseudo": "fer-kaggle pseudo --from stack --precision 0.9\n  fer-kaggle pseudo --variants vgg_fast16 "
              "--label-fraction 0.1,0.25 --time-limit 900",
    "distill": "fer-kaggle distill --teacher stack --student vgg_fast16 --alpha 0.5 --temperature 2",
    "predict": "fer-kaggle predict --model oof/vgg_fast16+kd/final/model.keras faces/ --out faces.csv\n"
               "  fer-kaggle predict --model blend-stack data/test.csv --out submission.csv",
}


def build_parser():
    parser = argparse.ArgumentParser(prog="fer-kaggle", description=__doc__.splitlines()[0])
    for flag, env, default, what in GLOBAL_OPTIONS:
        parser.add_argument(flag, default=os.environ.get(env, default), help=f"{what} (default: {default})")
    # The same options after the subcommand too (`fer-kaggle data --data-dir D`); given there, they win.
    common = argparse.ArgumentParser(add_help=False)
    for flag, _, default, what in GLOBAL_OPTIONS:
        common.add_argument(flag, default=argparse.SUPPRESS, help=f"{what} (default: {default})")
    sub = parser.add_subparsers(dest="command", required=True)

    def add_command(name, help):
        return sub.add_parser(name, help=help, parents=[common], epilog=f"example:\n  {EXAMPLES[name]}",
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    p = add_command("data", help="choose the competition data, validate it and cache the parsed arrays")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--source", help="a competition zip, an extracted directory, or a CSV (train.csv or fer2013.csv)")
    group.add_argument("--download", action="store_true", help="download --competition with the Kaggle API")
    group.add_argument("--demo", action="store_true", help="use the synthetic demo competition")
    p.add_argument("--competition", default=DEFAULT_COMPETITION, help="Kaggle competition slug (default: $COMPETITION)")
    p.set_defaults(func=cmd_data)

    p = add_command("folds", help="write oof/folds.csv: stratified K folds of the training rows")
    p.add_argument("--k", type=int, default=5, help="number of folds (default 5)")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed (default 0)")
    p.add_argument("--force", action="store_true", help="replace existing folds")
    p.set_defaults(func=cmd_folds)

    def add_run_options(p, variants_help):
        p.add_argument("--preset", help="smoke, demo, cpu or gpu: settings, time limit, jobs, backend (default: demo on "
                                        "the demo data, else cpu)")
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
                            "0 = one piece (default: the preset's, 540 for gpu)")

    p = add_command("cv", help="K-fold CV of model variants: OOF and test probabilities, leaderboard")
    add_run_options(p, "comma-separated variant names (default: the preset's)")
    p.add_argument("--scheduler", help="a Dask scheduler address (tcp://HOST:PORT) to run the fold jobs on")
    p.set_defaults(func=cmd_cv)

    p = add_command("tune", help="keras-tuner architecture search under a parameter budget")
    p.add_argument("--search", required=True, help="the search's name: tuning/<search>/ (resumable)")
    p.add_argument("--family", default="xception", help="search space: xception, resnet, vgg, dnn, cnn_tiny")
    p.add_argument("--preset", help="training settings of this preset (default: smoke on the demo data, else cpu)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a training setting (repeatable)")
    p.add_argument("--max-params", type=int, help="parameter budget: larger configurations are skipped untrained")
    p.add_argument("--match-params", metavar="VARIANT", help="size the model (dnn) to this variant's parameter count")
    p.add_argument("--tuner", default="hyperband", help="hyperband (default), bayesian or random")
    p.add_argument("--trials", type=int, default=10, help="valid trials for bayesian and random (default 10)")
    p.add_argument("--max-epochs", type=int, help="hyperband's largest epoch budget (default: the preset's epochs)")
    p.add_argument("--folds", default="0", help="folds scored per trial, e.g. 0,1,2 (default 0)")
    p.add_argument("--top", type=int, default=3, help="configurations to export (default 3)")
    p.add_argument("--time-limit", type=float, help="no new trial starts after this many seconds")
    p.add_argument("--threads", type=int, help="threads for training")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_tune)

    p = add_command("leaderboard", help="rank the variants (and blends) in oof/")
    p.set_defaults(func=cmd_leaderboard)

    p = add_command("models", help="list the registered model variants with parameters and FLOPs")
    p.set_defaults(func=cmd_models)

    p = add_command("blend", help="fit a blend on the OOF predictions; write a validated submission")
    p.add_argument("--method", default="best", help="best (default: chosen by nested CV), mean, weighted, caruana, stack, rank")
    p.add_argument("--members", help="comma-separated variant names or glob patterns (default: every finished variant)")
    p.add_argument("--name", help="name of the submission file (default: the method)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_blend)

    p = add_command("submit", help="validate a submission and upload it with the Kaggle API")
    p.add_argument("path", nargs="?", help="the submission CSV (default: the latest in submissions/)")
    p.add_argument("--latest", action="store_true", help="the latest submission (the default)")
    p.add_argument("--competition", default=os.environ.get("COMPETITION"), help="Kaggle competition slug")
    p.add_argument("--message", default="fer-kaggle", help="submission description")
    p.add_argument("--wait", action="store_true", help="poll until the score is known and record it")
    p.add_argument("--timeout", type=float, default=600, help="seconds to wait for the score (default 600)")
    p.add_argument("--dry-run", action="store_true", help="validate only")
    p.set_defaults(func=cmd_submit)

    p = add_command("submissions", help="list local submissions with CV and leaderboard scores")
    p.add_argument("--latest", action="store_true", help="only the newest: its path, nested-CV score and the report page")
    p.set_defaults(func=cmd_submissions)

    p = add_command("report", help="figures and one HTML page: confusion, curves, CNN vs DNN, saliency, filters, LIME")
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
    p.set_defaults(func=cmd_report)

    p = add_command("pseudo", help="retrain variants with the ensemble's confident test predictions (pseudo-labels)")
    p.add_argument("--from", dest="source", metavar="TEACHER",
                   help="a blend (stack, blend-stack), a variant or comma-separated variants (default: the latest blend)")
    add_run_options(p, "the variants to retrain (default: the teacher's members; with --label-fraction the preset's)")
    p.add_argument("--precision", type=float, default=0.9,
                   help="admit images above the lowest confidence whose OOF predictions are right this often (0.9)")
    p.add_argument("--labels", choices=("hard", "soft"), default="hard", help="pseudo-labels: the class, or the "
                                                                              "probabilities (default hard)")
    p.add_argument("--weight", type=float, default=1.0, help="weight of a pseudo-labeled image (labeled: 1; default 1)")
    p.add_argument("--rounds", type=int, default=1, help="rounds, each taught by the last (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--label-fraction", metavar="F[,F...]",
                   help="the semi-supervised experiment: keep the labels of this stratified fraction of every fold's "
                        "training part, pseudo-label the rest and the test images; compare with the fraction alone")
    p.set_defaults(func=cmd_pseudo)

    p = add_command("distill", help="train one fast student on an ensemble's soft targets, K-fold and one final model")
    p.add_argument("--teacher", help="a blend (stack, blend-stack), a variant or comma-separated variants "
                                     "(default: the latest blend)")
    p.add_argument("--student", help="the student variant (default: the preset's fastest)")
    add_run_options(p, None)
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the true labels in the targets (default 0.5)")
    p.add_argument("--temperature", type=float, default=2.0, help="temperature of the teacher's probabilities (2)")
    p.add_argument("--no-test-images", action="store_true", help="leave the test images' soft targets out")
    p.add_argument("--speed-images", type=int, default=2000, help="test images timed for the speed comparison")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_distill)

    p = add_command("predict", help="predict new images: a CSV in either layout, a folder of PNG/JPEG, or one image")
    p.add_argument("input", help="a CSV (id,feature / label,feature / emotion,pixels,Usage), a folder or an image file")
    p.add_argument("--model", required=True, help="a .keras model (e.g. a distilled student), a variant or a blend")
    p.add_argument("--out", help="write the predictions here (default: print them)")
    p.add_argument("--tta", default="none", choices=("none", "flip", "flip+crops"),
                   help="test-time augmentation of a .keras model (variants and blends use their own)")
    p.set_defaults(func=cmd_predict)

    p = add_command("bench", help="benchmarks, each against its baseline in the same run")
    p.add_argument("--source", help="competition to parse (default: the one in use)")
    p.add_argument("--repeats", type=int, default=3, help="best of N runs of each reader (default 3)")
    p.add_argument("--only", help="comma-separated: parse, training, blend, memory (default: all)")
    p.add_argument("--preset", default="cpu", help="whose variants and settings to time (default cpu)")
    p.add_argument("--variants", help="comma-separated variants (default: the preset's)")
    p.add_argument("--steps", type=int, default=30, help="training steps per timed epoch (default 30)")
    p.add_argument("--threads", type=int, help="backend threads (default: all cores)")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's C++ log lines out of the output
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX: parallel fold jobs share one GPU
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except PieceEnded as e:
        print(f"fer-kaggle {args.command}: the piece ended ({e}): run the same command again to resume",
              file=sys.stderr)
        return PIECE_ENDED_STATUS
    except FerKaggleError as e:
        print(f"fer-kaggle {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fer-kaggle {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
