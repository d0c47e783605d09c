"""Analyze images with a model file: the ``Predictor``.

Two modes: ``resize`` (the paper's protocol: resize to the model's input size, predict, resize
the map back; the resized image framed by its own mirror image where the model file names a
margin) and ``tiled`` (full resolution: tiles overlapping by half their side, each weighted
by a window that vanishes at its edges, the image padded by reflection so that its own border is
seen from inside a tile; tiles batched, memory bounded by the image size, not by the network).
``auto`` takes the mode and sizes that the model file names as its own defaults (measured on
real forgeries when the model was made); files without them use resize at the training size.

On the CPU the network runs as a copy made for inference: BatchNorm folded into the convolutions
before it, channels-last, and in bf16 where the CPU computes bf16 natively (``precision``:
``auto``; the precision used is in every result's settings).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from ncl_core.analysis import Analysis, AnalysisError, image_score
from ncl_core.data.transforms import resize_image, to_tensor
from ncl_core.errors import Cancelled
from ncl_core.evidence.image import Evidence, load_evidence, read_ahead
from ncl_core.inference.finding import model_quality
from ncl_core.models.modelfile import ModelInfo, load_model
from ncl_core.models.registry import ModelRegistry
from ncl_core.network.device import amp_dtype, cpu_has_native_bf16, describe, pick_device
from ncl_core.settings import DEFAULT_THRESHOLD, MODES, PRECISIONS, InferenceSettings

# The smooth tile window never reaches zero, so a pixel seen by one tile only still counts.
_WINDOW_FLOOR = 1e-3

__all__ = ["Cancelled", "InferenceSettings", "Predictor", "pick_device", "MODES", "PRECISIONS"]


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets covering ``[0, length)`` with tiles of ``tile`` overlapping by ``overlap``
    (the last tile flush with the edge). Kept for callers that place their own tiles; tiled
    mode itself uses ``tile_layout``."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)  # the last tile sits flush with the edge
    return starts


def blend_window(tile: int, overlap: int | None = None) -> np.ndarray:
    """A separable flat-top weight: 1 inside, a raised-cosine fade over ``overlap`` px at each
    edge (default: a quarter of the tile), never below a small floor (the window of the
    earlier tiling, kept for callers; tiled mode weights by ``TileLayout.window``). Two tiles
    that overlap by ``overlap`` cross-fade, their weights summing to 1."""
    overlap = tile // 4 if overlap is None else overlap
    ramp = np.ones(tile, np.float64)
    if overlap > 0:
        edge = 0.5 - 0.5 * np.cos(np.pi * (np.arange(overlap) + 0.5) / overlap)
        n = min(overlap, tile // 2)
        ramp[:n] = edge[:n]
        ramp[tile - n :] = edge[:n][::-1]
    return np.maximum(np.outer(ramp, ramp), _WINDOW_FLOOR).astype(np.float32)


@dataclass(frozen=True)
class TileLayout:
    """Tiles along one axis of an image ``length`` px long: the axis is padded by reflection
    with ``before`` px in front (and as many behind as the tiles need) and tiles of ``tile``
    px start at ``starts`` (padded coordinates), every ``tile - overlap`` px."""

    length: int
    tile: int
    overlap: int
    before: int
    starts: tuple[int, ...]

    def window(self) -> np.ndarray:
        """One tile's 1-D weight: a raised-cosine rise from 0 over ``overlap`` px at each end,
        1 in between (at ``overlap = tile / 2``, a Hann window over the whole tile). It all
        but vanishes at the tile's edge, where the network sees zero padding, and the windows
        of consecutive tiles sum to 1 wherever they overlap (for overlaps up to half the
        tile; beyond, the weights are normalised by their sum)."""
        w = np.ones(self.tile, np.float64)
        if self.overlap > 0:
            n = min(self.overlap, self.tile // 2)
            rise = 0.5 - 0.5 * np.cos(np.pi * (np.arange(self.overlap) + 0.5) / self.overlap)
            w[:n] = rise[:n]
            w[self.tile - n :] = rise[:n][::-1]
        return w.astype(np.float32)

    def source_index(self, start: int) -> np.ndarray:
        """Image indices of the tile at ``start`` (padded coordinates), reflected at both ends
        (the edge pixel is not repeated: ``cv2.BORDER_REFLECT_101``)."""
        i = np.arange(start, start + self.tile) - self.before
        if self.length == 1:
            return np.zeros_like(i)
        period = 2 * self.length - 2
        i = np.abs(i) % period
        return np.where(i >= self.length, period - i, i)


def default_overlap(tile: int) -> int:
    """Half the tile: every pixel is seen by two tiles per axis, at two positions half a tile
    apart, weighted by Hann windows that sum to 1. The network's output depends on where in
    its input a pixel lies, well beyond the few pixels next to the zero padding (measured on
    authentic photos with the bundled model: a 256 px tile's output rises over its outer
    ~50 px and is brightest at the centre). With a quarter-tile overlap most pixels come from
    one tile's flat top, and that dependence repeats at the tile pitch as stripes; at half a
    tile each pixel mixes two positions and the periodic energy at the tile pitch falls about
    fivefold (five authentic 1024 x 768 photos, 256 px tiles), for 2.4 times the tiles. What
    is left is the centre-to-quarter difference of that prior, a retraining matter."""
    return tile // 2


def tile_layout(length: int, tile: int, overlap: int) -> TileLayout:
    """Equally spaced tiles of ``tile`` px, every ``tile - overlap`` px, covering
    ``[0, length)`` with the image padded by reflection: at least ``overlap / 2`` px at each
    end, so that the image's border lies as deep inside the first and last tiles as a
    hand-over between two tiles lies inside each of them (no border seen at a tile's edge),
    and no last tile sits flush with the edge at a stride of its own."""
    if not 0 <= overlap < tile:
        raise ValueError("overlap must be smaller than the tile")
    stride = tile - overlap
    pad = overlap // 2
    count = max(1, -(-(length + 2 * pad - overlap) // stride))
    extra = count * stride + overlap - length  # >= 2 * pad, split evenly
    return TileLayout(length, tile, overlap, extra // 2, tuple(j * stride for j in range(count)))


def _fold(conv: nn.Module, bn: nn.Module) -> nn.Module | None:
    """``conv`` with the eval-mode ``bn`` that follows it folded in, or None if they don't fit."""
    if not (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d)):
        return None
    if bn.running_mean is None or conv.out_channels != bn.num_features:
        return None
    return torch.nn.utils.fusion.fuse_conv_bn_eval(conv, bn)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of an eval-mode ``model`` with every BatchNorm that directly follows a convolution
    folded into that convolution's weights and bias (and replaced by an identity): the same
    function, to fp32 rounding, with a pass over the activations fewer per layer.

    Folded: consecutive ``Conv2d``, ``BatchNorm2d`` in an ``nn.Sequential`` (the decoder, ASPP,
    a ResNet's downsample) and the ``convN``/``bnN`` pairs of torchvision's ResNet and its
    blocks, which apply each ``bnN`` right after ``convN``.
    """
    from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

    model = copy.deepcopy(model).eval()
    for module in list(model.modules()):
        if isinstance(module, nn.Sequential):
            names = list(module._modules)
            for first, second in zip(names, names[1:]):
                fused = _fold(module._modules[first], module._modules[second])
                if fused is not None:
                    module._modules[first] = fused
                    module._modules[second] = nn.Identity()
        elif isinstance(module, (ResNet, BasicBlock, Bottleneck)):
            for i in (1, 2, 3):
                conv, bn = getattr(module, f"conv{i}", None), getattr(module, f"bn{i}", None)
                fused = _fold(conv, bn)
                if fused is not None:
                    setattr(module, f"conv{i}", fused)
                    setattr(module, f"bn{i}", nn.Identity())
    return model


class Predictor:
    """A loaded model ready to analyze images.

    Not safe for concurrent use: one call at a time (any thread); give each concurrent worker
    its own predictor.
    """

    def __init__(self, model: torch.nn.Module, info: ModelInfo, device: torch.device) -> None:
        self.model = model
        self.info = info
        self.config = info.config
        self.torch_device = device
        self.device = describe(device)
        self.model_id = info.name
        self.model_sha256 = info.sha256
        self._amp = amp_dtype(device)
        self._nets: dict[str, nn.Module] = {}  # the CPU's inference copies, by precision
        self._cpu_bf16 = device.type == "cpu" and cpu_has_native_bf16()
        # The model's own defaults; else resize mode at the size it was trained at (paper: 512).
        self.defaults = dict(info.inference or {})
        train_size = int(info.train_config.get("size") or 512)
        self.default_mode = (
            self.defaults.get("mode") if self.defaults.get("mode") in MODES[1:] else "resize"
        )
        self.input_size = int(self.defaults.get("input_size") or train_size)
        # Resize mode: more sides whose maps are averaged with the input size's (calibrated so).
        self.fuse_sizes = tuple(int(s) for s in self.defaults.get("fuse_sizes") or ())
        # Resize mode: the mirrored frame, a share of the side on each edge (calibrated so).
        self.margin = float(self.defaults.get("margin") or 0.0)
        self.tile_size = int(self.defaults.get("tile") or train_size)
        # Calibration can move the map so that its best pixel threshold sits at 0.5: the
        # logits are shifted before the sigmoid (rankings, and so pixel AUC, are unchanged).
        self.logit_shift = float(self.defaults.get("logit_shift") or 0.0)
        if device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
            torch.backends.cudnn.benchmark = True

    @classmethod
    def load(cls, model_path: str | Path | None = None, device: str | None = None) -> Predictor:
        """Load a model file (None = the default model) onto a device (None = best available)."""
        torch_device = pick_device(device)
        if model_path is None:
            info = ModelRegistry().default()
            model_path, bundled = info.path, info.bundled
        else:
            bundled = False
        model, info = load_model(model_path, torch_device, bundled=bundled)
        return cls(model, info, torch_device)

    # -- the network on tensors ---------------------------------------------------------------
    def precision(self, settings: InferenceSettings | None = None) -> str:
        """The arithmetic ``settings`` get on this device: ``fp32``, ``bf16`` or ``fp16``.

        ``auto``: on a GPU the mixed precision it supports; on a CPU bf16 where it computes
        bf16 natively (AVX512-BF16 or AMX: several times the fp32 speed; the map differs from
        fp32 by a small fraction of a per cent of probability on average), else fp32.
        """
        asked = settings.precision if settings is not None else "auto"
        kind = self.torch_device.type
        if asked == "fp32" or kind not in ("cpu", "cuda"):
            return "fp32"
        if kind == "cuda":
            amp = self._amp if asked == "auto" else torch.bfloat16
            return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(amp, "fp32")
        return "bf16" if asked == "bf16" or self._cpu_bf16 else "fp32"

    def _network(self, precision: str) -> nn.Module:
        """The CPU's inference copy of the model for ``precision``, made on first use."""
        net = self._nets.get(precision)
        if net is None:
            net = fold_batchnorm(self.model).to(memory_format=torch.channels_last)
            if precision == "bf16":  # weights cast once, not at every call as autocast does
                net = net.to(torch.bfloat16)
            self._nets[precision] = net
        return net

    @torch.inference_mode()
    def _predict(self, batch: torch.Tensor, precision: str = "fp32") -> np.ndarray:
        """Probabilities ``[B, H, W]`` for a normalised ``[B, 3, H, W]`` batch."""
        if self.torch_device.type == "cpu":
            dtype = torch.bfloat16 if precision == "bf16" else torch.float32
            batch = batch.to(dtype).contiguous(memory_format=torch.channels_last)
            logits = self._network(precision)(batch)
        else:
            batch = batch.to(self.torch_device, non_blocking=True)
            if self.torch_device.type == "cuda":
                batch = batch.contiguous(memory_format=torch.channels_last)
            amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
            with torch.autocast(
                self.torch_device.type, dtype=amp or torch.float32, enabled=amp is not None
            ):
                logits = self.model(batch)
        return torch.sigmoid(logits.float() - self.logit_shift)[:, 0].cpu().numpy()

    def _fuse_sizes(self, settings: InferenceSettings) -> tuple[int, ...]:
        """The sides fused with the input size in resize mode (see ``InferenceSettings``)."""
        if settings.fuse_sizes is not None:
            return settings.fuse_sizes
        return self.fuse_sizes if settings.input_size is None else ()

    def _margin(self, settings: InferenceSettings) -> float:
        """Resize mode's mirrored frame (see ``InferenceSettings.margin``)."""
        return self.margin if settings.margin is None else settings.margin

    def _resize_map(
        self, image: np.ndarray, side: int, precision: str, margin: float = 0.0
    ) -> np.ndarray:
        """The map of ``image`` resized to ``side`` x ``side``, at the image's size. With a
        margin the resized image is framed by its own reflection, ``margin * side`` px on each
        edge (a multiple of 8), so that the network sees image content, not its zero padding,
        around the image's border; the frame's part of the map is cut away."""
        h, w = image.shape[:2]
        resized = resize_image(image, side, side)
        m = 8 * round(side * margin / 8)
        if m:  # at most half the side (MAX_MARGIN): a reflection fits inside the image
            resized = cv2.copyMakeBorder(resized, m, m, m, m, cv2.BORDER_REFLECT_101)
        small = self._predict(to_tensor(resized)[None], precision)[0]
        if m:
            small = np.ascontiguousarray(small[m:-m, m:-m])
        if (h, w) == (side, side):
            return small
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)

    def _resize_mode(
        self, image: np.ndarray, settings: InferenceSettings
    ) -> tuple[np.ndarray, float]:
        """The map and the image score: the map at the input size, averaged with the maps at
        the fused sizes, if any; the score is always the input size's map's (what the model's
        score threshold was calibrated on)."""
        precision = self.precision(settings)
        margin = self._margin(settings)
        first = self._resize_map(image, settings.input_size or self.input_size, precision, margin)
        score = image_score(first)
        fused = self._fuse_sizes(settings)
        if not fused:
            return first, score
        total = first  # summed in place: its score is taken (two image-size maps at most)
        for side in fused:
            total += self._resize_map(image, side, precision, margin)
        total /= 1 + len(fused)
        return total, score

    def _tiled_mode(
        self,
        image: np.ndarray,
        settings: InferenceSettings,
        progress: Callable[[float], None] | None,
        cancel: Callable[[], bool] | None,
    ) -> np.ndarray:
        h, w = image.shape[:2]
        tile = settings.tile or self.tile_size
        overlap = default_overlap(tile) if settings.overlap is None else settings.overlap
        precision = self.precision(settings)
        if h <= tile and w <= tile:
            return self._predict(to_tensor(image)[None], precision)[0]
        rows, cols = tile_layout(h, tile, overlap), tile_layout(w, tile, overlap)
        boxes = [(y, x) for y in rows.starts for x in cols.starts]
        win_y, win_x = rows.window(), cols.window()
        # Accumulators in float32 at image size: 2 x 4 bytes per pixel, the only O(H*W) cost
        # besides the image itself (tiles are cut with reflection on the fly, no padded copy).
        acc = np.zeros((h, w), np.float32)
        weight = np.zeros((h, w), np.float32)
        for first in range(0, len(boxes), settings.tile_batch):
            if cancel is not None and cancel():
                raise Cancelled()
            group = boxes[first : first + settings.tile_batch]
            crops = [image[np.ix_(rows.source_index(y), cols.source_index(x))] for y, x in group]
            probs = self._predict(torch.stack([to_tensor(c) for c in crops]), precision)
            for (y, x), prob in zip(group, probs):
                # The part of the tile that lies on the image (padded -> image coordinates).
                y0, x0 = max(y, rows.before), max(x, cols.before)
                y1, x1 = min(y + tile, rows.before + h), min(x + tile, cols.before + w)
                ty, tx = slice(y0 - y, y1 - y), slice(x0 - x, x1 - x)
                win = np.outer(win_y[ty], win_x[tx])
                iy = slice(y0 - rows.before, y1 - rows.before)
                ix = slice(x0 - cols.before, x1 - cols.before)
                acc[iy, ix] += prob[ty, tx] * win
                weight[iy, ix] += win
            if progress is not None:
                progress(min(1.0, (first + len(group)) / len(boxes)))
        np.divide(acc, weight, out=acc)
        return acc

    # -- public -------------------------------------------------------------------------------
    def analyze(
        self,
        source: Evidence | str | Path | np.ndarray,
        settings: InferenceSettings | None = None,
        *,
        progress: Callable[[float], None] | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> Analysis:
        """Analyze an ``Evidence`` (``ncl_core.evidence.image``), an image file or an RGB uint8
        array with ``settings`` (default: the model's own mode and sizes). The result is at the
        default threshold; ``result.at(t)`` looks at it at another.

        A path is read once with ``load_evidence``; raises ``ImageReadError`` for bad files.
        """
        settings = self.resolve(settings or InferenceSettings())
        if isinstance(source, np.ndarray):
            return self._analyze_array(source, [], None, None, None, settings, progress, cancel)
        evidence = source if isinstance(source, Evidence) else load_evidence(source)
        return self._analyze_evidence(evidence, settings, progress, cancel)

    def _analyze_evidence(
        self,
        evidence: Evidence,
        settings: InferenceSettings,
        progress: Callable[[float], None] | None,
        cancel: Callable[[], bool] | None,
    ) -> Analysis:
        return self._analyze_array(
            evidence.image,
            list(evidence.warnings),
            evidence.source,
            evidence.file_sha256,
            evidence.format,
            settings,
            progress,
            cancel,
        )

    def _analyze_array(
        self,
        image: np.ndarray,
        warnings: list[str],
        source: str | None,
        sha256: str | None,
        image_format: str | None,
        settings: InferenceSettings,
        progress: Callable[[float], None] | None,
        cancel: Callable[[], bool] | None,
    ) -> Analysis:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"expected an RGB uint8 H x W x 3 array, got {image.dtype} {image.shape}"
            )
        started = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        t0 = time.perf_counter()
        if settings.mode == "tiled":
            probability = self._tiled_mode(image, settings, progress, cancel)
            score = image_score(probability)
        else:
            if cancel is not None and cancel():
                raise Cancelled()
            probability, score = self._resize_mode(image, settings)
            if progress is not None:
                progress(1.0)
        h, w = image.shape[:2]
        return Analysis(
            source=source,
            sha256=sha256,
            width=w,
            height=h,
            probability=np.ascontiguousarray(probability, dtype=np.float32),
            threshold=DEFAULT_THRESHOLD,
            score=score,
            model_id=self.model_id,
            model_sha256=self.model_sha256,
            settings=self.effective(settings),
            device=self.device,
            duration_s=time.perf_counter() - t0,
            started_utc=started,
            warnings=list(warnings),
            image_format=image_format,
        )

    def resolve(self, settings: InferenceSettings) -> InferenceSettings:
        """``settings`` with ``auto`` replaced by the model's default mode."""
        if settings.mode != "auto":
            return settings
        return InferenceSettings(**{**settings.__dict__, "mode": self.default_mode})

    def effective(self, settings: InferenceSettings) -> dict:
        """The settings as actually used (defaults resolved), for the record."""
        tile = settings.tile or self.tile_size
        return {
            **settings.__dict__,
            "input_size": settings.input_size or self.input_size,
            "fuse_sizes": list(self._fuse_sizes(settings)) if settings.mode != "tiled" else [],
            "margin": self._margin(settings) if settings.mode != "tiled" else 0.0,
            "tile": tile,
            "overlap": default_overlap(tile) if settings.overlap is None else settings.overlap,
            "precision": self.precision(settings),
            # The model's calibrated image-score threshold, when its file has one.
            "score_threshold": self.defaults.get("score_threshold"),
            "logit_shift": self.logit_shift,
            # Its measured localisation and origin, which the finding words (ncl_core.inference.finding).
            "model_quality": model_quality(self.info),
        }

    def analyze_stream(
        self,
        sources: Iterable[str | Path | Evidence],
        settings: InferenceSettings | None = None,
        *,
        prefetch: int = 2,
        cancel: Callable[[], bool] | None = None,
    ) -> Iterator[tuple[Evidence | None, Analysis | AnalysisError]]:
        """Analyze files (or ``Evidence`` in memory) in order: ``(evidence, result)`` pairs.

        Files are read once, hashed and decoded ahead in a background thread
        (``ncl_core.evidence.image.read_ahead``) while the model works; the evidence comes with its
        analysis so that pictures are drawn without decoding again. An unreadable file comes
        back as ``(None, AnalysisError)`` and the sequence goes on. Close the iterator to stop
        the read-ahead early.
        """
        settings = self.resolve(settings or InferenceSettings())
        loaded = read_ahead(sources, prefetch)
        try:
            for item in loaded:
                if cancel is not None and cancel():
                    return
                if isinstance(item, AnalysisError):
                    yield None, item
                    continue
                try:
                    result: Analysis | AnalysisError = self._analyze_evidence(
                        item, settings, None, cancel
                    )
                except Cancelled:
                    return
                except (RuntimeError, ValueError, MemoryError) as exc:
                    message = f"{item.name}: analysis failed ({exc})"
                    result = AnalysisError(item.source, message, item.file_sha256)
                yield item, result
        finally:
            loaded.close()

    def analyze_many(
        self,
        paths: Iterable[str | Path | Evidence],
        settings: InferenceSettings | None = None,
        *,
        prefetch: int = 2,
        cancel: Callable[[], bool] | None = None,
    ) -> Iterator[Analysis | AnalysisError]:
        """``analyze_stream`` without the evidence: the results only, in order."""
        pairs = self.analyze_stream(paths, settings, prefetch=prefetch, cancel=cancel)
        try:
            for _, result in pairs:
                yield result
        finally:
            pairs.close()
