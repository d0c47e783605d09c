"""The choices and defaults that the command line, the app and the library share, in one place
that loads nothing heavy (no torch, no numpy): building the CLI's parser and checking a command
line must not wait for the network's libraries.

``ncl_core.inference.predictor`` (``MODES``, ``InferenceSettings``), ``ncl_core.models.modelfile`` (the size bounds)
and ``ncl_core.data.synth`` (``KINDS``) import their names from here.
"""

from __future__ import annotations

from dataclasses import dataclass

# Inference modes: ``auto`` takes the model file's own default mode and sizes; ``resize`` is the
# paper's protocol (the whole image resized to the network's input); ``tiled`` works at full
# resolution in overlapping tiles.
MODES = ("auto", "resize", "tiled")
DEFAULT_MODE = "auto"
# The probability at which the mask is drawn, unless the analyst moves it. A threshold is a
# view of an analysis (``Analysis.at``), not an input of the network: it is not in
# ``InferenceSettings``. Calibration moves a model's map so that its threshold sits here.
DEFAULT_THRESHOLD = 0.5
INPUT_SIZE_RANGE = (32, 4096)  # resize mode's network input side, px
TILE_RANGE = (64, 4096)  # tiled mode's tile side, px (half of it overlaps the next tile)
# Resize mode: the resized image is framed by its own mirror image, this share of the side on
# every edge, before the network sees it (its map is cut back out). Without a frame the
# network's zero padding darkens the map along the image's border, a prior of position.
MAX_MARGIN = 0.5
# The network's arithmetic: ``auto`` is bf16 where the device computes it natively (a GPU
# with bf16, else fp16 there; a CPU with AVX512-BF16 or AMX) and fp32 elsewhere; ``fp32``
# always full precision; ``bf16`` asks for it anywhere (slow where emulated).
PRECISIONS = ("auto", "fp32", "bf16")

# Where the network runs: ``auto`` is CUDA if present, else MPS, else the CPU; ``cuda:N`` picks
# one GPU (``ncl_core.network.device.pick_device``).
DEVICES = ("auto", "cpu", "cuda", "mps")

# Which analyzed images of a batch report get their pictures (display copy, heatmap, overlay,
# mask, PDF panel): every one, or only those whose finding is "manipulation indicated" (a faster,
# smaller report of a large batch). Every analyzed image keeps its row and thumbnail either way.
PICTURES = ("all", "indicated")
DEFAULT_PICTURES = "all"

# The kinds of forgery the generator makes (``ncl-forensics synth --types``).
KINDS = ("splice", "copy_move", "removal")

# The validation figures that can pick the weights a training run keeps (``--select-by``):
# F1 at 0.5, or the quiet F1 (``ncl_core.evaluation.metrics``: F1 where the authentic images stay quiet).
SELECT_BY = ("f1", "quiet_f1")
# A quiet map: the median authentic image has at most this share of its pixels flagged. The
# quiet F1 is measured there, and calibration keeps the pixel threshold at least that quiet.
QUIET_FLAGGED = 0.05


@dataclass
class InferenceSettings:
    """How the network analyzes an image, recorded in every result. The threshold is not
    here: it is how the result is looked at (``Analysis.at``)."""

    mode: str = DEFAULT_MODE  # the model's own default mode
    input_size: int | None = None  # resize mode side; None: the model's training size
    # Resize mode: sides whose maps are averaged with the input size's (the image score stays
    # that of the input size's map). None: the model's own, when input_size is also its own;
    # (): one size only.
    fuse_sizes: tuple[int, ...] | None = None
    # Resize mode: the mirrored frame around the image, a share of the side on each edge
    # (MAX_MARGIN at most). None: the model's own (none where its file names none).
    margin: float | None = None
    tile: int | None = None  # tiled mode tile side; None: the model's training size
    overlap: int | None = None  # None: half the tile (the cross-fade width; see tile_layout)
    tile_batch: int = 4  # tiles per network call
    precision: str = "auto"  # one of PRECISIONS; the one used is in the result's settings

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.fuse_sizes is not None:
            self.fuse_sizes = tuple(int(s) for s in self.fuse_sizes)
            low, high = INPUT_SIZE_RANGE
            if any(not low <= s <= high for s in self.fuse_sizes):
                raise ValueError(
                    f"fuse sizes must be from {low} to {high} px, got {self.fuse_sizes}"
                )
        if self.margin is not None and not 0.0 <= self.margin <= MAX_MARGIN:
            raise ValueError(f"margin must be from 0 to {MAX_MARGIN:g}, got {self.margin}")
        if self.tile_batch < 1:
            raise ValueError(f"tile_batch must be at least 1, got {self.tile_batch}")
        if self.tile is not None and self.overlap is not None and not 0 <= self.overlap < self.tile:
            raise ValueError("overlap must be smaller than the tile")
