"""A phone photo (HEIC) in the Analysis view: analyzed like a JPEG, its metadata in the table."""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image

from gui_helpers import wait_analysis


def test_a_heic_photo_opens_analyses_and_shows_its_metadata(qtbot, window, tmp_path):
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[0:96, 0:128]
    rgb = np.stack([xx * 2, yy * 2, (xx + yy)], axis=2) + rng.normal(0, 10, (96, 128, 3))
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "Apple", "iPhone 15 Pro", 6
    path = tmp_path / "evidence" / "IMG_0042.HEIC"
    path.parent.mkdir()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(
        path, format="HEIF", quality=90, exif=exif.tobytes()
    )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()

    view = window.analysis
    window.open_paths([path])
    wait_analysis(qtbot, view)
    assert view.analysis.sha256 == digest
    assert view.analysis.probability.shape == (128, 96)  # turned upright (orientation 6)
    assert view.panel.size_label.text().startswith("96 × 128 px, HEIF")
    panel = view.forensic
    qtbot.waitUntil(lambda: panel.result("metadata") is not None and not panel.is_busy())
    rows = [
        tuple(panel.table.item(r, c).text() for c in range(3))
        for r in range(panel.table.rowCount())
    ]
    assert ("EXIF", "Model", "iPhone 15 Pro") in rows and ("EXIF", "Orientation", "6") in rows
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in path.parent.iterdir()) == ["IMG_0042.HEIC"]
