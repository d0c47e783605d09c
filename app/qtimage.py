"""numpy arrays <-> Qt images, without per-pixel Python loops."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage, QPixmap


def qimage_rgb(array: np.ndarray) -> QImage:
    """An RGB uint8 H x W x 3 array as a QImage that owns a copy of the pixels."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected H x W x 3, got {array.shape}")
    h, w = array.shape[:2]
    return QImage(array.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def pixmap_rgb(array: np.ndarray) -> QPixmap:
    """An RGB uint8 H x W x 3 array as a QPixmap (GUI thread only)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    h, w = array.shape[:2]
    # fromImage copies, so the QImage may borrow the array's buffer while it is alive here.
    image = QImage(array.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return QPixmap.fromImage(image)


def array_from_qimage(image: QImage) -> np.ndarray:
    """An RGB uint8 H x W x 3 copy of a QImage (used by tests and screenshots)."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w, stride = image.height(), image.width(), image.bytesPerLine()
    buffer = np.frombuffer(image.constBits(), dtype=np.uint8, count=h * stride)
    return buffer.reshape(h, stride)[:, : 3 * w].reshape(h, w, 3).copy()
