"""The training and validation data of a run, and the order its batches come in.

Two steps, so that the trainer can report what was found before anything fails:
``scan_sources`` reads the configured folders and returns the samples with one summary per
labeled folder and the warnings (unpaired files, unusable photos) — it emits nothing;
``build_datasets`` then makes the datasets (labeled images, forgeries made on the fly from
authentic photos, the validation split) and raises ``TrainingError`` when there is nothing to
train on. Validation images are seen as the inference mode the model will be used in sees
them (docs/METHOD.md).

``EpochBatches`` orders one epoch from (seed, epoch) alone, so a resumed run sees the batches an
uninterrupted one would.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import ConcatDataset, Dataset

from ncl_core.data.datasets import Sample, SegmentationDataset, scan_dataset, split_samples
from ncl_core.data.synth import SynthDataset, scan_photos
from ncl_core.errors import TrainingError
from ncl_core.training.train_config import TrainConfig


@dataclass
class DataSources:
    """What the configured folders hold: the samples, and what to tell the user about them."""

    train_samples: list[Sample] = field(default_factory=list)
    val_samples: list[Sample] = field(default_factory=list)
    photos: list[Path] = field(default_factory=list)  # authentic photos to forge on the fly
    summaries: list[dict[str, Any]] = field(default_factory=list)  # one per labeled folder
    warnings: list[str] = field(default_factory=list)
    trained_on: dict[str, Any] = field(default_factory=dict)  # recorded in the model file


@dataclass
class TrainingData:
    train: Dataset
    val: Dataset | None
    trained_on: dict[str, Any]


def scan_sources(cfg: TrainConfig) -> DataSources:
    """Scan the labeled folders and the photo folder; split off and thin out validation."""
    found = DataSources(trained_on={"datasets": [], "validation": []})
    trained_on = found.trained_on
    for root in cfg.data:
        index = scan_dataset(root)
        summary = index.summary()
        trained_on["datasets"].append(
            {k: summary[k] for k in ("root", "layout", "n_tampered", "n_authentic", "n_unpaired")}
        )
        found.summaries.append(summary)
        if index.unpaired:
            found.warnings.append(f"{root}: {len(index.unpaired)} unpaired file(s) ignored")
        found.train_samples.extend(index.samples)
    for root in cfg.val:
        index = scan_dataset(root)
        trained_on["validation"].append(str(root))
        found.val_samples.extend(index.samples)
    if cfg.labeled_set:
        trained_on["set"] = {"name": cfg.labeled_set, "images": len(found.train_samples)}
    if cfg.data and not cfg.val and cfg.labeled_set:
        n = len(found.train_samples)
        found.train_samples, found.val_samples = hold_out(found.train_samples)
    elif cfg.data and not cfg.val and cfg.val_fraction > 0:
        n = len(found.train_samples)
        found.train_samples, found.val_samples = split_samples(
            found.train_samples, cfg.val_fraction
        )
    if cfg.data and not cfg.val and cfg.labeled_set:
        n_val = len(found.val_samples)
        trained_on["set"]["held_out"] = n_val
        trained_on["validation"].append(
            f"held out of the set {cfg.labeled_set}: {n_val} of {n} images"
        )
        if not n_val:
            found.warnings.append(
                f"the set {cfg.labeled_set} has {n} image(s): too few to hold any out, so "
                "nothing measures what the run gains; add more"
            )
    elif cfg.data and not cfg.val and cfg.val_fraction > 0:
        # What the hash split took, which differs from the asked share on small sets.
        n_val = len(found.val_samples)
        trained_on["validation"].append(
            f"hash split of the data: {n_val} of {n} images ({n_val / max(n, 1):.0%})"
        )
    if cfg.val_limit and len(found.val_samples) > cfg.val_limit:
        stride = len(found.val_samples) / cfg.val_limit
        found.val_samples = [found.val_samples[int(i * stride)] for i in range(cfg.val_limit)]
        trained_on["validation"].append(f"{cfg.val_limit} images of it, evenly spread")
    if cfg.synthetic:
        found.photos, problems = scan_photos(cfg.synthetic)
        found.warnings.extend(problems)
    return found


SET_HELD_OUT = 0.2  # the share of a labeled set held out to measure the model
SET_MIN_TRAIN = 4  # a set this small or smaller trains on everything (and says so)


def hold_out(samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    """A labeled set's training and held-out parts: a fifth of the images (at least one, in
    proportion manipulated and authentic alike), chosen by a hash of their names, so that the
    same image is held out in every run on the set and as the set grows a little."""
    if len(samples) <= SET_MIN_TRAIN:
        return list(samples), []

    def position(sample: Sample) -> bytes:
        return hashlib.sha256(f"ncl-set:{sample.image.name}".encode()).digest()

    held: list[Sample] = []
    for group in ([s for s in samples if s.tampered], [s for s in samples if not s.tampered]):
        if group:
            count = max(1, round(SET_HELD_OUT * len(group))) if len(group) > 1 else 0
            held += sorted(group, key=position)[:count]
    chosen = {id(s) for s in held}
    return [s for s in samples if id(s) not in chosen], held


def build_datasets(cfg: TrainConfig, found: DataSources) -> TrainingData:
    """The datasets of ``found`` (``TrainingError`` when there is nothing to train on)."""
    trained_on = found.trained_on
    parts: list[Dataset] = []
    val_parts: list[Dataset] = []
    if found.train_samples:
        parts.append(
            SegmentationDataset(found.train_samples, cfg.size, True, cfg.augment, cfg.seed)
        )
    if found.val_samples:
        # As the inference mode the model will be used in sees them.
        native = cfg.val_mode == "native"
        val_parts.append(
            SegmentationDataset(found.val_samples, cfg.size, train=False, native=native)
        )
    if cfg.synthetic:
        if len(found.photos) < 2:
            raise TrainingError(f"{cfg.synthetic}: needs at least 2 authentic photos for synthesis")
        photo_samples = [Sample(p) for p in found.photos]
        if cfg.val:  # a given validation set: every photo can train
            train_photos, val_photos = photo_samples, []
        else:
            # By source photo: a pool holds one folder per photo (``<id>/photo.jpg``).
            train_photos, val_photos = split_samples(
                photo_samples,
                max(cfg.val_fraction, 0.05),
                key=lambda s: s.image.relative_to(cfg.synthetic).as_posix(),
            )
        synth = cfg.synth_config()
        parts.append(
            SynthDataset(
                [s.image for s in train_photos], synth, cfg.synthetic_length, cfg.augment.hflip_p
            )
        )
        if val_photos:
            val_synth = cfg.synth_config(seed_offset=1, options=False)
            val_parts.append(
                # Validation items are not augmented: no flips.
                SynthDataset(
                    [s.image for s in val_photos], val_synth, cfg.val_synthetic_length, 0.0
                )
            )
        trained_on["synthetic"] = {
            "photos": str(cfg.synthetic),
            "n_train_photos": len(train_photos),
            "n_val_photos": len(val_photos),
        }
        if cfg.synthetic_options:
            trained_on["synthetic"]["options"] = dict(cfg.synthetic_options)
    if not parts:
        raise TrainingError(
            "no training data: give --data DIR (labeled) or --synthetic DIR (photos)"
        )
    train = parts[0] if len(parts) == 1 else ConcatDataset(parts)
    val = (
        None if not val_parts else val_parts[0] if len(val_parts) == 1 else ConcatDataset(val_parts)
    )
    trained_on["n_train"] = len(train)
    trained_on["n_val"] = len(val) if val is not None else 0
    if val is not None:
        trained_on["validation_id"] = validation_id(val_parts)
    return TrainingData(train, val, trained_on)


def validation_id(parts: list[Dataset]) -> str:
    """A short digest naming the validation images and how they are shown to the network:
    two models' figures are comparable only when it is the same. Labeled images count by name
    and size (the same file in another folder is the same image); synthetic ones by their
    photos, seed and number."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, SegmentationDataset):
            digest.update(f"labeled:{'native' if part.native else part.size}\n".encode())
            names = []
            for sample in part.samples:
                size = sample.image.stat().st_size if sample.image.exists() else -1
                names.append(f"{sample.image.name}:{size}:{sample.mask is not None}")
            digest.update("\n".join(sorted(names)).encode())
        elif isinstance(part, SynthDataset):
            c = part.config
            digest.update(f"synthetic:{c.size}:{c.seed}:{part.length}\n".encode())
            digest.update(
                "\n".join(sorted(f"{p.parent.name}/{p.name}" for p in part.photos)).encode()
            )
    return digest.hexdigest()[:16]


def leaf_datasets(dataset: Dataset) -> list[Dataset]:
    """The datasets a ``ConcatDataset`` is made of (each told the epoch)."""
    if isinstance(dataset, ConcatDataset):
        return [d for sub in dataset.datasets for d in leaf_datasets(sub)]
    return [dataset]


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "image": torch.stack([i["image"] for i in items]),
        "mask": torch.stack([i["mask"] for i in items]),
        "path": [i["path"] for i in items],
    }


class EpochBatches:
    """Batches of one epoch: a permutation seeded by (seed, epoch), optionally skipping ahead.

    With several processes, a global batch of ``batch_size * world_size`` items is cut into
    disjoint per-process slices; ``rank`` gets its own, and ``skip`` counts global batches.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int,
        epoch: int,
        skip: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7919 + epoch))
        size = batch_size * world_size
        batches = [order[i : i + size].tolist() for i in range(0, n, size)]
        if len(batches) > 1 and len(batches[-1]) < size:
            batches.pop()  # a short last batch would change BN statistics between epochs
        if world_size > 1 and len(batches[-1]) < size:
            raise TrainingError(
                f"{n} training items cannot fill one global batch of {size} "
                f"({world_size} processes x batch size {batch_size}): lower --batch-size"
            )
        self.batches = [b[rank * batch_size : (rank + 1) * batch_size] for b in batches[skip:]]

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)
