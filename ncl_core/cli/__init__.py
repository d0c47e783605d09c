"""The ``ncl-forensics`` command line (Qt-free): analyze, batch, train, finetune, eval, calibrate,
synth, models, sets, verify, sign, keygen. Each subcommand is one module of this package with its ``add_parser`` and its
``run``; docs/CLI.md is generated from the parser built here.

Exit codes: 0 all good, 1 some inputs failed (each reported) or the run failed (a full disk, a
training error), 2 usage error. User errors are one-line messages; ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ncl_core import __version__
from ncl_core.cli import analyze, batch, calibrate, evaluate, models, sets, synth, train, verify
from ncl_core.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from ncl_core.cli.evaluate import format_eval_table
from ncl_core.errors import UsageError

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "SUBCOMMANDS",
    "UsageError",
    "build_parser",
    "format_eval_table",
    "main",
    "run",
]

SUBCOMMANDS = (
    "analyze",
    "batch",
    "train",
    "finetune",
    "eval",
    "calibrate",
    "synth",
    "models",
    "sets",
    "verify",
    "sign",
    "keygen",
)
# In the order of the help; train.py adds both train and finetune, verify.py verify, sign, keygen.
_COMMANDS = (analyze, batch, train, evaluate, calibrate, synth, models, sets, verify)

# Under their old names, for the tests that build a training run or its printer from flags.
_train_config = train.train_config
_train_printer = train.train_printer


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ncl-forensics",
        description="Image manipulation localization (NCL). Without a subcommand, opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"ncl-forensics {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in _COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for --nproc to pass on
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    if args.command == "models" and args.action != "list" and not args.target:
        parser.error(f"models {args.action} needs a model id, name or file")
    return run(args)


def _error_label() -> str:
    """``error``, or ``error (rank R)`` in one of several training processes."""
    import os

    if os.environ.get("WORLD_SIZE", "1") not in ("", "0", "1") and "RANK" in os.environ:
        return f"error (rank {os.environ['RANK']})"
    return "error"


def run(args: argparse.Namespace) -> int:
    """Run a parsed command, turning user errors into one line and an exit code.

    Sorted by ``ncl_core.errors.classify``, as the GUI sorts its jobs: a failed run (a report that
    could not be written, a full disk) exits 1, something the user can fix exits 2.
    """
    from ncl_core.errors import classify

    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        kind = classify(exc)
        if args.debug or kind == "bug":
            raise
        from ncl_core.cli.common import shown

        print(f"{_error_label()}: {shown(exc)}", file=sys.stderr)
        return EXIT_FAILED if kind == "failed" else EXIT_USAGE
