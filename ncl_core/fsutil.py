"""Atomic file writes: a reader never sees a half-written model, checkpoint or report file."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

# A temporary file's name keeps at most this much of the destination's name, so that
# ".<name>.<8 hex>.tmp" fits the 255-byte name limit of common file systems.
_TMP_NAME_BYTES = 200


def shorten_name(name: str, max_bytes: int) -> str:
    """``name`` cut (at a character boundary) to at most ``max_bytes`` bytes on disk."""
    if len(os.fsencode(name)) <= max_bytes:
        return name
    # A character takes at least one byte: the first max_bytes characters are enough, so the
    # loop below is short however long the name (cutting one character at a time from the
    # end of a 5-million-character name re-encoded it each time: minutes).
    name = name[:max_bytes]
    while len(os.fsencode(name)) > max_bytes:
        name = name[:-1]
    return name


@contextlib.contextmanager
def atomic_path(dest: str | Path, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success it is fsync'd and renamed over it.

    On any error the temporary file is removed and ``dest`` is left as it was. An ``OSError``
    about the temporary file (disk full, read-only folder) is raised as one about ``dest``.
    ``durable=False`` skips the fsync: for files whose folder is made durable later, at once
    (``sync_folder``), such as a report's pictures before the row that names them.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    prefix = shorten_name(dest.name, _TMP_NAME_BYTES)
    candidate: Path | None = None
    tmp: Path | None = None
    try:
        # Not mkstemp: it creates mode 0600, and report files must stay readable by colleagues.
        # O_EXCL with a random name is just as safe, and 0o666 lets the umask decide.
        while tmp is None:
            candidate = dest.parent / f".{prefix}.{secrets.token_hex(4)}.tmp"
            try:
                os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            except FileExistsError:
                continue
            tmp = candidate
        mode = os.stat(tmp).st_mode & 0o777  # what the umask allowed
        yield tmp
        if durable:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        # Writers that recreate the file (safetensors does) would otherwise leave it 0600.
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno:
            first = str(dest) if exc.filename in (None, str(candidate)) else exc.filename
            second = str(dest) if exc.filename2 == str(candidate) else exc.filename2
            if (first, second) != (exc.filename, exc.filename2):
                raise OSError(exc.errno, exc.strerror, first, None, second) from exc
        raise


# atomic_path's temporary names: ".<name>.<8 hex>.tmp".
TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")


def remove_stale_temp_files(folder: str | Path, older_than_s: float = 3600.0) -> list[Path]:
    """Delete ``atomic_path`` temporary files left in ``folder`` by a killed process.

    Only names of that pattern, only regular files (never through a link), and only those
    untouched for ``older_than_s`` seconds, so that a write in progress elsewhere is kept.
    """
    removed: list[Path] = []
    now = time.time()
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if not TEMP_NAME.match(entry.name) or not entry.is_file(follow_symlinks=False):
                continue
            with contextlib.suppress(OSError):
                if now - entry.stat(follow_symlinks=False).st_mtime >= older_than_s:
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def atomic_write_bytes(dest: str | Path, data: bytes, durable: bool = True) -> None:
    with atomic_path(dest, durable) as tmp:
        tmp.write_bytes(data)


def sync_folder(folder: str | Path) -> None:
    """Make the files directly in ``folder``, and their names, durable (fsync each, then the
    folder itself where the system allows it)."""
    folder = Path(folder)
    for entry in os.scandir(folder):
        if entry.is_file(follow_symlinks=False):
            with open(entry.path, "rb") as fh:
                os.fsync(fh.fileno())
    with contextlib.suppress(OSError):  # not every system can open or sync a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_text(dest: str | Path, text: str) -> None:
    atomic_write_bytes(dest, text.encode("utf-8"))
