"""Helpers shared by the GUI tests."""

from __future__ import annotations


def wait_analysis(qtbot, view, timeout: int = 30_000) -> None:
    """Wait until the analysis view has a result and its job has ended."""
    qtbot.waitUntil(lambda: view.analysis is not None and not view.is_busy(), timeout=timeout)
