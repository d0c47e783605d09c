"""The session model without Qt: display settings and what is shown, observed by callbacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.display import OverlaySettings
from app.session import Session, Shown
from ncl_core.evidence.image import Evidence


def _evidence(name: str = "a.png", shape=(6, 8, 3)) -> Evidence:
    return Evidence(path=Path("/case") / name, image=np.zeros(shape, np.uint8))


def _recorded(session: Session) -> tuple[list, list]:
    overlay: list = []
    shown: list = []
    session.on("overlay", overlay.append)
    session.on("shown", lambda now, new: shown.append((now, new)))
    return overlay, shown


def test_importing_the_session_loads_no_qt():
    code = (
        "import sys, app.session, app.display\n"
        "assert not [m for m in sys.modules if m.startswith('PySide6')], 'Qt imported'\n"
    )
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=120)


def test_overlay_changes_are_validated_and_announced_with_the_changed_fields():
    session = Session(OverlaySettings(threshold=0.5))
    overlay, _ = _recorded(session)
    assert session.update_overlay(threshold=0.7, colormap="no-such-map", opacity=2) == {
        "threshold",
        "opacity",
    }
    assert session.overlay.threshold == 0.7 and session.overlay.opacity == 1.0
    assert session.overlay.colormap == "inferno"  # an invalid value is ignored
    assert session.update_overlay(threshold=0.7) == frozenset()  # no change: no announcement
    assert overlay == [{"threshold", "opacity"}]
    with pytest.raises(TypeError):
        session.update_overlay(colour="red")


def test_another_image_replaces_everything_of_the_previous_one_in_one_step():
    session = Session()
    _, shown = _recorded(session)
    first = _evidence()
    assert session.show_evidence(first, "sha-a") is True
    session.set_analysis(object())  # type: ignore[arg-type]
    assert session.set_ground_truth(Path("/case/a-mask.png"), np.ones((6, 8), bool))

    # The same image again (a batch row's result shown): its analysis and mask stay.
    assert session.show_evidence(_evidence(), "sha-a") is False
    assert session.shown.analysis is not None and session.shown.ground_truth is not None

    # Another image: nothing of the previous one stays, in one announcement.
    shown.clear()
    assert session.show_evidence(_evidence("b.png"), "sha-b") is True
    (now, new), *_ = shown
    assert len(shown) == 1 and new is True
    assert now is session.shown
    assert now.path == Path("/case/b.png") and now.sha256 == "sha-b"
    assert now.analysis is None and now.ground_truth is None and now.ground_truth_path is None
    assert now.note == ""


def test_a_mask_of_another_size_is_ignored_and_an_unreadable_file_leaves_nothing():
    session = Session()
    session.show_evidence(_evidence(), "sha-a")
    assert not session.set_ground_truth(Path("m.png"), np.ones((3, 3), bool))
    assert session.shown.ground_truth is None
    session.set_analysis(None, "analysis failed")
    assert session.shown.note == "analysis failed" and session.shown.path is not None
    session.show_nothing("could not be opened")
    assert session.shown == Shown(note="could not be opened")
    assert session.shown.image is None and session.shown.image_info is None


def test_an_observer_can_stop_and_events_are_checked():
    session = Session()
    overlay, _ = _recorded(session)
    calls: list = []
    stop = session.on("overlay", calls.append)
    session.update_overlay(threshold=0.2)
    stop()
    session.update_overlay(threshold=0.3)
    assert len(calls) == 1 and len(overlay) == 2
    with pytest.raises(ValueError):
        session.on("colour", print)


def test_the_case_evidence_is_every_holders_and_the_shown_file():
    session = Session()
    heard: list = []
    session.on("evidence", lambda: heard.append(session.evidence_roots()))
    assert session.evidence_roots() == []
    session.hold_evidence("batch", [Path("/case/folder"), Path("/other/x.jpg")])
    session.hold_evidence("opening", [Path("/case/b.png")])
    session.show_evidence(_evidence("a.png"), "sha-a")
    assert session.evidence_roots() == [
        Path("/case/a.png"),
        Path("/case/b.png"),
        Path("/case/folder"),
        Path("/other/x.jpg"),
    ]
    # A holder replaces only its own part; the same part again is not announced.
    n = len(heard)
    session.hold_evidence("batch", [Path("/case/folder"), Path("/other/x.jpg")])
    assert len(heard) == n
    session.hold_evidence("batch", [])
    session.hold_evidence("opening", [])
    assert session.evidence_roots() == [Path("/case/a.png")]
    assert heard[-1] == [Path("/case/a.png")]
    session.show_nothing()
    assert session.evidence_roots() == []
