"""One evidence image, read once: its bytes, their SHA-256, the decoded pixels and the header.

``load_evidence`` reads a file's bytes once (read-only), hashes exactly those bytes and decodes
from them, so the hash is of what was analyzed and nothing needs to open the file again: the
model (``Predictor.analyze``), the report's pictures, the forensic views and the command
line's output files all take the same ``Evidence``. Evidence files are never written to.

``read_ahead`` loads a sequence of files in a background thread, a few ahead of the consumer,
so that reading and decoding overlap with the model's work.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import cv2
import numpy as np

from ncl_core.analysis import AnalysisError
from ncl_core.data.io import (
    DEFAULT_MAX_PIXELS,
    ImageInfo,
    ImageReadError,
    decode_image,
    read_file_bytes,
)
from ncl_core.evidence.hashing import sha256_file

__all__ = ["Evidence", "load_evidence", "load_or_error", "read_ahead"]


@dataclass(frozen=True, eq=False)
class Evidence:
    """An image as everything downstream sees it: RGB pixels, plus the file it came from.

    ``image`` is RGB uint8 H x W x 3 with the EXIF orientation applied (what the model
    analyses). ``data`` is the file's bytes (None for a bare array): the JPEG view and the
    metadata view read the file's structure from them, and ``sha256`` hashes them. ``info`` is
    the header (format, displayed size, a few EXIF fields, GPS present), ``warnings`` what
    reading converted (16-bit, CMYK, EXIF rotation, transparency, several frames).
    """

    image: np.ndarray
    data: bytes | None = None
    name: str = "<array>"
    warnings: tuple[str, ...] = ()
    path: Path | None = None
    info: ImageInfo | None = None

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> Evidence:
        """``load_evidence(path)``."""
        return load_evidence(path)

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        name: str = "<bytes>",
        path: str | os.PathLike[str] | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> Evidence:
        """Decode an in-memory file (``name`` is for messages); ``ImageReadError`` if it cannot."""
        data = bytes(data)
        image, warnings, info = decode_image(data, name, max_pixels)
        where = None if path is None else Path(os.fspath(path))
        return cls(image, data, name, tuple(warnings), where, info)

    @cached_property
    def sha256(self) -> str:
        """Of the file's bytes; of the pixels for a bare array (the views' cache key)."""
        h = hashlib.sha256()
        if self.data is not None:
            h.update(self.data)
        else:
            h.update(str(self.image.shape).encode())
            h.update(np.ascontiguousarray(self.image).tobytes())
        return h.hexdigest()

    @property
    def file_sha256(self) -> str | None:
        """The SHA-256 of the file's bytes, None for a bare array (``Analysis.sha256``)."""
        return self.sha256 if self.data is not None else None

    @property
    def source(self) -> str | None:
        """The file's path as text, None when not read from a file (``Analysis.source``)."""
        return None if self.path is None else str(self.path)

    @property
    def format(self) -> str | None:
        """``JPEG``, ``PNG``, … as the header says; None for a bare array."""
        return None if self.info is None else self.info.format

    @property
    def size_bytes(self) -> int | None:
        return None if self.data is None else len(self.data)

    @cached_property
    def gray(self) -> np.ndarray:
        """Luma as float32 (ITU-R BT.601, as JPEG codes it)."""
        return cv2.cvtColor(self.image, cv2.COLOR_RGB2GRAY).astype(np.float32)


def load_evidence(path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> Evidence:
    """Read an image file once: its bytes, their SHA-256, the pixels and the header.

    Raises ``ImageReadError`` naming the file when it cannot be read or decoded.
    """
    path = Path(os.fspath(path))
    evidence = Evidence.from_bytes(read_file_bytes(path), str(path), path, max_pixels)
    _ = evidence.sha256  # hashed here, in the reading thread, not later by a consumer
    return evidence


def load_or_error(path: str | os.PathLike[str]) -> Evidence | AnalysisError:
    """``load_evidence`` for batches: an unreadable file comes back as an ``AnalysisError``.

    Never raises for the file. The error carries the SHA-256 of the bytes when they could be
    read (a corrupt image is still hashed for the record).
    """
    path = Path(os.fspath(path))
    data: bytes | None = None
    try:
        data = read_file_bytes(path)
        evidence = Evidence.from_bytes(data, str(path), path)
        _ = evidence.sha256
        return evidence
    except ImageReadError as exc:
        message = str(exc)
    except Exception as exc:  # noqa: BLE001 - one bad file must never stop a batch
        message = f"{path}: cannot be read ({exc})"
    sha = hashlib.sha256(data).hexdigest() if data is not None else _safe_sha(path)
    return AnalysisError(str(path), message, sha)


def _safe_sha(path: Path) -> str | None:
    # Only regular files are hashed (an empty one, say): opening a FIFO would block forever.
    try:
        return sha256_file(path) if path.is_file() else None
    except OSError:
        return None


class _Failed:
    """An exception raised while iterating the sources, handed to the consumer."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def read_ahead(
    sources: Iterable[str | os.PathLike[str] | Evidence], prefetch: int = 2
) -> Iterator[Evidence | AnalysisError]:
    """Load ``sources`` in order in a background thread, up to ``prefetch`` ahead.

    Paths are read with ``load_or_error`` (an unreadable file is an ``AnalysisError``, the
    sequence goes on); ``Evidence`` already in memory passes through. Closing the iterator
    (or leaving a ``for`` loop over it early and dropping it) stops the thread.
    """
    ready: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
    stop = threading.Event()
    done = object()

    def put(item: object) -> None:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def work() -> None:
        try:
            for source in sources:
                if stop.is_set():
                    return
                put(source if isinstance(source, Evidence) else load_or_error(source))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer's thread
            put(_Failed(exc))
            return
        put(done)

    reader = threading.Thread(target=work, name="ncl-read-ahead", daemon=True)
    reader.start()
    try:
        while (item := ready.get()) is not done:
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()
        # Unblock the reader if it waits on a full queue, then let it finish.
        while reader.is_alive():
            try:
                ready.get_nowait()
            except queue.Empty:
                reader.join(timeout=0.05)
