"""The ``ncl-forensics`` command: a subcommand runs the Qt-free CLI, ``--self-test`` checks the
install or bundle headless (``app.selftest``), anything else opens the GUI.

Qt is imported only on the GUI path, so ``ncl-forensics analyze …`` works on a headless server
without a display or Qt's system libraries.
"""

from __future__ import annotations

import multiprocessing
import sys

from ncl_core.cli import SUBCOMMANDS


def main(argv: list[str] | None = None) -> int:
    # First, before anything else: a frozen (PyInstaller) build re-executes itself for workers.
    multiprocessing.freeze_support()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv == ["--self-test"]:
        from app.selftest import run_self_test

        return run_self_test()
    # The CLI's global options may come before its subcommand: `ncl-forensics --debug batch …`.
    command = argv[1:] if argv[:1] == ["--debug"] else argv
    if command and (command[0] in SUBCOMMANDS or command[0] in ("-h", "--help", "--version")):
        from ncl_core.cli import main as cli_main

        return cli_main(argv)
    from app.gui import run_gui

    return run_gui(argv)


if __name__ == "__main__":
    sys.exit(main())
