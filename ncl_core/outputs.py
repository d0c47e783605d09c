"""Where outputs may go, and what they are called: the one rule every writer applies.

Evidence is never written to: no output (a saved mask, an analysis JSON, a report folder) may
lie in the folder of an input image, in an input folder, or anywhere below them. The command
line, the reports and every save of the app call ``check_outside_evidence``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ncl_core.errors import EvidenceFolderError

# Output files of one analysed image: "<stem>.mask.png", "<stem>.heatmap.png", ...
OUTPUT_SUFFIXES = {
    "mask": ".mask.png",
    "heatmap": ".heatmap.png",
    "overlay": ".overlay.png",
    "json": ".json",
}


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


def check_outside_evidence(
    folder: str | os.PathLike[str],
    inputs: Iterable[str | os.PathLike[str]],
    what: str = "output folder",
) -> None:
    """Raise ``EvidenceFolderError`` when writing into ``folder`` would write into evidence.

    ``folder`` is where the output goes (a report folder, or the folder of a saved file);
    ``inputs`` are the evidence files and folders. Symbolic links are resolved first.
    """
    hit = inside_evidence(folder, inputs)
    if hit is None:
        return
    if _real(hit).is_dir():
        where = f"is inside the input folder {hit}, an evidence folder"
    else:
        where = f"is inside the folder holding the input {hit}, an evidence folder"
    raise EvidenceFolderError(
        f"the {what} {folder} {where}; choose a folder outside the evidence "
        "(inputs are never written to)"
    )


def output_name(source: str | os.PathLike[str], kind: str) -> str:
    """The file name of one output of an analysed image: ``photo.jpg`` -> ``photo.mask.png``."""
    return Path(source).stem + OUTPUT_SUFFIXES[kind]


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
