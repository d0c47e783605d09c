"""Bundled resources (model, samples, icons) for the GUI, from source or a frozen bundle.

``resource_path`` is the library's one function for this (``ncl_core.paths``); the GUI
re-exports it rather than keeping a second copy that could disagree in a PyInstaller build.
"""

from __future__ import annotations

from pathlib import Path

from ncl_core.data.io import is_image_file
from ncl_core.paths import resource_path

__all__ = ["is_sample", "resource_path", "sample_images", "sample_mask_for"]


def sample_images() -> list[Path]:
    """The bundled sample images, tampered ones first, each group sorted by name."""
    found: list[Path] = []
    for group in ("tampered", "authentic"):
        folder = resource_path("samples", group)
        if folder.is_dir():
            found.extend(sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p)))
    return found


def sample_mask_for(image: Path) -> Path | None:
    """The bundled ground-truth mask of a bundled sample image (same stem), if there is one."""
    folder = resource_path("samples", "masks")
    samples = resource_path("samples").resolve()
    if not folder.is_dir() or Path(image).resolve().parent.parent != samples:
        return None
    for candidate in sorted(folder.iterdir()):
        if candidate.stem in (image.stem, f"{image.stem}_mask", f"{image.stem}_gt"):
            return candidate
    return None


def is_sample(path: str | Path) -> bool:
    """True for a bundled sample image or a folder of them: demo files, never casework."""
    samples = resource_path("samples").resolve()
    real = Path(path).resolve()
    return real == samples or samples in real.parents
