"""The `fer-kaggle` command line: thin subcommands over the library.

Library errors (fer_kaggle.errors) become one line on stderr and exit status 2.
"""

import argparse
import os
import sys

from fer_kaggle import CLASS_NAMES
from fer_kaggle.errors import FerKaggleError

DEFAULT_COMPETITION = os.environ.get("COMPETITION") or "challenges-in-representation-learning-facial-expression-recognition-challenge"


def cmd_data(args):
    from fer_kaggle.data import store

    credentials = args.competition if store.kaggle_credentials_present() else None
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
    from fer_kaggle.bench import bench_parse
    from fer_kaggle.data import store

    source = args.source or store.prepare(args.data_dir)[0].source
    print(f"parsing train.csv of {source} (best of {args.repeats}):")
    for name, seconds, ratio in bench_parse(source, repeats=args.repeats):
        print(f"  {name:36s} {seconds:8.3f} s   {ratio:6.1f}x faster than the baseline")


def _bincount(labels):
    import numpy as np

    return np.bincount(labels, minlength=len(CLASS_NAMES)).tolist()


def build_parser():
    parser = argparse.ArgumentParser(prog="fer-kaggle", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("FER_KAGGLE_DATA_DIR", "data"), help="the data folder (default: data)")
    parser.add_argument("--oof-dir", default=os.environ.get("FER_KAGGLE_OOF_DIR", "oof"), help="the OOF folder (default: oof)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("data", help="choose the competition data, validate it and cache the parsed arrays")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--source", help="a competition zip, an extracted directory, or a CSV (train.csv or fer2013.csv)")
    group.add_argument("--download", action="store_true", help="download --competition with the Kaggle API")
    group.add_argument("--demo", action="store_true", help="use the synthetic demo competition")
    p.add_argument("--competition", default=DEFAULT_COMPETITION, help="Kaggle competition slug (default: $COMPETITION)")
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("folds", help="write oof/folds.csv: stratified K folds of the training rows")
    p.add_argument("--k", type=int, default=5, help="number of folds (default 5)")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed (default 0)")
    p.add_argument("--force", action="store_true", help="replace existing folds")
    p.set_defaults(func=cmd_folds)

    p = sub.add_parser("bench", help="benchmarks, each against its baseline in the same run")
    p.add_argument("--source", help="competition to parse (default: the one in use)")
    p.add_argument("--repeats", type=int, default=1, help="best of N runs (default 1)")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except FerKaggleError as e:
        print(f"fer-kaggle {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fer-kaggle {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
