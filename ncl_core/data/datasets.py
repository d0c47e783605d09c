"""Finding image/mask pairs in the folder layouts analysts have, and feeding them to training.

Images and masks are paired by file stem (with the mask-name conventions of the public
benchmarks), never by sort order: one missing file must not shift every later pair.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from ncl_core.data.io import is_image_file, read_image, read_mask
from ncl_core.data.transforms import (
    AugmentConfig,
    eval_transform,
    mask_to_tensor,
    to_tensor,
    train_transform,
)
from ncl_core.errors import DatasetError

# Folder names, compared case-insensitively. Columbia ships 4cam_splc/edgemask and 4cam_auth.
IMAGE_DIRS = ("tp", "tampered", "images", "image", "probe", "4cam_splc")
MASK_DIRS = ("gt", "masks", "mask", "groundtruth", "ground_truth", "edgemask")
AUTHENTIC_DIRS = ("au", "authentic", "4cam_auth")
# Mask-name suffixes: CASIA "_gt", Columbia "_edgemask", NIST16 "_mask", COVERAGE "forged".
MASK_SUFFIXES = ("_edgemask", "_mask", "_gt", "forged")
# COVERAGE: image/NNNt.tif is forged, image/NNN.tif its original, mask/NNNforged.tif the truth;
# mask/NNNcopy.tif and NNNpaste.tif mark source and target of the copy and are not needed.
_COVERAGE_TAMPERED = re.compile(r"^(\d+)t$")
_COVERAGE_EXTRA = re.compile(r"^\d+(copy|paste)$")

EXPECTED_LAYOUTS = """\
Expected one of these layouts:
  - a folder with Tp/ and Gt/ (CASIA), images/ and masks/, or tampered/ and masks/,
    optionally with Au/ or authentic/ for authentic images (no mask needed)
  - COVERAGE: image/ (NNNt.tif forged, NNN.tif original) and mask/ (NNNforged.tif)
  - Columbia: 4cam_splc/ with edgemask/ (*_edgemask.*) and 4cam_auth/
  - one folder (searched recursively) holding images and their masks named <stem>_gt,
    <stem>_mask, <stem>_edgemask or <NNN>forged
  - an IMDL-BenCo JSON file: [["image path", "mask path" or "Negative"], ...]
Masks are paired with images by file name (stem), e.g. abc.jpg with abc.png or abc_gt.png."""


@dataclass
class Sample:
    """One image and its mask; ``mask`` None means authentic (an all-zero mask)."""

    image: Path
    mask: Path | None = None

    @property
    def tampered(self) -> bool:
        return self.mask is not None


@dataclass
class DatasetIndex:
    """The result of scanning a dataset: usable samples and the files left over."""

    root: Path
    layout: str
    samples: list[Sample]
    unpaired: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def n_tampered(self) -> int:
        return sum(s.mask is not None for s in self.samples)

    @property
    def n_authentic(self) -> int:
        return sum(s.mask is None for s in self.samples)

    def summary(self) -> dict[str, Any]:
        """Counts and the unpaired files, for showing before any training starts."""
        return {
            "root": str(self.root),
            "layout": self.layout,
            "n_tampered": self.n_tampered,
            "n_authentic": self.n_authentic,
            "n_unpaired": len(self.unpaired),
            "unpaired": [str(p) for p in self.unpaired],
            "notes": list(self.notes),
        }


def scan_dataset(root: str | os.PathLike[str]) -> DatasetIndex:
    """Find the samples of a dataset folder, or of an IMDL-BenCo JSON list."""
    root = Path(os.fspath(root))
    if not root.exists():
        raise DatasetError(f"{root}: not found.\n{EXPECTED_LAYOUTS}")
    if root.is_file():
        if root.suffix.lower() == ".json":
            return _scan_json(root)
        raise DatasetError(
            f"{root}: is a file; give a dataset folder or a JSON list.\n{EXPECTED_LAYOUTS}"
        )
    children = {p.name.lower(): p for p in sorted(root.iterdir()) if p.is_dir()}
    image_dir = _first(children, IMAGE_DIRS)
    authentic_dir = _first(children, AUTHENTIC_DIRS)
    mask_dir = _first(children, MASK_DIRS)
    if mask_dir is None and image_dir is not None:
        nested = {p.name.lower(): p for p in sorted(image_dir.iterdir()) if p.is_dir()}
        mask_dir = _first(nested, MASK_DIRS)  # Columbia keeps edgemask/ inside 4cam_splc/
    if image_dir is not None and mask_dir is None:
        raise DatasetError(
            f"{root}: found the image folder {image_dir.name}/ but no mask folder "
            f"({', '.join(MASK_DIRS)}).\n{EXPECTED_LAYOUTS}"
        )
    if image_dir is not None or authentic_dir is not None:
        return _scan_folders(root, image_dir, mask_dir, authentic_dir)
    return _scan_flat(root)


def split_samples(
    samples: Sequence[Sample],
    val_fraction: float = 0.1,
    salt: str = "ncl",
    key: Callable[[Sample], str] | None = None,
) -> tuple[list[Sample], list[Sample]]:
    """Deterministic train/validation split by a hash of each image's file name (or of
    ``key(sample)``, e.g. the folder of a photo-pool photo).

    The same file always lands on the same side, whatever else is in the folder or its order.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError("val_fraction must lie in [0, 1)")
    train: list[Sample] = []
    val: list[Sample] = []
    for sample in samples:
        name = key(sample) if key is not None else sample.image.name
        digest = hashlib.sha256(f"{salt}:{name}".encode()).digest()
        position = int.from_bytes(digest[:8], "big") / 2**64
        (val if position < val_fraction else train).append(sample)
    return train, val


class SegmentationDataset(Dataset):
    """Samples as training items: ``{"image": 3xSxS float, "mask": 1xSxS float, "path": str}``
    (``native``: the whole image at its own size, for validation at native resolution).

        Augmentation draws from an RNG seeded by (seed, epoch, index), so a run is reproducible
        whatever the number of loader workers; call ``set_epoch`` before each epoch.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        size: int = 512,
        train: bool = True,
        augment: AugmentConfig | None = None,
        seed: int = 0,
        resize_masks: bool = False,
        native: bool = False,
    ) -> None:
        self.samples = list(samples)
        self.native = native  # evaluation on the whole image at its own size (no resize)
        self.size = int(size)
        self.train = train
        self.augment = augment if augment is not None else AugmentConfig()
        self.seed = int(seed)
        self.resize_masks = resize_masks
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.samples[index]
        image, _ = read_image(sample.image, check_damage=False)
        if sample.mask is None:
            mask = np.zeros(image.shape[:2], bool)
        else:
            mask, _ = read_mask(
                sample.mask, image.shape[:2], resize=self.resize_masks, image_path=sample.image
            )
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            image, mask = train_transform(image, mask, self.size, self.augment, rng)
        elif not self.native:
            image, mask = eval_transform(image, mask, self.size)
        return {"image": to_tensor(image), "mask": mask_to_tensor(mask), "path": str(sample.image)}


def _first(children: dict[str, Path], names: Iterable[str]) -> Path | None:
    for name in names:
        if name in children:
            return children[name]
    return None


def _list_images(folder: Path) -> list[Path]:
    """Image files under ``folder``, recursively, skipping hidden files (e.g. macOS ._ files)."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and is_image_file(p) and not p.name.startswith(".")
    )


def _mask_key(stem: str) -> str:
    """The image stem a mask stem points at (the stem itself when it has no mask suffix)."""
    for suffix in MASK_SUFFIXES:
        if stem.lower().endswith(suffix) and len(stem) > len(suffix):
            base = stem[: -len(suffix)]
            if suffix == "forged":  # COVERAGE: 12forged -> 12t; elsewhere abc_forged -> abc
                return base + "t" if base.isdigit() else base.rstrip("_-") or base
            return base
    return stem


def _is_named_mask(stem: str) -> bool:
    return _mask_key(stem) != stem


def _pair(
    images: list[Path], masks: list[Path], notes: list[str]
) -> tuple[list[Sample], list[Path], list[Path]]:
    """Pair images and masks by stem; returns (samples, unpaired images, unpaired masks)."""
    by_stem: dict[str, list[Path]] = {}
    for image in images:
        by_stem.setdefault(image.stem, []).append(image)
    claims: dict[str, list[Path]] = {}
    unpaired_masks: list[Path] = []
    for mask in masks:
        key = _mask_key(mask.stem)
        if key not in by_stem and mask.stem in by_stem:
            key = mask.stem  # e.g. a file really named "x_mask.jpg" with mask "x_mask.png"
        if key in by_stem:
            claims.setdefault(key, []).append(mask)
        else:
            unpaired_masks.append(mask)
    samples: list[Sample] = []
    unpaired_images: list[Path] = []
    for stem, paths in by_stem.items():
        stem_masks = claims.get(stem, [])
        if len(paths) > 1 or len(stem_masks) > 1:
            notes.append(
                f"ambiguous name {stem!r}: {len(paths)} image(s) and {len(stem_masks)} mask(s) "
                "share it, so none of them is used; rename them to pair one to one"
            )
            unpaired_images.extend(paths)
            unpaired_masks.extend(stem_masks)
        elif stem_masks:
            samples.append(Sample(paths[0], stem_masks[0]))
        else:
            unpaired_images.extend(paths)
    return samples, unpaired_images, unpaired_masks


def _coverage_originals(
    unpaired_images: list[Path], samples: list[Sample]
) -> tuple[list[Sample], list[Path]]:
    """COVERAGE's NNN.tif next to a forged NNNt.tif is the authentic original."""
    forged = {
        m.group(1)
        for s in samples
        if (m := _COVERAGE_TAMPERED.match(s.image.stem)) and s.mask is not None
    }
    authentic = [p for p in unpaired_images if p.stem in forged]
    rest = [p for p in unpaired_images if p.stem not in forged]
    return [Sample(p, None) for p in authentic], rest


def _split_coverage_extras(masks: list[Path], notes: list[str]) -> list[Path]:
    extras = [m for m in masks if _COVERAGE_EXTRA.match(m.stem)]
    if extras:
        notes.append(f"{len(extras)} COVERAGE copy/paste masks ignored (the forged masks are used)")
    return [m for m in masks if not _COVERAGE_EXTRA.match(m.stem)]


def _scan_folders(
    root: Path, image_dir: Path | None, mask_dir: Path | None, authentic_dir: Path | None
) -> DatasetIndex:
    notes: list[str] = []
    samples: list[Sample] = []
    unpaired: list[Path] = []
    parts = []
    if image_dir is not None and mask_dir is not None:
        images = [p for p in _list_images(image_dir) if mask_dir not in p.parents]
        masks = _split_coverage_extras(_list_images(mask_dir), notes)
        samples, unpaired_images, unpaired_masks = _pair(images, masks, notes)
        originals, unpaired_images = _coverage_originals(unpaired_images, samples)
        if originals:
            notes.append(
                f"{len(originals)} COVERAGE originals (NNN next to NNNt) used as authentic"
            )
        samples += originals
        unpaired = unpaired_images + unpaired_masks
        parts.append(f"{image_dir.relative_to(root)}/+{mask_dir.relative_to(root)}/")
    if authentic_dir is not None:
        samples += [Sample(p, None) for p in _list_images(authentic_dir)]
        parts.append(f"{authentic_dir.name}/")
    if not samples:
        raise DatasetError(
            f"{root}: no usable image/mask pair or authentic image found.\n{EXPECTED_LAYOUTS}"
        )
    return DatasetIndex(root, "folders " + " ".join(parts), samples, sorted(unpaired), notes)


def _scan_flat(root: Path) -> DatasetIndex:
    files = _list_images(root)
    notes: list[str] = []
    masks = [p for p in files if _is_named_mask(p.stem)]
    if not masks:
        found = f"{len(files)} image(s) but no mask" if files else "no image"
        raise DatasetError(f"{root}: {found} found in a recognised layout.\n{EXPECTED_LAYOUTS}")
    files = _split_coverage_extras(files, notes)
    images = [p for p in files if not _is_named_mask(p.stem)]
    samples, unpaired_images, unpaired_masks = _pair(images, masks, notes)
    originals, unpaired_images = _coverage_originals(unpaired_images, samples)
    samples += originals
    if not samples:
        raise DatasetError(f"{root}: no image could be paired with a mask.\n{EXPECTED_LAYOUTS}")
    return DatasetIndex(
        root,
        "flat (masks by name suffix)",
        samples,
        sorted(unpaired_images + unpaired_masks),
        notes,
    )


def _scan_json(path: Path) -> DatasetIndex:
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(
            f"{path}: cannot read the JSON list ({exc}).\n{EXPECTED_LAYOUTS}"
        ) from exc
    if not isinstance(entries, list) or not all(
        isinstance(e, (list, tuple)) and len(e) == 2 and all(isinstance(v, str) for v in e)
        for e in entries
    ):
        raise DatasetError(
            f'{path}: not an IMDL-BenCo list of [image, mask or "Negative"] pairs.\n{EXPECTED_LAYOUTS}'
        )
    base = path.parent
    samples: list[Sample] = []
    missing: list[str] = []
    for image_name, mask_name in entries:
        image = base / image_name  # an absolute path stays absolute
        mask = None if mask_name == "Negative" else base / mask_name
        missing += [str(p) for p in (image, mask) if p is not None and not p.is_file()]
        samples.append(Sample(image, mask))
    if missing:
        shown = "\n  ".join(missing[:5])
        more = f"\n  … and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise DatasetError(
            f"{path}: {len(missing)} listed file(s) do not exist (relative paths are taken from "
            f"the JSON file's folder):\n  {shown}{more}"
        )
    if not samples:
        raise DatasetError(f"{path}: the list is empty.\n{EXPECTED_LAYOUTS}")
    return DatasetIndex(path, "imdl-benco json", samples, [], [])
