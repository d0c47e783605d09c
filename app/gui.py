"""``run_gui``: the GUI entry point called by ``app.main`` (``ncl-forensics [--samples] [IMG…]``)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from logging.handlers import RotatingFileHandler

from ncl_core import __version__
from ncl_core.paths import APP_NAME, user_log_dir


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="ncl-forensics",
        description="NCL Forensics desktop app. Subcommands (analyze, batch, train, …) run the "
        "command-line tool instead.",
    )
    parser.add_argument(
        "--samples",
        action="store_true",
        help="with no image named, show the first bundled sample (File ▸ Open samples lists "
        "all of them in the Batch view)",
    )
    parser.add_argument("paths", nargs="*", help="images or folders to open")
    return parser.parse_args(argv)


def _setup_logging() -> None:
    """Unexpected errors go to a log file (the window shows one line, never a traceback)."""
    folder = user_log_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = RotatingFileHandler(
            folder / "gui.log", maxBytes=2_000_000, backupCount=2, encoding="utf-8"
        )
    except OSError:
        handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("ncl_forensics")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def apply_style(app) -> None:
    """Fusion with a dark palette: images and heatmaps read best on a dark surround."""
    from PySide6.QtGui import QColor, QPalette

    app.setStyle("Fusion")
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: QColor(45, 45, 50),
        QPalette.ColorRole.WindowText: QColor(225, 225, 230),
        QPalette.ColorRole.Base: QColor(32, 32, 36),
        QPalette.ColorRole.AlternateBase: QColor(50, 50, 56),
        QPalette.ColorRole.ToolTipBase: QColor(60, 60, 66),
        QPalette.ColorRole.ToolTipText: QColor(235, 235, 240),
        QPalette.ColorRole.Text: QColor(225, 225, 230),
        QPalette.ColorRole.Button: QColor(58, 58, 64),
        QPalette.ColorRole.ButtonText: QColor(225, 225, 230),
        QPalette.ColorRole.Highlight: QColor(52, 120, 200),
        QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.Link: QColor(110, 170, 255),
        QPalette.ColorRole.PlaceholderText: QColor(140, 140, 150),
    }
    for role, color in roles.items():
        palette.setColor(role, color)
    for role in (
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
        QPalette.ColorRole.WindowText,
    ):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 120, 128))
    app.setPalette(palette)


def _report_unexpected_errors(window) -> None:
    """A bug in a GUI-thread slot becomes a logged traceback and one line in the window."""
    log = logging.getLogger("ncl_forensics.gui")

    def hook(kind, value, tb) -> None:
        log.error("unexpected error", exc_info=(kind, value, tb))
        window.show_message(
            f"Unexpected error: {kind.__name__}: {value} (details in {user_log_dir() / 'gui.log'})",
            "error",
        )

    sys.excepthook = hook


def run_gui(argv: list[str]) -> int:
    """Open the main window (on ``argv``'s images, or the samples) and run the event loop."""
    args = _parse(argv)
    os.environ.setdefault("QT_API", "pyside6")  # pyqtgraph must bind to PySide6
    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(APP_NAME)
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName("NCL Forensics")
    app.setApplicationVersion(__version__)
    _setup_logging()
    apply_style(app)
    window = MainWindow()
    _report_unexpected_errors(window)
    window.show()
    window.open_startup(args.paths, samples=args.samples)
    if os.environ.get("NCL_REPORT_STARTUP"):
        _report_startup()
    _freeze_when_started()
    return app.exec()


def _freeze_when_started() -> None:
    """Once the event loop runs, move the start-up objects out of the garbage collector's sight.

    Start-up leaves about 420,000 long-lived objects (modules, Qt wrappers, the widgets); every
    full collection walks all of them, a quarter of a second or more on a loaded 2-core
    machine, and one can fall in the middle of a slider drag. ``gc.freeze`` sets them aside,
    once: they are still freed by reference counting, only a reference cycle through them is
    no longer collected (they live as long as the window anyway). The young generations are
    collected first so that start-up's garbage is not kept. Objects made later are collected
    as before.
    """
    from PySide6.QtCore import QTimer

    from ncl_core.cpu import set_aside_long_lived_objects

    QTimer.singleShot(0, set_aside_long_lived_objects)


def _report_startup() -> None:
    """Print when the event loop first runs with the window shown (docs/BUNDLE.md measures
    start-up from the launch to this line)."""
    from PySide6.QtCore import QTimer

    QTimer.singleShot(
        0, lambda: print(f"window shown at {time.time():.3f}", file=sys.stderr, flush=True)
    )
