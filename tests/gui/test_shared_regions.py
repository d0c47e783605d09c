"""Batch view: when a batch ends its images are compared, and a region pasted from one into
another is listed under the queue."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

SAMPLES = Path(__file__).resolve().parents[2] / "resources" / "samples"


def _photo(name: str) -> np.ndarray:
    with Image.open(next(SAMPLES.glob(f"*/{name}"))) as im:
        return np.asarray(im.convert("RGB"))


def test_a_shared_region_is_listed_when_the_batch_ends(qtbot, window, tmp_path):
    folder = tmp_path / "case"
    folder.mkdir()
    cat, rocket = _photo("chelsea.jpg"), _photo("rocket_copy_move.jpg").copy()
    rocket[320:428, 300:408] = cv2.resize(cat[100:220, 150:270], (108, 108))
    for name, rgb in (("cat.jpg", cat), ("rocket.jpg", rocket)):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", quality=90)
        (folder / name).write_bytes(buf.getvalue())
    Image.fromarray(_photo("coffee_removal.jpg")).save(folder / "coffee.png")
    batch = window.batch
    batch.add_paths([folder])
    panel = batch.shared
    qtbot.waitUntil(lambda: panel.result is not None, timeout=60_000)
    assert panel.table.rowCount() == 1 and not panel.table.isHidden()
    names = {panel.table.item(0, 0).text(), panel.table.item(0, 2).text()}
    assert names == {"cat.jpg", "rocket.jpg"}
    assert "1 pair(s)" in panel.status.text() and "3 images" in panel.status.text()
    batch.clear()
    assert panel.table.rowCount() == 0 and panel.table.isHidden()


def test_the_comparison_reports_its_progress_as_typed_events(tmp_path):
    from collections import OrderedDict

    from app.batch.shared_regions import _compare
    from app.jobs import FeaturesFound

    paths = []
    for i, name in enumerate(("chelsea.jpg", "coffee_removal.jpg")):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(_photo(name)).save(paths[-1])

    class Context:
        events: list = []

        def emit(self, event):
            self.events.append(event)

        def cancelled(self):
            return False

    ctx = Context()
    result = _compare(ctx, paths, OrderedDict())
    assert result.n_images == 2
    assert ctx.events == [FeaturesFound(1, 2), FeaturesFound(2, 2)]
