"""Helpers for the pytest-qt tests (GUI and reliability suites)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication


def drop_paths(widget, paths: list[Path]) -> None:
    """Drag ``paths`` over ``widget`` and drop them, as a file manager does."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    args = (
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    enter = QDragEnterEvent(QPointF(20, 20), *args)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(widget, QDropEvent(QPointF(20, 20), *args))


def configure_training(view, data: Path, steps: int, workers: int = 0) -> None:
    """Fill the Training view for a tiny CPU run: ResNet-18 preset, 64 px, batch 2."""
    view.data_field.set_text(str(data))
    view.base_combo.setCurrentIndex(view.base_combo.findData("preset:resnet18"))
    view.steps_spin.setValue(steps)
    view.epochs_spin.setValue(1)
    view.batch_spin.setValue(2)
    view.size_spin.setValue(64)
    view.workers_spin.setValue(workers)
    view.device_combo.setCurrentText("cpu")
