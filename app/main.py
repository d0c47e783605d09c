"""The ``ncl-forensics`` command: a subcommand runs the Qt-free CLI, ``--self-test`` checks the
install or bundle headless (``app.selftest``), anything else opens the GUI (on the images or
folders named, if any). A first word that is neither a command nor a path (``ncl-forensics
frobnicate``) is a mistyped command: the CLI says so, with the list of commands, and exits 2.

Qt is imported only on the GUI path, so ``ncl-forensics analyze …`` works on a headless server
without a display or Qt's system libraries.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path

from ncl_core.cli import SUBCOMMANDS, command_word


def main(argv: list[str] | None = None) -> int:
    # First, before anything else: a frozen (PyInstaller) build re-executes itself for workers.
    multiprocessing.freeze_support()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["--self-test"]:
        from app.selftest import run_self_test

        return run_self_test()
    # The CLI's global options may come before its subcommand: `ncl-forensics --debug batch …`.
    command = argv[1:] if argv[:1] == ["--debug"] else argv
    word = command_word(argv)
    if command and (
        command[0] in SUBCOMMANDS
        or command[0] in ("-h", "--help", "--version")
        or (word is not None and not _is_path(word))
    ):
        from ncl_core.cli import main as cli_main

        return cli_main(argv)
    # The window analyzes far more than it trains: torch's idle threads sleep, as for the
    # commands that analyze (a fine-tuning step is a few per cent slower).
    from ncl_core.cpu import prefer_sleeping_threads

    prefer_sleeping_threads()
    from app.gui import run_gui

    return run_gui(argv)


def _is_path(word: str) -> bool:
    """Whether the GUI should open ``word``: a file or folder there, or something written as a
    path (a folder separator or a file extension) that the window reports if it is missing.
    A bare word like ``frobnicate`` is a mistyped command."""
    if os.path.lexists(word):
        return True
    separators = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    return any(sep in word for sep in separators) or bool(Path(word).suffix)


if __name__ == "__main__":
    sys.exit(main())
