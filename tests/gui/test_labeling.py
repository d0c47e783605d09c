"""Analysis view: a mask painted over the image (brush, eraser, box, polygon, undo), started
from the model's mask, kept with a copy of the image in a labeled set; the Training view lists
the set and trains from it."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest

from app.main_window import TAB_TRAINING

from gui_helpers import wait_analysis


def _at(viewer, x, y):
    return viewer.mapFromScene(QPointF(x, y))


def _click(viewer, x, y, button=Qt.MouseButton.LeftButton):
    QTest.mouseClick(viewer.viewport(), button, Qt.KeyboardModifier.NoModifier, _at(viewer, x, y))


def _drag(viewer, start, end, button=Qt.MouseButton.LeftButton):
    port, mods = viewer.viewport(), Qt.KeyboardModifier.NoModifier
    QTest.mousePress(port, button, mods, _at(viewer, *start))
    QTest.mouseMove(port, _at(viewer, *end))
    QTest.mouseRelease(port, button, mods, _at(viewer, *end))


def test_paint_a_mask_from_the_models_and_keep_it_in_a_set(qtbot, window, image_file):
    from ncl_core.training.labeled_sets import LabeledSets

    view = window.analysis
    window.open_paths([image_file])
    wait_analysis(qtbot, view)
    box, labeler, viewer = view.label_box, view.labeler, view.viewer
    assert not box.add_button.isEnabled()
    box.edit_button.setChecked(True)
    assert labeler.active()
    model_mask = view.analysis.probability >= view.threshold()
    assert np.array_equal(labeler.mask(), model_mask)  # it starts from the model's mask

    box.clear_button.click()
    assert not labeler.mask().any()
    box.set_tool("box")
    _drag(viewer, (10, 10), (40, 30))
    mask = labeler.mask()
    assert mask[15, 20] and not mask[50, 60]
    assert 0.8 < mask.sum() / (30 * 20) < 1.3
    box.set_tool("eraser")
    box.size_spin.setValue(3)
    _click(viewer, 20, 15)
    assert not labeler.mask()[15, 20] and labeler.mask()[25, 35]
    box.undo_button.click()
    assert labeler.mask()[15, 20]
    box.set_tool("polygon")
    for x, y in ((70, 50), (110, 50), (110, 90)):
        _click(viewer, x, y)
    QTest.mouseDClick(viewer.viewport(), Qt.MouseButton.LeftButton, pos=_at(viewer, 110, 90))
    assert labeler.mask()[60, 100] and not labeler.mask()[85, 75]
    box.set_tool("brush")
    _click(viewer, 5, 80)
    assert labeler.mask()[80, 5]
    painted = labeler.mask()

    before = (image_file.read_bytes(), sorted(image_file.parent.iterdir()))
    box.set_combo.setEditText("cases")
    job = box.add_to_set()
    qtbot.waitUntil(lambda: not job.is_running(), timeout=10_000)
    assert "Added photo.png to set cases" in box.status.text()
    (item,) = LabeledSets().get("cases").items
    from PIL import Image

    stored = np.asarray(Image.open(LabeledSets().get("cases").path / item.mask)) > 0
    assert np.array_equal(stored, painted)
    assert item.source == str(image_file.resolve())
    assert (image_file.read_bytes(), sorted(image_file.parent.iterdir())) == before

    # A bad set name is said where it is typed; nothing is written.
    box.set_combo.setEditText("../elsewhere")
    assert box.add_to_set() is None and "cannot name a set" in box.status.text()

    # The Training view lists the set and trains from it.
    window.tabs.setCurrentIndex(TAB_TRAINING)
    form = window.training.form
    index = form.set_combo.findData("cases")
    assert index > 0 and "1 images" in form.set_combo.itemText(index)
    form.set_combo.setCurrentIndex(index)
    assert not form.data_field.isEnabled() and "Too few" in form.data_summary.text()
    form.data_field.set_text("")
    config = form.build_config()
    assert config.labeled_set == "cases"
    assert config.data == (str(LabeledSets().path("cases")),)

    # Opening another image stops editing; the viewer pans again.
    other = image_file.parent.parent / "other" / "second.png"
    other.parent.mkdir()
    other.write_bytes(image_file.read_bytes())
    window.open_paths([other])
    wait_analysis(qtbot, view)
    assert not labeler.active() and not box.edit_button.isChecked()
