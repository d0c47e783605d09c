"""The ``ncl-forensics`` command line (Qt-free): analyze, batch, train, finetune, pretrain, eval,
calibrate, average, synth, models, sets, verify, sign, keygen. Each subcommand is one module of this package with its ``add_parser`` and its
``run``; docs/CLI.md is generated from the parser built here.

Exit codes: 0 all good, 1 some inputs failed (each reported) or the run failed (a full disk, a
training error), 2 usage error. User errors are one-line messages; ``--debug`` shows tracebacks.

A usage error is said before anything heavy loads: an unknown command or option (with the
subcommand's own usage), a flag out of range, a model that is not there, inputs that do not
exist. Only then do torch and the model load.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence

from ncl_core import __version__
from ncl_core.cli import (
    analyze,
    average,
    batch,
    calibrate,
    evaluate,
    models,
    pretrain,
    sets,
    synth,
    train,
    verify,
)
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
    "pretrain",
    "eval",
    "calibrate",
    "average",
    "synth",
    "models",
    "sets",
    "verify",
    "sign",
    "keygen",
)
# In the order of the help; train.py adds both train and finetune, verify.py verify, sign, keygen.
_COMMANDS = (
    analyze,
    batch,
    train,
    pretrain,
    evaluate,
    calibrate,
    average,
    synth,
    models,
    sets,
    verify,
)

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


def command_word(argv: Sequence[str]) -> str | None:
    """The word of ``argv`` that names the subcommand (after the global options), or None."""
    for word in argv:
        if word == "--debug":
            continue
        return None if word.startswith("-") else word
    return None


def unknown_command(word: str) -> str:
    """The message for a word that is no subcommand: the commands, and the nearest one."""
    close = difflib.get_close_matches(word, SUBCOMMANDS, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    from ncl_core.cli.common import shown

    return f"unknown command '{shown(word)}' (choose from {', '.join(SUBCOMMANDS)}){hint}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    word = command_word(argv)
    if word is not None and word not in SUBCOMMANDS:
        parser.error(unknown_command(word))  # exits 2, with the usage
    args, extras = parser.parse_known_args(argv)
    args.argv = argv  # for --nproc to pass on
    command_parser = _subparser(parser, args.command)
    if extras:
        # An option the subcommand does not know is its mistake: its usage, not the top level's
        # (unless it came before the subcommand).
        before = argv[: argv.index(args.command)] if args.command in argv else argv
        culprit = parser if command_parser is None or set(extras) & set(before) else command_parser
        culprit.error(_unrecognized(extras, culprit))
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    if args.command == "models" and args.action != "list" and not args.target:
        command_parser.error(f"models {args.action} needs a model id, name or file")
    return run(args)


def _subparser(parser: argparse.ArgumentParser, command: str | None):
    """The parser of ``command`` (None without one)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command:
            return action.choices.get(command)
    return None


def _unrecognized(extras: list[str], parser: argparse.ArgumentParser) -> str:
    """argparse's message for arguments no parser took, with the nearest option to a typo."""
    from ncl_core.cli.common import shown

    message = f"unrecognized arguments: {shown(' '.join(extras))}"
    options = [o for action in parser._actions for o in action.option_strings]
    for extra in extras:
        if extra.startswith("--"):
            close = difflib.get_close_matches(extra.split("=", 1)[0], options, n=1)
            if close:
                return f"{message}; did you mean {close[0]}?"
    return message


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
