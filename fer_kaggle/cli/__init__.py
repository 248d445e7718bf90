"""The `fer-kaggle` command line: thin subcommands over the library, each command's arguments,
example and handler together in the module of its stage (data, train, submissions, inspect).

Library errors (fer_kaggle.errors) become one line on stderr and exit status 2.
"""

import argparse
import errno
import os
import sys

from fer_kaggle.errors import FerKaggleError, PieceEnded

PIECE_ENDED_STATUS = 75  # EX_TEMPFAIL: not finished, run the same command again

GLOBAL_OPTIONS = (  # flag, environment variable, default, what
    ("--data-dir", "FER_KAGGLE_DATA_DIR", "data", "the data folder"),
    ("--oof-dir", "FER_KAGGLE_OOF_DIR", "oof", "the OOF folder"),
    ("--tuning-dir", "FER_KAGGLE_TUNING_DIR", "tuning", "the tuning folder"),
    ("--submissions-dir", "FER_KAGGLE_SUBMISSIONS_DIR", "submissions", "the submissions folder"),
)


def commands():
    from fer_kaggle.cli import data, inspect, submissions, train

    return [c for module in (data, train, submissions, inspect) for c in module.COMMANDS]


def build_parser():
    parser = argparse.ArgumentParser(prog="fer-kaggle", description="Win Kaggle-style image classification "
                                                                    "competitions: K-fold CNNs, blending, submission.")
    for flag, env, default, what in GLOBAL_OPTIONS:
        parser.add_argument(flag, default=os.environ.get(env, default), help=f"{what} (default: {default})")
    # The same options after the subcommand too (`fer-kaggle data --data-dir D`); given there, they win.
    common = argparse.ArgumentParser(add_help=False)
    for flag, _, default, what in GLOBAL_OPTIONS:
        common.add_argument(flag, default=argparse.SUPPRESS, help=f"{what} (default: {default})")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in commands():
        p = sub.add_parser(command.name, help=command.help, description=command.help, parents=[common],
                           epilog=f"example:\n  {command.example}", formatter_class=argparse.RawDescriptionHelpFormatter)
        command.arguments(p)
        p.set_defaults(command_spec=command)
    return parser


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's C++ log lines out of the output
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX: parallel fold jobs share one GPU
    args = build_parser().parse_args(argv)
    command = args.command_spec
    try:
        from contextlib import ExitStack

        from fer_kaggle.lock import exclusive

        with ExitStack() as held:
            for folder in command.locks:
                held.enter_context(exclusive(getattr(args, folder), command.name))
            command.run(args)
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
    except OSError as e:  # a full disk met outside an artifact's write (a folder, a lock file)
        if e.errno != errno.ENOSPC:
            raise
        print(f"fer-kaggle {args.command}: error: the disk is full ({e.filename or 'a write'}): free some space and "
              f"run the same command again", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
