"""Forensic views of the images already seen, kept in a bounded number of bytes.

A view's map is float32 at the image's size: 48 MB for a 12 MP photograph, about 290 MB for
its six map views. ``ViewCache`` keeps every map as 8-bit levels with the scale to read them
back (``CompactMap``: a quarter of the bytes), and bounds the levels it keeps by bytes, the
images seen longest ago going first. The maps asked for of the image in focus (the one shown:
its two panes) are kept as float32, as computed or as read back, so that drawing them again
and again costs nothing.

Nothing that reads a map back needs more than its 8 bits: a map is drawn through a 256-colour
table (the levels of a map in [0, 1] are exactly those ``ncl_core.inference.render`` colours it with), a
threshold moves a pixel within half a level of it at most (1/510), and the pixel read-out
shows three decimals. Summaries and details are kept as computed.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ncl_core.views.base import ViewResult

DEFAULT_MAX_BYTES = 256 * 2**20
FOCUS_MAPS = 2  # float32 maps kept of the image in focus: the map shown and the one beside it
_ABOVE_ONE = float(np.nextafter(np.float32(1.0), np.float32(2.0)))  # checkRange's bound is open

__all__ = ["DEFAULT_MAX_BYTES", "FOCUS_MAPS", "CompactMap", "ViewCache"]


@dataclass(frozen=True)
class CompactMap:
    """A float map as uint8 levels: ``value = offset + level * step``, NaN where ``nan`` says.

    A map within [0, 1] (every view's) is kept at ``step = 1/255``, so its levels are those
    it is drawn with; any other map spans its own finite minimum to maximum (infinities are
    clipped to them). Read back within ``step / 2`` of each value.
    """

    levels: np.ndarray
    offset: float
    step: float
    nan: np.ndarray | None = None  # packed bits, one a pixel, where a map held NaN

    @classmethod
    def of(cls, values: np.ndarray) -> CompactMap:
        m = np.asarray(values, dtype=np.float32)
        if m.ndim != 2:
            raise ValueError(f"a map is 2-D (H x W), got shape {m.shape}")
        if m.size == 0 or cv2.checkRange(m, True, 0.0, _ABOVE_ONE)[0]:
            # Finite and within [0, 1]: round(255 * v), as render colours the map.
            return cls(cv2.convertScaleAbs(m, alpha=255.0), 0.0, 1.0 / 255.0)
        nan = np.isnan(m)
        finite = m[np.isfinite(m)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        step = (hi - lo) / 255.0 if hi > lo else 1.0
        clean = np.nan_to_num(m, nan=lo, posinf=hi, neginf=lo)
        np.clip(clean, lo, hi, out=clean)
        levels = np.rint((clean - np.float32(lo)) / np.float32(step)).astype(np.uint8)
        return cls(levels, lo, step, np.packbits(nan, axis=None) if nan.any() else None)

    @property
    def shape(self) -> tuple[int, int]:
        return self.levels.shape  # type: ignore[return-value]

    @property
    def nbytes(self) -> int:
        return self.levels.nbytes + (0 if self.nan is None else self.nan.nbytes)

    def restore(self) -> np.ndarray:
        """The map as float32 H x W, each value within ``step / 2`` of the one kept."""
        out = self.levels.astype(np.float32)
        out *= np.float32(self.step)
        if self.offset:
            out += np.float32(self.offset)
        if self.nan is not None:
            flags = np.unpackbits(self.nan, count=out.size).view(bool).reshape(out.shape)
            out[flags] = np.nan
        return out


def _details_nbytes(value: Any) -> int:
    """Bytes of the arrays a result's details hold (the rest is small)."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, Mapping):
        return sum(_details_nbytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_details_nbytes(v) for v in value)
    return 0


@dataclass
class _Entry:
    """One image's views: results without their maps, and the maps kept compact."""

    results: dict[str, ViewResult] = dataclasses.field(default_factory=dict)
    maps: dict[str, CompactMap] = dataclasses.field(default_factory=dict)
    nbytes: int = 0

    def count(self) -> None:
        self.nbytes = sum(m.nbytes for m in self.maps.values()) + sum(
            _details_nbytes(r.details) for r in self.results.values()
        )


class ViewCache:
    """View results by image (a key such as the file's SHA-256) and view name.

    ``put`` keeps results, ``get`` gives one back with its map (float32, within half a level
    of the map computed), ``focus`` names the image shown. The compact maps of every image
    together stay within ``max_bytes``, but for the image in focus, which is never dropped
    (else its views would be computed again and again). Not thread-safe: one thread (the
    GUI's) uses it.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, focus_maps: int = FOCUS_MAPS) -> None:
        if max_bytes < 0 or focus_maps < 0:
            raise ValueError("max_bytes and focus_maps must not be negative")
        self.max_bytes = int(max_bytes)
        self.focus_maps = int(focus_maps)
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._focus: str | None = None
        # The image in focus's results with their float maps, most recently used last.
        self._hot: OrderedDict[str, ViewResult] = OrderedDict()

    # -- what is kept ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    @property
    def nbytes(self) -> int:
        """Bytes of the compact maps (and detail arrays) kept: the bound ``max_bytes`` holds."""
        return sum(e.nbytes for e in self._entries.values())

    @property
    def focus_nbytes(self) -> int:
        """Bytes of the float maps kept of the image in focus (at most ``focus_maps``)."""
        return sum(r.map.nbytes for r in self._hot.values() if r.map is not None)

    def names(self, key: str | None) -> set[str]:
        """The views kept of image ``key``."""
        entry = self._entries.get(key) if key is not None else None
        return set(entry.results) if entry is not None else set()

    # -- in and out --------------------------------------------------------------------------
    def focus(self, key: str | None) -> None:
        """The image shown is ``key``: its maps asked for are kept as float32; the float maps
        of the image shown before are let go (their compact copies stay)."""
        if key != self._focus:
            self._focus = key
            self._hot.clear()
        if key in self._entries:
            self._entries.move_to_end(key)

    def put(self, key: str, results: Mapping[str, ViewResult]) -> None:
        """Keep ``results`` of image ``key`` (beside its views already kept; a view kept
        before is replaced), then drop the images seen longest ago past ``max_bytes``."""
        entry = self._entries.setdefault(key, _Entry())
        self._entries.move_to_end(key)
        for name, result in results.items():
            if key == self._focus:
                self._hot.pop(name, None)
            entry.maps.pop(name, None)
            if result.map is not None:
                entry.maps[name] = CompactMap.of(result.map)
                if key == self._focus:
                    self._keep_hot(name, result)
            entry.results[name] = dataclasses.replace(result, map=None)
        entry.count()
        self._bound()

    def get(self, key: str | None, name: str) -> ViewResult | None:
        """View ``name`` of image ``key`` with its map, or None when not kept.

        The image in focus gives the same object each time while its map is kept as float32.
        """
        entry = self._entries.get(key) if key is not None else None
        if entry is None or name not in entry.results:
            return None
        if key == self._focus:
            hot = self._hot.get(name)
            if hot is not None:
                self._hot.move_to_end(name)
                return hot
        result = self._with_map(entry, name)
        if key == self._focus and result.map is not None:
            self._keep_hot(name, result)
        return result

    def peek(self, key: str | None, name: str) -> ViewResult | None:
        """View ``name`` of image ``key`` without its map (its summary and details), or None."""
        entry = self._entries.get(key) if key is not None else None
        return None if entry is None else entry.results.get(name)

    def results(self, key: str | None) -> dict[str, ViewResult]:
        """Every view kept of image ``key``, without maps (summaries and details, for
        records); ``get`` gives a view with its map."""
        entry = self._entries.get(key) if key is not None else None
        if entry is None:
            return {}
        return {name: dataclasses.replace(r) for name, r in entry.results.items()}

    def discard(self, name: str, keys: Iterable[str] | None = None) -> None:
        """Forget view ``name`` of images ``keys`` (default: every image)."""
        for key in list(self._entries) if keys is None else list(keys):
            entry = self._entries.get(key)
            if entry is None:
                continue
            entry.results.pop(name, None)
            entry.maps.pop(name, None)
            entry.count()
            if key == self._focus:
                self._hot.pop(name, None)

    def clear(self) -> None:
        self._entries.clear()
        self._hot.clear()

    def values(self) -> list[dict[str, ViewResult]]:
        """Per image, its views as held in memory: a view's ``map`` is the array held for it
        (float32 where the image is in focus and the map was asked for, else its levels). For
        accounting what the cache holds; ``get`` gives the maps to use."""
        out = []
        for key, entry in self._entries.items():
            held = {}
            for name, result in entry.results.items():
                hot = self._hot.get(name) if key == self._focus else None
                compact = entry.maps.get(name)
                array = hot.map if hot is not None else (compact.levels if compact else None)
                held[name] = dataclasses.replace(result, map=array)
            out.append(held)
        return out

    # -- inside ------------------------------------------------------------------------------
    def _with_map(self, entry: _Entry, name: str) -> ViewResult:
        result = entry.results[name]
        compact = entry.maps.get(name)
        return result if compact is None else dataclasses.replace(result, map=compact.restore())

    def _keep_hot(self, name: str, result: ViewResult) -> None:
        self._hot[name] = result
        self._hot.move_to_end(name)
        while len(self._hot) > self.focus_maps:
            self._hot.popitem(last=False)

    def _bound(self) -> None:
        total = self.nbytes
        for key in list(self._entries):
            if total <= self.max_bytes:
                break
            if key == self._focus:
                continue
            total -= self._entries.pop(key).nbytes
