"""Labeled sets: images and their masks, kept by the app in the user's data folder.

A set is a folder ``sets_dir()/<name>/`` in the ``tampered/`` + ``masks/`` (+ ``authentic/``)
layout that training reads as it is (``finetune --set NAME``), plus ``set.json``: for each item
the SHA-256 of the image, the path it was added from, when, and how much of it the mask marks.
An image is **copied** into the set, byte for byte, under its hash; the evidence file is only
read, never written, moved or renamed. A mask that marks nothing makes the image an authentic
example (``authentic/``, no mask). Adding an image the set already holds (the same bytes)
replaces its mask: a correction, not a second copy.

No Qt here: the app's Analysis view, the Training view and ``ncl-forensics sets`` all call this.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ncl_core.errors import UserError
from ncl_core.fsutil import atomic_write_bytes, atomic_write_text
from ncl_core.paths import user_data_dir

MANIFEST_NAME = "set.json"
IMAGE_DIR, MASK_DIR, AUTHENTIC_DIR = "tampered", "masks", "authentic"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}")
_ID_CHARS = 16  # an item's id: the first hex digits of its image's SHA-256


class SetError(UserError):
    """A set, an image or a mask that cannot be used as asked (the message says what to do)."""


def sets_dir() -> Path:
    """Where labeled sets live: ``<user data>/sets``."""
    return user_data_dir() / "sets"


@dataclass
class SetItem:
    """One image of a set and its mask (None: an authentic example)."""

    id: str
    image: str  # relative to the set folder
    mask: str | None
    sha256: str
    source: str  # the path the image was added from
    added: str
    marked: float  # the share of the image the mask marks

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SetItem:
        return cls(
            id=str(data["id"]),
            image=str(data["image"]),
            mask=None if data.get("mask") is None else str(data["mask"]),
            sha256=str(data["sha256"]),
            source=str(data.get("source", "")),
            added=str(data.get("added", "")),
            marked=float(data.get("marked", 0.0)),
        )


@dataclass
class LabeledSet:
    """A set as its manifest lists it."""

    name: str
    path: Path
    items: list[SetItem] = field(default_factory=list)
    created: str = ""

    @property
    def n_tampered(self) -> int:
        return sum(item.mask is not None for item in self.items)

    @property
    def n_authentic(self) -> int:
        return len(self.items) - self.n_tampered

    def item(self, key: str) -> SetItem | None:
        """The item whose id (or image SHA-256) starts with ``key``, or whose source is it."""
        key = key.strip()
        for item in self.items:
            if key and (item.sha256.startswith(key.lower()) or item.source == key):
                return item
        return None

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "images": len(self.items),
            "tampered": self.n_tampered,
            "authentic": self.n_authentic,
            "created": self.created,
        }


def check_set_name(name: str) -> str:
    """``name`` when it can name a set (and its folder), else ``SetError``."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name.strip() != name:
        raise SetError(
            f"{name!r} cannot name a set: use 1 to 64 letters, digits, spaces, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class LabeledSets:
    """The user's labeled sets (``root`` defaults to :func:`sets_dir`)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else sets_dir()

    # -- reading ------------------------------------------------------------------------------
    def names(self) -> list[str]:
        try:
            return sorted(p.name for p in self.root.iterdir() if (p / MANIFEST_NAME).is_file())
        except OSError:
            return []

    def list(self) -> list[LabeledSet]:
        """Every set that can be read (a damaged manifest is skipped)."""
        sets = []
        for name in self.names():
            with contextlib.suppress(SetError):
                sets.append(self.get(name))
        return sets

    def get(self, name: str) -> LabeledSet:
        folder = self.root / check_set_name(name)
        manifest = folder / MANIFEST_NAME
        if not manifest.is_file():
            known = ", ".join(self.names()) or "none yet"
            raise SetError(
                f"no labeled set named {name!r} (sets: {known}); add images to one with "
                "`ncl-forensics sets add NAME IMAGE MASK` or from the Analysis view"
            )
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
            items = [SetItem.from_dict(d) for d in data.get("items", [])]
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SetError(
                f"{manifest}: the set's list cannot be read ({exc.__class__.__name__}); "
                "remove the set and add its images again"
            ) from exc
        return LabeledSet(name, folder, items, str(data.get("created", "")))

    def path(self, name: str) -> Path:
        """The folder of set ``name``, in the layout training reads (``SetError`` if none)."""
        return self.get(name).path

    # -- writing ------------------------------------------------------------------------------
    def add(
        self, name: str, image: str | os.PathLike[str], mask: str | os.PathLike[str] | np.ndarray
    ) -> SetItem:
        """Copy ``image`` into set ``name`` (made if new) with ``mask``: a mask file (any bit
        depth; white = manipulated) or a boolean array of the image's size. The image file is
        only read."""
        from ncl_core.data.io import read_mask
        from ncl_core.evidence.image import load_evidence

        check_set_name(name)
        image = Path(os.fspath(image))
        evidence = load_evidence(image)  # ImageReadError names the file
        hw = evidence.image.shape[:2]
        if isinstance(mask, np.ndarray):
            if mask.shape != hw:
                raise SetError(
                    f"the mask is {mask.shape[1]}x{mask.shape[0]} px but {image} is "
                    f"{hw[1]}x{hw[0]} px; a mask must have its image's size"
                )
            marks = mask.astype(bool)
        else:
            marks, _ = read_mask(mask, expected_hw=hw, image_path=image)
        folder = self.root / name
        labeled = self.get(name) if (folder / MANIFEST_NAME).is_file() else None
        items = list(labeled.items) if labeled else []
        sha = evidence.sha256
        stem = sha[:_ID_CHARS]
        suffix = _suffix(image, evidence.format)
        tampered = bool(marks.any())
        sub = IMAGE_DIR if tampered else AUTHENTIC_DIR
        image_rel = f"{sub}/{stem}{suffix}"
        mask_rel = f"{MASK_DIR}/{stem}.png" if tampered else None
        for d in (IMAGE_DIR, MASK_DIR, AUTHENTIC_DIR):
            (folder / d).mkdir(parents=True, exist_ok=True)
        old = next((i for i in items if i.sha256 == sha), None)
        atomic_write_bytes(folder / image_rel, evidence.data)  # the bytes read, hashed above
        if mask_rel is not None:
            atomic_write_bytes(folder / mask_rel, _png(marks))
        if old is not None:  # a corrected mask: the old files go unless reused
            items.remove(old)
            for rel in (old.image, old.mask):
                if rel is not None and rel not in (image_rel, mask_rel):
                    with contextlib.suppress(OSError):
                        (folder / rel).unlink()
        item = SetItem(
            id=stem,
            image=image_rel,
            mask=mask_rel,
            sha256=sha,
            source=str(image.resolve()) if image.exists() else str(image),
            added=_now(),
            marked=float(marks.mean()),
        )
        items.append(item)
        self._write(folder, name, items, labeled.created if labeled else _now())
        return item

    def remove(self, name: str, item: str | None = None) -> None:
        """Remove set ``name`` (its copies and masks; never the original images), or one of
        its items (by id, SHA-256 prefix or the path it was added from)."""
        labeled = self.get(name)
        if item is None:
            shutil.rmtree(labeled.path)
            return
        found = labeled.item(item)
        if found is None:
            raise SetError(
                f"set {name!r} holds no image {item!r}; `ncl-forensics sets list {name}` shows "
                "its ids"
            )
        items = [i for i in labeled.items if i is not found]
        self._write(labeled.path, name, items, labeled.created)
        for rel in (found.image, found.mask):
            if rel is not None:
                with contextlib.suppress(OSError):
                    (labeled.path / rel).unlink()

    def export(self, name: str, dest: str | os.PathLike[str]) -> Path:
        """Copy set ``name`` to ``dest`` (new or empty) as ``tampered/`` + ``masks/`` (and
        ``authentic/``), with its ``set.json``: a dataset any tool of this kind reads."""
        labeled = self.get(name)
        dest = Path(os.fspath(dest))
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise SetError(f"{dest} is not an empty folder; export into a new or empty folder")
        dest.mkdir(parents=True, exist_ok=True)
        for item in labeled.items:
            for rel in (item.image, item.mask):
                if rel is None:
                    continue
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(labeled.path / rel, dest / rel)
        shutil.copyfile(labeled.path / MANIFEST_NAME, dest / MANIFEST_NAME)
        return dest

    def _write(self, folder: Path, name: str, items: list[SetItem], created: str) -> None:
        manifest = {
            "format": "ncl-forensics-set",
            "version": 1,
            "name": name,
            "created": created,
            "items": [i.to_dict() for i in items],
        }
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / MANIFEST_NAME, json.dumps(manifest, indent=1))


def _png(mask: np.ndarray) -> bytes:
    """A binary mask as an 8-bit PNG, white = manipulated."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), "L").save(buffer, "PNG")
    return buffer.getvalue()


def _suffix(image: Path, format_name: str | None) -> str:
    """The copy's extension: the file's own when training reads it, else its format's."""
    from ncl_core.data.io import IMAGE_EXTENSIONS

    own = image.suffix.lower()
    if own in IMAGE_EXTENSIONS:
        return own
    by_format = _FORMAT_SUFFIX.get((format_name or "").upper())
    if by_format is None:
        raise SetError(f"{image}: a {format_name or 'file'} image cannot go into a set")
    return by_format


_FORMAT_SUFFIX = {
    "JPEG": ".jpg",
    "PNG": ".png",
    "TIFF": ".tif",
    "WEBP": ".webp",
    "BMP": ".bmp",
    "HEIF": ".heic",
    "AVIF": ".avif",
}
