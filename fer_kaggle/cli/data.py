"""`data`, `folds` and `pack`: choosing the competition, settling its spec, the folds, and the
one-file pack to carry it to a GPU machine."""

import argparse
import os

from fer_kaggle.cli.common import Command, bincount
from fer_kaggle.errors import ConfigError

DEFAULT_COMPETITION = os.environ.get("COMPETITION") or "challenges-in-representation-learning-facial-expression-recognition-challenge"


def data_arguments(p):
    group = p.add_mutually_exclusive_group()
    group.add_argument("--source", help="a competition zip, an extracted directory, a CSV, or a device pack (.npz)")
    group.add_argument("--download", nargs="?", const=True, metavar="SLUG",
                       help="download a competition with the Kaggle API (SLUG, else --competition)")
    group.add_argument("--demo", nargs="?", const="ntu", metavar="LAYOUT",
                       help="use a synthetic demo competition: ntu (FER-like faces, the default), digits, images, "
                            "folders")
    p.add_argument("--competition", default=DEFAULT_COMPETITION, help="Kaggle competition slug (default: $COMPETITION)")
    spec = p.add_argument_group("the competition spec (what the files do not settle; each overrides the inference)")
    spec.add_argument("--metric", help="accuracy, log_loss, macro_f1, roc_auc or qwk")
    spec.add_argument("--image-size", metavar="N|HxW", help="bring every image to this size (resized)")
    spec.add_argument("--channels", type=int, choices=(1, 3), help="1 (grayscale) or 3 (RGB)")
    spec.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                      help="whether a horizontal mirror keeps an image's class (augmentation and TTA use it only then)")
    spec.add_argument("--submission", choices=("label", "probabilities", "positive"),
                      help="what the submission holds: the label, a probability per class, or the positive class's")
    spec.add_argument("--class-names", metavar="A,B,...", help="names of the classes, in code order (for figures)")
    spec.add_argument("--spec", metavar="FILE", help="a spec file (data/spec.json, edited): its values override")


def overrides(args):
    """The spec overrides the options give (None: keep those already in use for this source)."""
    from fer_kaggle.spec import read_spec

    given = {"metric": args.metric, "channels": args.channels, "flip": args.flip, "submission": args.submission,
             "image_size": _size(args.image_size), "class_names": _list(args.class_names)}
    if args.spec:
        spec = read_spec(args.spec)
        from_file = {"metric": spec.metric, "channels": spec.channels, "flip": spec.flip,
                     "image_size": [spec.height, spec.width], "class_names": list(spec.class_names),
                     "resize": spec.resize, "submission": spec.submission}
        given = {**from_file, **{k: v for k, v in given.items() if v is not None}}
    given = {k: v for k, v in given.items() if v is not None}
    return given or None


def _size(text):
    if not text:
        return None
    parts = text.lower().split("x")
    try:
        h, w = (int(parts[0]), int(parts[0])) if len(parts) == 1 else (int(parts[0]), int(parts[1]))
    except ValueError:
        raise ConfigError(f"--image-size {text!r}: give N or HxW (e.g. 64 or 48x64)") from None
    if min(h, w) < 8:
        raise ConfigError(f"--image-size {text!r}: at least 8 pixels a side")
    return [h, w]


def _list(text):
    return [n.strip() for n in text.split(",")] if text else None


def run_data(args):
    from fer_kaggle.data import store
    from fer_kaggle.data.download import kaggle_credentials_present

    credentials = args.competition if kaggle_credentials_present() else None
    slug = args.download if isinstance(args.download, str) else args.competition
    comp, kind = store.prepare(args.data_dir, source=args.source, download=slug if args.download else None,
                               demo=args.demo, credentials=credentials, overrides=overrides(args))
    if kind == "demo" and not args.demo:
        print("no competition data given (--source/DATA) and no Kaggle credentials: using the synthetic demo competition")
    spec = comp.spec
    counts = bincount(comp.y_train, spec.num_classes)
    shown = ", ".join(f"{n} {c}" for n, c in list(zip(spec.class_names, counts))[:10])
    more = f", ... ({spec.num_classes} classes)" if spec.num_classes > 10 else ""
    print(f"data ({kind}, {spec.competition or spec.layout}): {comp.source}")
    print(f"  train: {len(comp.y_train)} images ({shown}{more})")
    print(f"  test:  {len(comp.test_ids)} images" + (", labels known (demo)" if comp.test_labels is not None else ""))
    print("spec (data/spec.json):")
    for line in spec.summary_lines():
        print(line)


def run_folds(args):
    from fer_kaggle.data import store, write_folds
    from fer_kaggle.data.folds import rare_classes

    comp = store.load(args.data_dir)
    folds, written = write_folds(args.oof_dir, comp.y_train, comp.identity, k=args.k, seed=args.seed, force=args.force)
    sizes = "/".join(str(int((folds == f).sum())) for f in range(folds.max() + 1))
    verb = "wrote" if written else "kept"
    print(f"folds: {verb} {args.oof_dir}/folds.csv: {folds.max() + 1} stratified folds of {sizes} rows (seed {args.seed})")
    rare = rare_classes(comp.y_train, folds.max() + 1)
    if len(rare):
        counts = bincount(comp.y_train, comp.spec.num_classes)
        named = ", ".join(f"{comp.spec.labels[c]} {counts[c]}" for c in rare[:5]) + (", ..." if len(rare) > 5 else "")
        print(f"folds: fewer training rows than folds in {len(rare)} class{'es' if len(rare) > 1 else ''} ({named}): kept, "
              f"each row in a fold of its own; a class of one row is unseen by the model that predicts it out of fold")


def folds_arguments(p):
    p.add_argument("--k", type=int, default=5, help="number of folds (default 5)")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed (default 0)")
    p.add_argument("--force", action="store_true", help="replace existing folds")


def run_pack(args):
    from fer_kaggle.data import store
    from fer_kaggle.data.readers.device import write_pack

    comp = store.load(args.data_dir)
    path = write_pack(args.out, comp, image_format=args.format.upper())
    print(f"pack: wrote {path} ({os.path.getsize(path) / 2**20:.1f} MiB; `fer-kaggle data --source {path}` reads it, "
          f"with the same data identity)")


def pack_arguments(p):
    p.add_argument("out", help="the .npz file to write")
    p.add_argument("--format", default="png", choices=("png", "jpeg"), help="image encoding (png: lossless, the default)")


COMMANDS = [
    Command("data", "choose the competition, validate every row and image, settle its spec, cache the arrays",
            "fer-kaggle data --source ../shared/data/cifar-10.zip\n  fer-kaggle data --download digit-recognizer\n"
            "  fer-kaggle data --source seedlings.zip --metric macro_f1 --no-flip\n"
            "  fer-kaggle data --demo images --data-dir /tmp/demo", data_arguments, run_data),
    Command("folds", "write oof/folds.csv: stratified K folds of the training rows", "fer-kaggle folds --k 5 --seed 0",
            folds_arguments, run_folds, locks=("oof_dir",)),
    Command("pack", "write the competition in use as one .npz (a device pack, to carry to a GPU machine)",
            "fer-kaggle pack .device/cifar-10.npz", pack_arguments, run_pack),
]
