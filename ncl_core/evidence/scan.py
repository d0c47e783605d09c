"""Turn dropped files and folders into the list of files a batch will analyze.

Every regular file counts, whatever its extension: a non-image becomes an error row in the
report rather than being skipped silently. Hidden files (dot-files) are included for the same
reason: in evidence, a hidden file is still a file the analyst must account for.

Symbolic links are followed, but a folder is entered at most once, identified by the
``(st_dev, st_ino)`` of the real directory, so a symlink loop ends the walk there and is
reported. A file reached through several names (symbolic or hard links) appears once, under
the first path in sorted order, and every other name is listed in ``aliases`` with the path it
was merged into. FIFOs, sockets and devices are reported and not opened (reading a FIFO would
block).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ScanProblem:
    """Something in the dropped tree that was not scanned, and why."""

    path: Path
    message: str


@dataclass
class ScanResult:
    files: list[Path] = field(default_factory=list)
    problems: list[ScanProblem] = field(default_factory=list)
    # (another name, the listed file it names): links and hard links to one file, merged
    aliases: list[tuple[Path, Path]] = field(default_factory=list)


def _identity(st: os.stat_result) -> tuple[int, int]:
    return (st.st_dev, st.st_ino)


class _Walker:
    """Depth-first walk with an explicit stack, so a deep tree cannot hit the recursion limit."""

    def __init__(self, exclude: Iterable[str | Path]) -> None:
        self.excluded = {_real(p) for p in exclude}
        self.seen_dirs: set[tuple[int, int]] = set()
        self.candidates: list[tuple[Path, tuple[int, int]]] = []
        self.problems: list[ScanProblem] = []

    def problem(self, path: Path, message: str) -> None:
        self.problems.append(ScanProblem(path, message))

    def walk(self, root: Path) -> None:
        stack: list[tuple[Path, frozenset[tuple[int, int]]]] = [(root, frozenset())]
        while stack:
            path, ancestors = stack.pop()
            st = self.stat(path)
            if st is None or (self.excluded and _real(path) in self.excluded):
                continue
            if stat.S_ISREG(st.st_mode):
                self.candidates.append((path, _identity(st)))
            elif stat.S_ISDIR(st.st_mode):
                ident = _identity(st)
                names = self.list_dir(path, ident, ancestors)
                inner = ancestors | {ident}
                # Reversed onto the stack so folders are walked in sorted order: which of two
                # links to one folder gets entered must not depend on the file system's order.
                stack.extend((path / name, inner) for name in reversed(names))
            else:
                self.problem(path, "not a regular file (FIFO, socket or device); not read")

    def stat(self, path: Path) -> os.stat_result | None:
        """``stat`` following symlinks, or None after recording why it failed."""
        try:
            return path.stat()
        except FileNotFoundError:
            if path.is_symlink():
                self.problem(path, "broken symbolic link (its target does not exist)")
            else:
                self.problem(path, "not found")
        except PermissionError:
            self.problem(path, "permission denied")
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self.problem(path, "symbolic link loop; not followed")
            else:
                self.problem(path, f"cannot read: {exc.strerror or exc}")
        return None

    def list_dir(
        self, path: Path, ident: tuple[int, int], ancestors: frozenset[tuple[int, int]]
    ) -> list[str]:
        """Sorted names in a folder not entered before, or [] (loop, revisit, unreadable)."""
        if ident in ancestors:
            self.problem(
                path, "symbolic link loop (points back to a folder above it); not followed"
            )
            return []
        if ident in self.seen_dirs:
            # Reached again through another link: its files are already listed.
            return []
        self.seen_dirs.add(ident)
        try:
            with os.scandir(path) as it:
                return sorted(entry.name for entry in it)
        except PermissionError:
            self.problem(path, "cannot read folder: permission denied")
        except OSError as exc:
            self.problem(path, f"cannot read folder: {exc.strerror or exc}")
        return []


def _real(path: str | Path) -> Path:
    return Path(os.path.realpath(os.path.abspath(path)))


def scan_inputs(paths: Iterable[str | Path], exclude: Iterable[str | Path] = ()) -> ScanResult:
    """All regular files under ``paths`` (folders recursively, files as given), sorted.

    Paths are made absolute but symlinks in them are kept as the analyst named them.
    ``exclude`` lists files or folders (compared by real path) to leave out silently.
    Missing paths, unreadable folders, symlink loops and special files go to ``problems``.
    """
    walker = _Walker(exclude)
    for raw in paths:
        walker.walk(Path(os.path.abspath(raw)))
    result = ScanResult()
    first_name: dict[tuple[int, int], Path] = {}
    for path, ident in sorted(walker.candidates, key=lambda c: str(c[0])):
        if ident in first_name:
            if path != first_name[ident]:  # the same path given twice is not an alias
                result.aliases.append((path, first_name[ident]))
            continue
        first_name[ident] = path
        result.files.append(path)
    result.problems = sorted(walker.problems, key=lambda p: str(p.path))
    return result
