"""Where outputs may go, what they are called, and the one writer of an image's output files.

Evidence is never written to: no output (a saved mask, an analysis JSON, a report folder) may
lie in the folder of an input image, in an input folder, or anywhere below them. The command
line, the reports and every save of the app call ``refuse_inside_evidence``.

``write_output`` writes one file of an analyzed image (mask, heatmap, overlay or JSON record)
and ``write_outputs`` the set that ``ncl-forensics analyze --out`` writes; the batch report's
mask and the app's saves go through ``write_output`` too, so the files are the same whoever
writes them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ncl_core.errors import EvidenceFolderError, UserError
from ncl_core.fsutil import atomic_write_bytes, atomic_write_text, shorten_name

if TYPE_CHECKING:
    from ncl_core.analysis import Analysis
    from ncl_core.views import ViewResult

# Output files of one analyzed image: "<stem>.mask.png", "<stem>.heatmap.png", ...
OUTPUT_SUFFIXES = {
    "mask": ".mask.png",
    "heatmap": ".heatmap.png",
    "overlay": ".overlay.png",
    "json": ".json",
}
OUTPUT_KINDS: tuple[str, ...] = tuple(OUTPUT_SUFFIXES)
# "<stem>.heatmap.png" etc.: a 250-character evidence name must still fit the 255-byte limit
# of file names.
MAX_STEM_BYTES = 200


def _real(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.realpath(os.path.abspath(path)))


def evidence_folder(path: str | os.PathLike[str]) -> Path | None:
    """The folder an input protects: the folder itself, or the folder holding a file (None
    for a path that does not exist: there is nothing to protect, and the scan reports it)."""
    real = _real(path)
    if real.is_dir():
        return real
    return real.parent if real.exists() else None


def inside_evidence(
    folder: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]]
) -> Path | None:
    """The input whose evidence folder holds ``folder`` (or is it), else None."""
    real = _real(folder)
    for path in inputs:
        protected = evidence_folder(path)
        if protected is not None and (real == protected or protected in real.parents):
            return Path(path)
    return None


def refuse_inside_evidence(
    folder: str | os.PathLike[str],
    inputs: Iterable[str | os.PathLike[str]],
    what: str = "output folder",
    error: type[UserError] = EvidenceFolderError,
) -> None:
    """Raise ``error`` when writing into ``folder`` would write into evidence.

    ``folder`` is where the output goes (a report folder, or the folder of a saved file);
    ``inputs`` are the evidence files and folders. Symbolic links are resolved first. The
    message names both (odd bytes in names shown as ``\\xNN``) and says what to do.
    """
    hit = inside_evidence(folder, inputs)
    if hit is None:
        return
    if _real(hit).is_dir():
        where = f"is inside the input folder {_shown(hit)}, an evidence folder"
    else:
        where = f"is inside the folder holding the input {_shown(hit)}, an evidence folder"
    raise error(
        f"the {what} {_shown(folder)} {where}; choose a folder outside the evidence "
        "(inputs are never written to)"
    )


def _shown(path: str | os.PathLike[str]) -> str:
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def output_name(source: str | os.PathLike[str], kind: str) -> str:
    """The file name of one output of an analyzed image: ``photo.jpg`` -> ``photo.mask.png``."""
    return shorten_name(Path(source).stem, MAX_STEM_BYTES) + OUTPUT_SUFFIXES[kind]


def unique_stem(source: str | os.PathLike[str], used: set[str]) -> str:
    """An output stem for ``source`` not in ``used`` (then added to it): ``photo``, ``photo-2``."""
    base = shorten_name(Path(source).stem, MAX_STEM_BYTES)
    stem, n = base, 1
    while stem in used:
        n += 1
        stem = f"{base}-{n}"
    used.add(stem)
    return stem


_OUTPUT_NAME = re.compile(r"^(.+)\.(?:[a-z]+\.png|json)$")


def existing_stems(out_dir: str | os.PathLike[str]) -> set[str]:
    """Stems of the output files already in ``out_dir`` (``photo`` of ``photo.mask.png``):
    seeded into ``unique_stem``'s ``used`` so that a second run never overwrites a first."""
    try:
        names = os.listdir(out_dir)
    except OSError:
        return set()
    return {m.group(1) for m in map(_OUTPUT_NAME.match, names) if m}


def analysis_record(analysis: Analysis, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON record of an analysis: the application's version, its finding (``text`` in the
    words the panel and the reports use), its summary, ``extra``."""
    from ncl_core import __version__
    from ncl_core.inference.finding import analysis_finding

    finding = analysis_finding(analysis).record()
    return {"app_version": __version__, "finding": finding, **analysis.summary(), **(extra or {})}


def write_output(
    kind: str,
    target: str | os.PathLike[str],
    analysis: Analysis,
    image: np.ndarray | None = None,
    *,
    cmap: str = "inferno",
    overlay: str = "heatmap",
    alpha: float = 0.5,
    extra: Mapping[str, Any] | None = None,
    durable: bool = True,
) -> Path:
    """Write one output file of an analyzed image, atomically; returns its path.

    ``mask``: 8-bit PNG, 255 where ``probability >= threshold``. ``heatmap``: palette PNG of the
    probabilities (``render.encode_heatmap_png``). ``overlay``: PNG of ``image`` (the analyzed
    RGB pixels, needed for this kind only) with the analysis drawn over it in ``overlay`` mode
    (``heatmap``, ``mask``, ``outline``; ``off``: the image alone). ``json``:
    ``analysis_record(analysis, extra)``. The caller checks ``refuse_inside_evidence`` first.
    ``durable=False``: not fsync'd, for a folder made durable later (``fsutil.sync_folder``).
    """
    from ncl_core.inference.render import overlay_rgb, save_heatmap_png, save_mask_png, save_png

    target = Path(target)
    if kind == "mask":
        save_mask_png(target, analysis.mask, durable)
    elif kind == "heatmap":
        save_heatmap_png(target, analysis.probability, cmap, durable)
    elif kind == "overlay":
        if image is None:
            raise ValueError("an overlay needs the image's pixels")
        pixels = np.ascontiguousarray(image)
        if overlay != "off":
            prob, threshold = analysis.probability, analysis.threshold
            pixels = overlay_rgb(pixels, prob, threshold, alpha, cmap, overlay)
        save_png(target, pixels, durable)
    elif kind == "json":
        text = json.dumps(analysis_record(analysis, extra), indent=2)
        atomic_write_bytes(target, text.encode("utf-8"), durable)
    else:
        raise ValueError(f"unknown output {kind!r}; choose one of: {', '.join(OUTPUT_KINDS)}")
    return target


def write_outputs(
    folder: str | os.PathLike[str],
    stem: str,
    analysis: Analysis,
    image: np.ndarray,
    views: Mapping[str, ViewResult] | None = None,
    kinds: Iterable[str] = OUTPUT_KINDS,
    **style: Any,
) -> dict[str, Any]:
    """The files of one analyzed image in ``folder``; returns the JSON record.

    ``<stem>.mask.png``, ``<stem>.heatmap.png``, ``<stem>.overlay.png`` (``kinds``), one
    ``<stem>.<view>.png`` per forensic view with a map (8-bit grey of the image's size,
    brighter = more suspicious), then ``<stem>.json``: the record, with each view's summary
    and an ``outputs`` table naming every file written. ``style``: ``write_output``'s
    ``cmap``, ``overlay`` and ``alpha``.
    """
    from ncl_core.inference.render import save_png

    folder = Path(folder)
    kinds = tuple(kinds)
    outputs: dict[str, str] = {}
    for kind in (k for k in kinds if k != "json"):
        path = folder / f"{stem}{OUTPUT_SUFFIXES[kind]}"
        outputs[kind] = str(write_output(kind, path, analysis, image, **style))
    extra: dict[str, Any] = {}
    if views:
        extra["views"] = {name: result.record() for name, result in views.items()}
        for name, result in views.items():
            gray = result.map_u8()
            if gray is not None:
                path = folder / f"{stem}.{name}.png"
                save_png(path, gray)
                extra["views"][name]["output"] = outputs[name] = str(path)
    extra["outputs"] = outputs
    record = analysis_record(analysis, extra)
    if "json" in kinds:
        atomic_write_text(folder / f"{stem}{OUTPUT_SUFFIXES['json']}", json.dumps(record, indent=2))
    return record


def default_output_folder(
    remembered: str | os.PathLike[str] | None,
    inputs: Iterable[str | os.PathLike[str]],
    fallback: str | os.PathLike[str],
) -> Path:
    """The folder to suggest for a save: the remembered one if it still exists and is not an
    evidence folder, else ``fallback`` (the user's documents), else the home folder."""
    inputs = list(inputs)
    for candidate in (remembered, fallback):
        if candidate and Path(candidate).is_dir() and inside_evidence(candidate, inputs) is None:
            return Path(candidate)
    return Path.home()
