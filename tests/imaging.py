"""Helpers for tests: small real image files written with Pillow."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def pattern(height: int = 48, width: int = 64, seed: int = 0, noise: float = 12.0) -> np.ndarray:
    """A smooth-plus-texture RGB uint8 image that survives compression recognisably."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx / max(width - 1, 1), yy / max(height - 1, 1), (xx + yy) / (width + height)])
    img = base.transpose(1, 2, 0) * 200 + rng.normal(0, noise, (height, width, 3))
    return np.clip(img + 20, 0, 255).astype(np.uint8)


def encoded(array: np.ndarray, fmt: str, **kwargs) -> bytes:
    """An array as the bytes of a ``fmt`` file, written by Pillow in memory."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt, **kwargs)
    return buf.getvalue()


def save(path: Path, array: np.ndarray, **kwargs) -> Path:
    """Write an array with Pillow (format from the suffix unless ``format=`` is given)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def write_mask(path: Path, mask: np.ndarray) -> Path:
    """A bool mask as an 8-bit 0/255 PNG (or any suffix Pillow writes)."""
    return save(path, mask.astype(np.uint8) * 255)


def png_with_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` x ``height`` but holds one row of data at most.

    Decoding it would fail as truncated, so a "too large" error proves the size was checked first.
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" + b"\x00" * 3 * min(width, 1000))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    path.write_bytes(png)
    return path


def deny_folder(monkeypatch, scan_module, name: str = "locked") -> None:
    """Make sub-folders called ``name`` unreadable to ``scan_module``'s ``os.scandir``.

    Simulated: root (the CI user) ignores ``chmod 000``.
    """
    real_scandir = scan_module.os.scandir

    def scandir(path):
        if Path(path).name == name:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(scan_module.os, "scandir", scandir)
