"""Helpers for the pytest-qt tests (GUI and reliability suites)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
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
    enter = QDragEnterEvent(QPoint(20, 20), *args)  # an integer position (QDropEvent: float)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(widget, QDropEvent(QPointF(20, 20), *args))


def configure_training(view, data: Path, steps: int, workers: int = 0) -> None:
    """Fill the Training view for a tiny CPU run: ResNet-18 preset, 64 px, batch 2."""
    form = view.form
    form.data_field.set_text(str(data))
    form.base_combo.setCurrentIndex(form.base_combo.findData("preset:resnet18"))
    form.steps_spin.setValue(steps)
    form.epochs_spin.setValue(1)
    form.batch_spin.setValue(2)
    form.size_spin.setValue(64)
    form.workers_spin.setValue(workers)
    form.device_combo.setCurrentText("cpu")
