"""`cv`, `tune`, `pseudo` and `distill`: the commands that train."""

from pathlib import Path

from fer_kaggle.cli.common import Command, add_run_options, load_folds, names, trainer, use_preset
from fer_kaggle.errors import ConfigError


def run_cv(args):
    from fer_kaggle import presets
    from fer_kaggle.data import store

    comp = store.load(args.data_dir)
    folds_meta, folds = load_folds(args.oof_dir, comp)
    preset = use_preset(args.preset, comp)
    settings = presets.parse_settings(args.set)
    chosen = names(args.variants)
    if "ladder" in presets.PRESETS[preset] and not chosen:
        chosen = _choose(args, comp, folds, folds_meta, preset, settings)
    if args.final_model and not args.folds:
        raise ConfigError("--final-model follows a holdout: give --folds too (e.g. --folds 0)")
    variants = presets.resolve(preset, chosen, settings, args.tag, args.tuning_dir, spec=comp.spec)
    trainer(args, comp, folds, folds_meta, preset)(variants)


def _choose(args, comp, folds, folds_meta, preset, settings):
    """The ladder's choice for this competition and machine (kept in oof/choice.json), printed;
    sets args.folds to fold 0 for a holdout, unless --folds is given (and args.final_model where the
    choice adds a final model over every row)."""
    from fer_kaggle import choice
    from fer_kaggle.cli.common import describe_choice, print_ladder

    k = int(folds.max()) + 1
    names_, holdout, picked, rows = choice.ladder_choice(preset, comp, folds, folds_meta, args.oof_dir, settings,
                                                         args.time_limit, args.threads,
                                                         log=lambda m: print(m, flush=True))
    if rows:
        print_ladder(rows, picked, k)
    else:
        print(f"cv: preset {preset} keeps its choice ({args.oof_dir}/{choice.CHOICE}): {describe_choice(picked, k)}: "
              f"{picked['why']}")
    if holdout and not args.folds:
        args.folds = "0"
        args.final_model = args.final_model or picked.get("final_model", False)
    args.spent_choosing = picked.get("ladder_seconds", 0.0)  # inside the time limit, as the training is
    return names_


def cv_arguments(p):
    add_run_options(p, "comma-separated variant names (default: the preset's)")
    p.add_argument("--folds", metavar="K[,K]", help="train these folds only: a holdout variant (its OOF holds those "
                                                    "folds' rows; blend and report use them; a later run without "
                                                    "--folds trains the others)")
    p.add_argument("--final-model", action="store_true",
                   help="with --folds: then train one more model of the same network, epochs and schedule over every "
                        "row; its test predictions are the variant's (the submission's); its score stays the holdout "
                        "model's (auto chooses this by its rule)")
    p.add_argument("--scheduler", help="a Dask scheduler address (tcp://HOST:PORT) to run the fold jobs on")


def run_tune(args):
    import os

    from fer_kaggle.lock import exclusive

    if os.environ.get("KERASTUNER_TUNER_ID", "chief") != "chief":  # a worker of a distributed search: its chief
        return _tune(args)  # holds the folder, and the oracle hands out the trials
    with exclusive(args.tuning_dir, "tune"):  # one search's chief at a time on a tuning folder
        return _tune(args)


def _tune(args):
    from fer_kaggle import presets, tuning
    from fer_kaggle.data import store
    from fer_kaggle.training import configure_backend

    comp = store.load(args.data_dir)
    _, folds = load_folds(args.oof_dir, comp)
    preset = args.preset or ("smoke" if comp.is_demo else "cpu")
    base_train = presets.resolve(preset, ["cnn_tiny"], presets.parse_settings(args.set), spec=comp.spec)[0].train
    configure_backend(args.threads)
    target = None
    if args.match_params:
        target = _params_of(args.match_params, args.oof_dir, comp.spec)
        print(f"tune: sizing {args.family} to {target:,} parameters, those of {args.match_params}")
    folds_to_use = [int(k) for k in args.folds.split(",")]
    rows = tuning.search(args.search, args.family, (comp.x_train, comp.y_train, folds), base_train, comp.spec,
                         folds_to_use, tuner=args.tuner, max_params=args.max_params, trials=args.trials,
                         max_epochs=args.max_epochs, target_params=target, tuning_dir=args.tuning_dir, seed=args.seed,
                         top=args.top, time_limit=args.time_limit)
    if not rows:
        print("tune: worker finished; the chief summarizes and exports")
        return
    print(f"{'trial':6s} {'status':10s} {'params':>10s} {comp.spec.metric[:8]:>8s} {'seconds':>8s}  hyperparameters")
    for r in rows:
        params = f"{r['params']:,}" if r["params"] else ""
        score = f"{r['score']:.4f}" if r["score"] is not None else ""
        secs = f"{r['seconds']:.0f}" if r["seconds"] is not None else ""
        print(f"{r['trial']:6s} {r['status']:10s} {params:>10s} {score:>8s} {secs:>8s}  {r['hyperparameters']}")
    skipped = sum(r["status"] == "FAILED" for r in rows)
    print(f"tune: {len(rows) - skipped} trials run, {skipped} skipped (over the parameter budget or failed); "
          f"best exported to {args.tuning_dir}/{args.search}/best/ (train them: fer-kaggle cv --variants tuned:{args.search})")


def _params_of(variant, oof_dir, spec):
    """The parameter count of a finished variant in oof/, or of a registered model."""
    from fer_kaggle import layout
    from fer_kaggle.models import create_model

    config = layout.read_config(Path(oof_dir) / variant)
    if config is not None:
        return int(config["params"])
    return int(create_model(variant, spec.input_shape, spec.num_classes).count_params())


def tune_arguments(p):
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


def run_pseudo(args):
    from fer_kaggle import presets
    from fer_kaggle.data import store
    from fer_kaggle.teaching.pseudo import finished_variant, run_label_fraction, run_pseudo
    from fer_kaggle.teaching.teacher import resolve_teacher

    comp = store.load(args.data_dir)
    folds_meta, folds = load_folds(args.oof_dir, comp)
    preset = use_preset(args.preset, comp)
    train = trainer(args, comp, folds, folds_meta, preset)
    options = {"precision": args.precision, "hard": args.labels == "hard", "weight": args.weight, "train_cv": train,
               "seed": args.seed}
    if args.label_fraction:
        students = presets.resolve(preset, names(args.variants), presets.parse_settings(args.set), args.tag,
                                   spec=comp.spec)
        fractions = [float(f) for f in names(args.label_fraction)]
        summaries = run_label_fraction(comp, folds, folds_meta, args.oof_dir, students, fractions, **options)
    else:
        if args.set or args.tag:
            raise ConfigError("pseudo retrains finished variants with their own settings: --set and --tag apply to "
                              "the preset's variants of --label-fraction only")
        members, method = resolve_teacher(args.source, args.oof_dir, args.submissions_dir)
        students = [finished_variant(args.oof_dir, n) for n in names(args.variants)] if args.variants else None
        summaries = run_pseudo(comp, folds, folds_meta, args.oof_dir, members, method, students, rounds=args.rounds,
                               **options)
    print(f"{'variant':28s} {'before':20s} {'acc_before':>10s} {'accuracy':>9s} {'log_loss':>9s} {'admitted/fold':>13s}")
    for s in summaries:
        admitted = sum(f["admitted_test"] + f["admitted_hidden"] for f in s["folds"].values()) / len(s["folds"])
        print(f"{s['variant']:28s} {s['before']:20s} {s['accuracy_before']:10.4f} {s['accuracy']:9.4f} "
              f"{s['log_loss']:9.4f} {admitted:13.0f}")


def pseudo_arguments(p):
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


def run_distill(args):
    from fer_kaggle import presets
    from fer_kaggle.data import store
    from fer_kaggle.models import count_flops
    from fer_kaggle.teaching.distill import run_distill
    from fer_kaggle.teaching.teacher import resolve_teacher

    comp = store.load(args.data_dir)
    folds_meta, folds = load_folds(args.oof_dir, comp)
    preset = use_preset(args.preset, comp)
    members, method = resolve_teacher(args.teacher, args.oof_dir, args.submissions_dir)
    candidates = presets.resolve(preset, [args.student] if args.student else None, presets.parse_settings(args.set),
                                 args.tag, spec=comp.spec)
    student = min(candidates, key=lambda v: count_flops(v.build(comp.spec)))  # the fastest
    s = run_distill(comp, folds, folds_meta, args.oof_dir, members, method, student, alpha=args.alpha,
                    temperature=args.temperature, test_images=not args.no_test_images, speed_images=args.speed_images,
                    train_cv=trainer(args, comp, folds, folds_meta, preset), seed=args.seed)
    speed = s["images_per_second"]
    print(f"distill: OOF accuracy: teacher {s['teacher_accuracy']:.4f}, student {s['variant']} {s['accuracy']:.4f}"
          + (f", {s['labels_only']} on labels alone {s['labels_only_accuracy']:.4f}" if s["labels_only"] else
             f" (train {student.name} on labels alone with `fer-kaggle cv --variants {student.name}` to compare)"))
    print(f"distill: prediction: teacher ({speed['teacher_models']} models with TTA) {speed['teacher']:,.0f} images/s, "
          f"final student {speed['student']:,.0f} images/s ({speed['speedup']:.1f}x)")
    print(f"distill: the model to ship: {s['final_model']} (it carries the competition spec; predict with "
          f"`fer-kaggle predict --model {s['final_model']} IMAGES`)")


def distill_arguments(p):
    p.add_argument("--teacher", help="a blend (stack, blend-stack), a variant or comma-separated variants "
                                     "(default: the latest blend)")
    p.add_argument("--student", help="the student variant (default: the preset's fastest)")
    add_run_options(p, None)
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the true labels in the targets (default 0.5)")
    p.add_argument("--temperature", type=float, default=2.0, help="temperature of the teacher's probabilities (2)")
    p.add_argument("--no-test-images", action="store_true", help="leave the test images' soft targets out")
    p.add_argument("--speed-images", type=int, default=2000, help="test images timed for the speed comparison")
    p.add_argument("--seed", type=int, default=0)


COMMANDS = [
    Command("cv", "K-fold CV of model variants: OOF and test probabilities, leaderboard",
            "fer-kaggle cv --preset cpu\n  fer-kaggle cv --variants vgg_fast16 --set epochs=20 --time-limit 1800\n"
            "  fer-kaggle cv --folds 0 --time-limit 690 --tag f0",
            cv_arguments, run_cv, locks=("oof_dir",)),
    Command("tune", "keras-tuner architecture search under a parameter budget, maximizing the competition's metric",
            "fer-kaggle tune --search xc --family xception --max-params 500000 --trials 10", tune_arguments, run_tune),
    Command("pseudo", "retrain variants with the ensemble's confident test predictions (pseudo-labels)",
            "fer-kaggle pseudo --from stack --precision 0.9\n  fer-kaggle pseudo --variants vgg_fast16 "
            "--label-fraction 0.1,0.25 --time-limit 900", pseudo_arguments, run_pseudo, locks=("oof_dir",)),
    Command("distill", "train one fast student on an ensemble's soft targets, K-fold and one final model",
            "fer-kaggle distill --teacher stack --student vgg_fast16 --alpha 0.5 --temperature 2", distill_arguments,
            run_distill, locks=("oof_dir",)),
]
