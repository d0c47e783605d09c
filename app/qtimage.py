"""numpy arrays <-> Qt images, without per-pixel Python loops."""

from __future__ import annotations

import sys

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


def rgb32_image(array: np.ndarray) -> QImage:
    """An RGB uint8 H x W x 3 array as an owning QImage in ``Format_RGB32``.

    That is the format pixmaps use on raster platforms, so ``QPixmap.fromImage`` shares the
    pixels instead of copying them (safe in any thread).
    """
    array = np.ascontiguousarray(array, dtype=np.uint8)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected H x W x 3, got {array.shape}")
    h, w = array.shape[:2]
    image = QImage(array.data, w, h, 3 * w, QImage.Format.Format_RGB888)
    return image.convertToFormat(QImage.Format.Format_RGB32)


class _Pixels:
    """The bytes of a QImage for numpy; arrays made from it keep the QImage alive."""

    def __init__(self, image: QImage) -> None:
        self.image = image
        address = np.frombuffer(image.constBits(), dtype=np.uint8).ctypes.data
        self.__array_interface__ = {
            "shape": (image.height(), image.bytesPerLine()),
            "typestr": "|u1",
            "data": (address, True),  # read-only: the pixels may be shared with a pixmap
            "version": 3,
        }


def rgb_view(image: QImage) -> np.ndarray:
    """A read-only RGB uint8 H x W x 3 view (no copy) of a ``Format_RGB32`` QImage's pixels.

    The view holds a reference to the image, so it stays valid however long it is kept.
    """
    if image.format() != QImage.Format.Format_RGB32:
        raise ValueError(f"expected a Format_RGB32 image, got {image.format()}")
    h, w = image.height(), image.width()
    rows = np.asarray(_Pixels(image))
    # Each pixel is the 32-bit word 0xffRRGGBB, in the machine's byte order.
    pixel = rows[:, : 4 * w].reshape(h, w, 4)
    return pixel[..., 2::-1] if sys.byteorder == "little" else pixel[..., 1:]


def array_from_qimage(image: QImage) -> np.ndarray:
    """An RGB uint8 H x W x 3 copy of a QImage (used by tests and screenshots)."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w, stride = image.height(), image.width(), image.bytesPerLine()
    buffer = np.frombuffer(image.constBits(), dtype=np.uint8, count=h * stride)
    return buffer.reshape(h, stride)[:, : 3 * w].reshape(h, w, 3).copy()
