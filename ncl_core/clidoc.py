"""docs/CLI.md, generated from the argument parser so it can never drift from the code.

python -m ncl_core.clidoc > docs/CLI.md
"""

from __future__ import annotations

import argparse

from ncl_core.cli import build_parser

_INTRO = """# `ncl-forensics` command line

Generated from the argument parser by `python -m ncl_core.clidoc > docs/CLI.md`; a test keeps it
current. `ncl-forensics` without a subcommand opens the desktop app; `python -m ncl_core` is the
same command line without the app.

Exit codes: 0 all good, 1 some inputs failed (each reported) or the run failed (a full disk, a
training error), 2 usage error. Errors print one line; `--debug` shows the traceback.
"""


def _help_text(parser: argparse.ArgumentParser) -> str:
    # A fixed width keeps the generated file identical on every terminal.
    formatter = parser.formatter_class
    parser.formatter_class = lambda prog: formatter(prog, width=100)
    try:
        return parser.format_help()
    finally:
        parser.formatter_class = formatter


def render() -> str:
    parser = build_parser()
    parser.prog = "ncl-forensics"
    parts = [_INTRO, "```\n" + _help_text(parser) + "```\n"]
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        parts.append(f"## `ncl-forensics {name}`\n\n```\n{_help_text(sub)}```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    print(render(), end="")
