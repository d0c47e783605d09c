"""The Qt binding the app ships with keeps Python's reference counts: a long session must not
die of it."""

from __future__ import annotations

import gc
import sys


def test_qt_calls_that_return_nothing_keep_none_alive(qtbot):
    """PySide6 6.12.0 under Python 3.11 drops a reference to ``None`` at every call of a
    method that returns nothing; each redraw of the training monitor makes hundreds, and half
    an hour into a fine-tune the app died ("deallocating None"). On Pythons where ``None`` is
    immortal the count never moves and this holds trivially."""
    from PySide6.QtWidgets import QLabel

    label = QLabel()
    qtbot.addWidget(label)
    gc.collect()
    before = sys.getrefcount(None)
    for _ in range(2000):
        label.setText("x")
        label.resize(10, 10)
    gc.collect()
    assert sys.getrefcount(None) > before - 100
