"""The image viewer: zoom in log steps, fit / 100 %, pixel under the cursor, synced views."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from app.viewer import ZOOM_STEP, ImageViewer


@pytest.fixture
def viewer(qtbot):
    v = ImageViewer()
    qtbot.addWidget(v)
    v.resize(400, 300)
    v.show()
    qtbot.waitExposed(v)
    v.set_image(np.zeros((100, 200, 3), np.uint8))
    return v


def _wheel(viewer: ImageViewer, notches: int) -> None:
    pos = QPointF(viewer.viewport().rect().center())
    event = QWheelEvent(
        pos,
        viewer.viewport().mapToGlobal(pos),
        QPoint(0, 0),
        QPoint(0, 120 * notches),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(viewer.viewport(), event)


def test_fit_then_wheel_zooms_in_log_steps(viewer):
    assert viewer.is_fit()
    fitted = viewer.zoom()
    assert fitted == pytest.approx(min(400 / 200, 300 / 100), rel=0.05)
    _wheel(viewer, 4)
    assert viewer.zoom() == pytest.approx(fitted * ZOOM_STEP**4)  # four notches double
    assert viewer.zoom() == pytest.approx(fitted * 2)
    _wheel(viewer, -1)
    assert viewer.zoom() == pytest.approx(fitted * ZOOM_STEP**3)
    assert not viewer.is_fit()


def test_double_click_toggles_fit_and_actual_size(qtbot, viewer):
    center = viewer.viewport().rect().center()
    qtbot.mouseDClick(viewer.viewport(), Qt.MouseButton.LeftButton, pos=center)
    assert viewer.zoom() == 1.0
    qtbot.mouseDClick(viewer.viewport(), Qt.MouseButton.LeftButton, pos=center)
    assert viewer.is_fit()


def test_keys_zoom_and_fit(qtbot, viewer):
    qtbot.keyClick(viewer, Qt.Key.Key_1)
    assert viewer.zoom() == 1.0
    qtbot.keyClick(viewer, Qt.Key.Key_Plus)
    assert viewer.zoom() == pytest.approx(ZOOM_STEP)
    qtbot.keyClick(viewer, Qt.Key.Key_0)
    assert viewer.is_fit()


def test_hover_reports_image_pixels(qtbot, viewer):
    viewer.actual_size()
    seen = []
    viewer.hovered.connect(lambda x, y: seen.append((x, y)))
    target = viewer.mapFromScene(QPointF(150.5, 40.5))
    qtbot.mouseMove(viewer.viewport(), target)
    qtbot.waitUntil(lambda: bool(seen))
    at = viewer.mapToScene(target)
    assert seen[-1] == (int(at.x()), int(at.y()))
    assert abs(seen[-1][0] - 150) <= 1 and abs(seen[-1][1] - 40) <= 1
    qtbot.mouseMove(viewer.viewport(), viewer.mapFromScene(QPointF(-20, -20)))
    qtbot.waitUntil(lambda: seen[-1] == (-1, -1))


def test_side_by_side_views_follow_each_other(qtbot, viewer):
    other = ImageViewer()
    qtbot.addWidget(other)
    other.resize(400, 300)
    other.show()
    other.set_image(np.zeros((100, 200, 3), np.uint8))
    viewer.view_changed.connect(lambda: other.follow(viewer))
    viewer.set_zoom(3.0)
    assert other.zoom() == 3.0
    assert (other.view_center() - viewer.view_center()).manhattanLength() < 2


def test_the_rgb_view_of_an_image_shares_its_pixels_with_the_pixmap(qtbot):
    import gc

    from PySide6.QtGui import QPixmap

    from app.qtimage import rgb32_image, rgb_view

    rgb = np.random.default_rng(0).integers(0, 256, (30, 41, 3), dtype=np.uint8)
    image = rgb32_image(rgb)
    pixels = rgb_view(image)
    pixmap = QPixmap.fromImage(image)
    # One copy of the pixels: the pixmap's are the image's, which the array reads.
    shown = pixmap.toImage()
    start = np.frombuffer(shown.constBits(), np.uint8).ctypes.data
    assert start == np.frombuffer(image.constBits(), np.uint8).ctypes.data
    assert start <= pixels.ctypes.data < start + shown.sizeInBytes()
    assert np.array_equal(pixels, rgb) and not pixels.flags.writeable
    # The array keeps the image alive on its own.
    del image, pixmap, shown
    gc.collect()
    assert np.array_equal(pixels[::7], rgb[::7])
