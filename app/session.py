"""What the analyst works on, without Qt: the display settings and what is shown.

``Session`` is an evented model in the manner of napari's, with no dependency: a plain object
whose changes are announced to callbacks registered with ``on``. The Qt side (the Analysis
view's ``AnalysisState`` and, through it, the widgets) observes it; tests drive it without Qt.

- ``overlay``: the ``OverlaySettings`` (``app.display``); ``update_overlay`` announces
  ``"overlay"`` with the fields whose value changed.
- ``shown``: the shown image and what belongs to it, one ``Shown`` replaced in one step:
  ``show_evidence`` sets the evidence and, for another image, clears the analysis, the
  ground truth and the note of the previous one; ``show_nothing`` leaves nothing of it on
  screen. Each announces ``"shown"`` with the new ``Shown`` and whether it is another image.
- the case's evidence: ``evidence_roots`` lists every file and folder the window holds as
  evidence (the shown image, the one being opened, the batch's inputs), which no save,
  report or export may write into; each holder replaces its own part with ``hold_evidence``,
  announced as ``"evidence"``.

One session serves the whole window: the Analysis view shows from it, the Batch view and its
report take the analysis mode and threshold from it, every writer asks it for the evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.display import OverlaySettings, updated

if TYPE_CHECKING:
    import numpy as np

    from ncl_core.analysis import Analysis
    from ncl_core.data.io import ImageInfo
    from ncl_core.evidence.image import Evidence

EVENTS = ("overlay", "shown", "evidence")


@dataclass(frozen=True)
class Shown:
    """The shown image (its evidence, read once), its analysis, its ground-truth mask, and
    why there is no result ("analysis failed", "cancelled", …)."""

    evidence: Evidence | None = None
    sha256: str | None = None  # of the shown file's bytes
    analysis: Analysis | None = None
    ground_truth: np.ndarray | None = None
    ground_truth_path: Path | None = None
    note: str = ""

    @property
    def path(self) -> Path | None:
        return self.evidence.path if self.evidence is not None else None

    @property
    def image(self) -> np.ndarray | None:
        """RGB, the shown pixels."""
        return self.evidence.image if self.evidence is not None else None

    @property
    def image_info(self) -> ImageInfo | None:
        return self.evidence.info if self.evidence is not None else None

    def is_same_image(self, evidence: Evidence) -> bool:
        """Whether ``evidence`` is the shown image again (the same file, the same size)."""
        image = self.image
        return (
            image is not None and self.path == evidence.path and image.shape == evidence.image.shape
        )


class Session:
    """The display settings and what is shown; observers hear of every change."""

    def __init__(self, overlay: OverlaySettings | None = None) -> None:
        self._overlay = overlay or OverlaySettings()
        self._shown = Shown()
        self._held: dict[str, tuple[Path, ...]] = {}
        self._observers: dict[str, list[Callable[..., Any]]] = {name: [] for name in EVENTS}

    # -- observers ----------------------------------------------------------------------------
    def on(self, event: str, callback: Callable[..., Any]) -> Callable[[], None]:
        """Call ``callback`` at each ``event`` (one of ``EVENTS``); returns a function that
        stops it."""
        if event not in self._observers:
            raise ValueError(f"no event {event!r}: one of {', '.join(EVENTS)}")
        self._observers[event].append(callback)

        def stop() -> None:
            if callback in self._observers[event]:
                self._observers[event].remove(callback)

        return stop

    def _announce(self, event: str, *args: Any) -> None:
        for callback in list(self._observers[event]):
            callback(*args)

    # -- display settings ---------------------------------------------------------------------
    @property
    def overlay(self) -> OverlaySettings:
        return self._overlay

    def update_overlay(self, **changes: Any) -> frozenset[str]:
        """Change some settings (invalid values are ignored); the fields whose value changed,
        announced as ``"overlay"`` when there are any."""
        self._overlay, changed = updated(self._overlay, **changes)
        if changed:
            self._announce("overlay", changed)
        return changed

    # -- the case's evidence -------------------------------------------------------------------
    def hold_evidence(self, holder: str, paths: list[Path] | tuple[Path, ...]) -> None:
        """``holder``'s part of the evidence (``"batch"``: its inputs; ``"opening"``: the file
        being opened), replacing what it held before; announced as ``"evidence"``."""
        paths = tuple(Path(p) for p in paths)
        if self._held.get(holder, ()) == paths:
            return
        if paths:
            self._held[holder] = paths
        else:
            self._held.pop(holder, None)
        self._announce("evidence")

    def evidence_roots(self) -> list[Path]:
        """Every file and folder held as evidence: the shown image's file and each holder's."""
        found = {p for paths in self._held.values() for p in paths}
        if self._shown.path is not None:
            found.add(self._shown.path)
        return sorted(found)

    # -- what is shown ------------------------------------------------------------------------
    @property
    def shown(self) -> Shown:
        return self._shown

    def show_evidence(self, evidence: Evidence, sha256: str | None) -> bool:
        """Show ``evidence``; True when it is another image, whose analysis, ground truth and
        note then go with the previous one. The same image again keeps its result."""
        new = not self._shown.is_same_image(evidence)
        kept = Shown() if new else self._shown
        self._set(replace(kept, evidence=evidence, sha256=sha256, note=""), new)
        return new

    def show_nothing(self, note: str = "") -> None:
        """Nothing on screen any more (the file to show could not be opened: ``note``)."""
        self._set(Shown(note=note), True)

    def set_analysis(self, analysis: Analysis | None, note: str = "") -> None:
        """The shown image's analysis (None: there is none, and ``note`` says why)."""
        self._set(replace(self._shown, analysis=analysis, note=note), False)

    def set_note(self, note: str) -> None:
        """Why the shown image has no result."""
        self._set(replace(self._shown, note=note), False)

    def set_ground_truth(self, path: Path, mask: np.ndarray) -> bool:
        """A ground-truth mask of the shown image; False (and ignored) when it does not fit
        the shown image (another one was opened meanwhile)."""
        image = self._shown.image
        if image is None or mask.shape != image.shape[:2]:
            return False
        self._set(replace(self._shown, ground_truth=mask, ground_truth_path=path), False)
        return True

    def _set(self, shown: Shown, new_image: bool) -> None:
        self._shown = shown
        self._announce("shown", shown, new_image)
