"""`leaderboard`, `blend`, `submit` and `submissions`: from OOF predictions to Kaggle."""

from pathlib import Path

from fer_kaggle.progress import Stopwatch
from fer_kaggle.cli.common import Command, load_folds, names, print_leaderboard


def run_leaderboard(args):
    from fer_kaggle.leaderboard import write_leaderboard

    rows = write_leaderboard(args.oof_dir, _metric_in_use(args.data_dir))
    if not rows:
        print(f"no finished variants in {args.oof_dir}/ yet: run `fer-kaggle cv` (or `make cv`)")
        return
    print_leaderboard(rows)


def _metric_in_use(data_dir):
    from fer_kaggle.data.store import spec_in_use

    spec = spec_in_use(data_dir)
    return spec.metric if spec else None


def run_blend(args):
    from fer_kaggle.blend import run_blend
    from fer_kaggle.leaderboard import write_leaderboard
    from fer_kaggle.data import store

    comp = store.load(args.data_dir)
    folds_meta, folds = load_folds(args.oof_dir, comp)
    watch = Stopwatch()
    manifest = run_blend(comp, folds, folds_meta, args.oof_dir, args.submissions_dir, method=args.method,
                         members=names(args.members), name=args.name, seed=args.seed,
                         log=lambda m: print(watch.line(m), flush=True),
                         progress=lambda m, f: print(watch.line(f"blend: {m}", f), flush=True))
    write_leaderboard(args.oof_dir, comp.spec.metric)
    weights = ", ".join(f"{k} {v:.3f}" for k, v in manifest["weights"].items())
    cv = manifest["cv"]
    print(f"blend: {manifest['method']} of {len(manifest['members'])} members ({weights}); {manifest['decision']}")
    print(f"  {scored_on(cv)} {cv['metric']} {cv['score']:.4f} (accuracy {cv['accuracy']:.4f}, log loss "
          f"{cv['log_loss']:.4f})")
    if cv.get("chosen_from", 1) > 1:  # the chosen method's score is the best of several: what the choice is worth
        print(f"  the choice among {cv['chosen_from']} methods, made fold by fold without each fold's rows: "
              f"{cv['metric']} {cv['selection_nested_score']:.4f}")
    if "demo_test_accuracy" in manifest:
        print(f"  demo test {cv['metric']} {manifest['demo_test_score']:.4f}")
    print(f"  wrote {args.submissions_dir}/{manifest['csv']} (the sample submission's format) and its manifest")


def blend_arguments(p):
    p.add_argument("--method", default="best", help="best (default: chosen by the competition's metric in nested CV), "
                                                    "mean, weighted, caruana, stack, rank")
    p.add_argument("--members", help="comma-separated variant names or glob patterns (default: every finished variant)")
    p.add_argument("--name", help="name of the submission file (default: the method)")
    p.add_argument("--seed", type=int, default=0)


def run_submit(args):
    from fer_kaggle import layout
    from fer_kaggle.data import store
    from fer_kaggle.errors import SubmissionError
    from fer_kaggle.submission import read_submission
    from fer_kaggle.submit import KaggleClient, record_score, submit_once, wait_for_score

    path = Path(args.path) if args.path else _latest_submission(args.submissions_dir)
    layout.checked_submission(path)  # never an orphan CSV, nor one changed since its blend
    comp = store.load(args.data_dir)
    expected = comp.sample_ids if comp.sample_ids is not None else comp.test_ids
    ids = read_submission(path, comp.spec, expected)
    print(f"submit: {path} is valid ({len(ids)} rows)")
    if args.dry_run:
        return
    if not args.competition:
        raise SubmissionError("name the competition: --competition SLUG (or COMPETITION=SLUG for make)")
    client = KaggleClient()
    record = submit_once(client, path, args.competition, args.message, again=args.again)
    if record.get("already"):
        print(f"submit: {path.name} was already uploaded to {args.competition} at {record.get('submitted_at')}: not "
              f"sent again (--again spends another of the day's submissions on it)")
    else:
        print(f"submit: {'uploaded to' if record['attempts'] else 'an earlier, stopped upload reached'} "
              f"{args.competition}" + ("" if record["attempts"] else ": recorded, not sent again"))
    if record.get("public_score") is not None:
        print(f"submit: public score {record['public_score']} (recorded before)")
    elif args.wait:
        score = wait_for_score(client, args.competition, path.name, timeout=args.timeout)
        if score is None:
            print(f"submit: no score after {args.timeout:.0f}s; `fer-kaggle submissions` shows it once recorded")
        else:
            record_score(path, score)
            print(f"submit: public score {score['public_score']}")


def _latest_submission(directory):
    from fer_kaggle import layout
    from fer_kaggle.errors import SubmissionError

    latest = layout.latest_submission(directory)
    if latest is None:
        raise SubmissionError(f"no submission in {directory}/: run `fer-kaggle blend` (or `make blend`) first")
    return latest[0]


def submit_arguments(p):
    import os

    p.add_argument("path", nargs="?", help="the submission CSV (default: the latest in submissions/)")
    p.add_argument("--latest", action="store_true", help="the latest submission (the default)")
    p.add_argument("--competition", default=os.environ.get("COMPETITION"), help="Kaggle competition slug")
    p.add_argument("--message", default="fer-kaggle", help="submission description")
    p.add_argument("--wait", action="store_true", help="poll until the score is known and record it")
    p.add_argument("--timeout", type=float, default=600, help="seconds to wait for the score (default 600)")
    p.add_argument("--again", action="store_true", help="upload a submission already uploaded to this competition")
    p.add_argument("--dry-run", action="store_true", help="validate only")


def run_submissions(args):
    from fer_kaggle import layout

    found = layout.submissions(args.submissions_dir)
    if not found:
        print(f"no submissions in {args.submissions_dir}/ yet")
        return
    if args.latest:
        m = found[-1][1]
        cv = m["cv"]
        print(f"submission: {Path(args.submissions_dir) / m['csv']} ({m['method']} of {', '.join(m['members'])})")
        print(f"{scored_on(cv)} {cv.get('metric', 'accuracy')} {cv.get('score', cv['accuracy']):.4f} (accuracy "
              f"{cv['accuracy']:.4f}, log loss {cv['log_loss']:.4f})")
        if Path("reports", "index.html").exists():
            print(f"report: {Path('reports', 'index.html').resolve()}")
        return
    print(f"{'submission':44s} {'method':9s} {'metric':>9s} {'cv':>7s} {'cv_acc':>7s} {'public':>7s} {'private':>7s}")
    for path, m in found:
        cv, kaggle = m["cv"], m.get("kaggle") or {}
        public, private = kaggle.get("public_score"), kaggle.get("private_score")
        print(f"{path.stem:44s} {m['method']:9s} {cv.get('metric', 'accuracy')[:9]:>9s} "
              f"{cv.get('score', cv['accuracy']):7.4f} {cv['accuracy']:7.4f} "
              f"{'' if public is None else f'{public:.4f}':>7s} {'' if private is None else f'{private:.4f}':>7s}")


def submissions_arguments(p):
    p.add_argument("--latest", action="store_true", help="only the newest: its path, nested-CV score and the report page")


def scored_on(cv):
    """How a manifest's score was measured: nested CV over every row, or a holdout's rows."""
    return f"holdout ({cv['rows']} rows, nested)" if cv.get("kind") == "holdout" else "nested-CV"


COMMANDS = [
    Command("leaderboard", "rank the variants (and blends) in oof/ by the competition's metric", "fer-kaggle leaderboard",
            lambda p: None, run_leaderboard),
    Command("blend", "fit a blend on the OOF predictions; write a validated submission in the competition's format",
            "fer-kaggle blend --method best\n  fer-kaggle blend --method caruana --members 'vgg_*'", blend_arguments,
            run_blend, locks=("oof_dir",)),
    Command("submit", "validate a submission against the sample submission and upload it with the Kaggle API",
            "fer-kaggle submit --latest --dry-run", submit_arguments, run_submit,
            locks=("submissions_dir",)),
    Command("submissions", "list local submissions with CV and leaderboard scores", "fer-kaggle submissions --latest",
            submissions_arguments, run_submissions),
]
