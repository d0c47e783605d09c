"""Content Credentials in the Analysis view: read for every image, shown under the metadata."""

from __future__ import annotations

from test_c2pa import CREATED_BY_AI, EDITED, SIGNER_CN, jpeg_bytes, make_signer, manifest_of, sign

from gui_helpers import wait_analysis
from imaging import pattern


def test_the_credentials_of_a_signed_jpeg_are_shown(qtbot, window, tmp_path):
    folder = tmp_path / "evidence"
    folder.mkdir()
    signed = folder / "signed.jpg"
    plain = jpeg_bytes(pattern(96, 128, seed=4, noise=8))
    signed.write_bytes(sign(make_signer(), plain, manifest_of(CREATED_BY_AI, EDITED)))
    (folder / "plain.jpg").write_bytes(plain)
    view = window.analysis
    panel = view.forensic

    window.open_paths([signed])
    wait_analysis(qtbot, view)
    qtbot.waitUntil(lambda: panel.result("c2pa") is not None and not panel.is_busy())
    text = panel.c2pa_label.text()
    assert text.startswith("Status: valid") and f"Signer: {SIGNER_CN}" in text
    assert "Action: created, AI-generated (trained algorithmic media)" in text
    assert "MainThread" not in panel.computed_in  # read in the views' job

    window.open_paths([folder / "plain.jpg"])
    wait_analysis(qtbot, view)
    qtbot.waitUntil(lambda: panel.c2pa_label.text() == "no Content Credentials")
