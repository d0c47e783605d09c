"""Classic forensic views beside the model: ELA, noise, JPEG, double quantisation, clone
detection, metadata, Content Credentials (C2PA).

Each view is one module with ``compute(evidence, **params) -> ViewResult``; ``VIEWS`` is the
one registry the CLI, the reports and the GUI read. A map is float32 H x W in [0, 1] of the
image's size, brighter meaning more suspicious; an input a view cannot judge (no EXIF, a PNG
for the JPEG view, a tiny or flat image) gives ``applicable=False`` and a reason, never an
error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ncl_core.views import c2pa, clone, combined, dq, ela, jpeg, metadata, noise
from ncl_core.views.base import Evidence, NotApplicable, ViewResult, as_evidence


@dataclass(frozen=True)
class View:
    name: str
    title: str
    compute: Callable[..., ViewResult]
    has_map: bool
    brighter: str  # what a bright pixel means, for legends and reports
    about: str  # one line for analysts


VIEWS: dict[str, View] = {
    v.name: v
    for v in (
        View(
            "ela",
            "Error level (ELA)",
            ela.compute,
            True,
            "larger error on re-saving",
            "Re-saves as JPEG at the image's own quality and shows how much each region changes.",
        ),
        View(
            "noise",
            "Noise level",
            noise.compute,
            True,
            "noise unlike the image's own",
            "Local noise features (residual co-occurrences) against the image's own model; "
            "the noise level per block, regions unlike the rest flagged.",
        ),
        View(
            "jpeg",
            "JPEG ghost",
            jpeg.compute,
            True,
            "different compression history",
            "Quantisation tables, quality, encoder; a JPEG-ghost map of earlier compression.",
        ),
        View(
            "dq",
            "Double quantisation (JPEG)",
            dq.compute,
            True,
            "compressed once where the rest was compressed twice",
            "Per 8x8 block, the probability that its DCT coefficients lack the first "
            "compression the rest of the JPEG shows (aligned double quantisation).",
        ),
        View(
            "clone",
            "Clone detection",
            clone.compute,
            True,
            "copied region or its source",
            "Regions repeated elsewhere in the image (keypoints, and blocks for low texture).",
        ),
        View(
            "combined",
            "Combined evidence",
            combined.compute,
            True,
            "more likely manipulated, all cues weighed",
            "The model's map, ELA, double quantisation, texture and clone detection fused by a "
            "small combiner learned on synthetic forgeries; each cue's share in the summary.",
        ),
        View(
            "metadata",
            "Metadata",
            metadata.compute,
            False,
            "",
            "EXIF, XMP and IPTC; software, dates, thumbnail check; GPS on demand.",
        ),
        View(
            "c2pa",
            "Content Credentials (C2PA)",
            c2pa.compute,
            False,
            "",
            "The file's C2PA provenance manifest, validated offline: signer, generator, recorded "
            "actions (AI generation among them), ingredients; whether it still matches the file.",
        ),
    )
}
MAP_VIEWS: tuple[str, ...] = tuple(name for name, v in VIEWS.items() if v.has_map)


def parse_names(text: str | Iterable[str]) -> tuple[str, ...]:
    """``"ela,noise"`` (or a list, or ``"all"``) -> known view names in order; ValueError else."""
    items = text.split(",") if isinstance(text, str) else list(text)
    names: list[str] = []
    for item in (i.strip().lower() for i in items):
        if not item:
            continue
        if item == "all":
            names += [n for n in VIEWS if n not in names]
            continue
        if item not in VIEWS:
            raise ValueError(f"unknown view {item!r}; choose from {', '.join(VIEWS)} or all")
        if item not in names:
            names.append(item)
    return tuple(names)


def compute_view(name: str, source: Evidence, **params) -> ViewResult:
    """Run one view; an input it cannot judge gives a result with ``applicable=False``."""
    view = VIEWS[name]
    start = time.perf_counter()
    try:
        result = view.compute(as_evidence(source), **params)
    except NotApplicable as exc:
        result = ViewResult(name, None, f"not applicable: {exc}", False, {"reason": str(exc)})
    result.duration_s = time.perf_counter() - start
    return result


def compute_views(
    names: Iterable[str], source: Evidence, params: dict[str, dict[str, Any]] | None = None
) -> dict[str, ViewResult]:
    """Several views of one image (``params``: keyword arguments by view name).

    A view that fails unexpectedly is reported in its result (``applicable=False``, the error
    in ``details``) and the others still run.
    """
    results: dict[str, ViewResult] = {}
    for name in names:
        kwargs = dict((params or {}).get(name, {}))
        if name == "combined":  # its cue views, where computed here with their defaults
            kwargs["given"] = {
                cue: results[cue].map
                for cue in ("noise", "dq", "ela", "clone")
                if cue in results
                and results[cue].map is not None
                and (params or {}).get(cue, {}).get("quality", ela.AUTO) == ela.AUTO
            }
        try:
            results[name] = compute_view(name, source, **kwargs)
        except Exception as exc:  # a bug or a hostile file: one view's failure, not the image's
            text = f"{type(exc).__name__}: {exc}"
            results[name] = ViewResult(name, None, f"failed: {text}", False, {"error": text})
    return results


__all__ = [
    "MAP_VIEWS",
    "VIEWS",
    "Evidence",
    "NotApplicable",
    "View",
    "ViewResult",
    "compute_view",
    "compute_views",
    "parse_names",
]
