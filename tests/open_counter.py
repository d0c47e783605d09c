"""Counting the opens of files, in every thread: the "each image is read once" tests.

``open`` is wrapped in ``builtins``, ``io`` and ``os``, so Pillow, pathlib and the library's
own readers are all seen.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def count_opens(monkeypatch: pytest.MonkeyPatch, files: list[Path]) -> Iterator[Counter]:
    """Count the opens of ``files`` (by real path, in every thread) until the block ends."""
    watched = {os.path.realpath(f) for f in files}
    counts: Counter = Counter()
    lock = threading.Lock()

    def wrap(real_open):
        def opener(file, *args, **kwargs):
            if isinstance(file, (str, bytes, os.PathLike)):
                key = os.path.realpath(os.fsdecode(file))
                if key in watched:
                    with lock:
                        counts[key] += 1
            return real_open(file, *args, **kwargs)

        return opener

    with monkeypatch.context() as m:
        m.setattr(builtins, "open", wrap(builtins.open))
        m.setattr(io, "open", wrap(io.open))
        m.setattr(os, "open", wrap(os.open))
        yield counts


def opens(counts: Counter, path: Path) -> int:
    return counts[os.path.realpath(path)]
