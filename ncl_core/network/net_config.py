"""The network's settings: ``ModelConfig`` (everything needed to rebuild an ``NCLNet``, stored in
every model file) and ``LossConfig`` (the NCL and pivot-consistent losses).

Every [ours] choice of docs/METHOD.md is a field here, so it can be changed and ablated.
"""

from __future__ import annotations

from dataclasses import dataclass

from ncl_core.jsonconfig import JsonConfig
from ncl_core.network.backbones import get_backbone

CONTOUR_MODES = ("pivot", "drop", "as_tampered", "as_authentic")


@dataclass
class ModelConfig(JsonConfig):
    """Everything needed to rebuild an ``NCLNet`` (stored in every model file)."""

    backbone: str = "resnet101"  # [paper] resnet101; resnet50 / resnet18 [ours]
    output_stride: int = 8  # [paper] 8; 16 [ours]
    patch_cells: int = 8  # [ours] patch = 8x8 cells of layer1 (stride 4) = 32x32 px
    aspp_channels: int = 256
    low_level_channels: int = 48  # DeepLabV3+ reduction of layer1
    decoder_channels: int = 256  # width of decoder stages 2-4
    pivot: bool = True  # build the two pivot branches (needed for contour_mode="pivot")
    patch_eps: float = 0.01  # [ours] r >= 1-eps tampered, r <= eps authentic, else contour
    stage3_channels: int = 32  # [ours] narrow full-resolution stages keep eval cost low
    stage4_channels: int = 16
    # [ours, off until measured] RGB plus 3 fixed SRM high-pass residuals and 3 Bayar-
    # constrained 5x5 residuals (stride 1) before conv1: noise traces as explicit input.
    noise_stem: bool = False

    def __post_init__(self) -> None:
        get_backbone(self.backbone)  # a clear error for an unknown name
        if self.output_stride not in (8, 16):
            raise ValueError(f"output_stride must be 8 or 16, got {self.output_stride!r}")
        if self.patch_cells < 1:
            raise ValueError("patch_cells must be >= 1")
        if not 0.0 <= self.patch_eps < 0.5:
            raise ValueError("patch_eps must lie in [0, 0.5)")

    @property
    def patch_px(self) -> int:
        """Patch side in input pixels (layer1 has stride 4)."""
        return 4 * self.patch_cells

    @property
    def aspp_rates(self) -> tuple[int, int, int]:
        return (12, 24, 36) if self.output_stride == 8 else (6, 12, 18)

    @property
    def feature_channels(self) -> int:
        """Channels of ``layer1``: 64 for ResNet-18, 256 for ResNet-50/101."""
        return get_backbone(self.backbone).low_channels


@dataclass
class LossConfig(JsonConfig):
    """docs/METHOD.md, losses; defaults are this project's [ours] choices."""

    tau: float = 0.1
    max_negatives: int | None = 256
    mu: float = 0.8  # contour weight of the PC loss
    omega: float = 0.1  # weight of the NCL loss in the total
    contour_mode: str = "pivot"
    # [ours, off until measured] PC-loss variants for small manipulated areas:
    pos_weight: float = 1.0  # BCE weight of manipulated pixels (class weighting)
    dice: float = 0.0  # weight of a soft Dice term on each stage, added to the PC loss
    # [ours] weight of the image loss: BCE of the image score (the mean of the map's top 0.5 %,
    # as inference scores an image) against "anything manipulated". On an authentic image its
    # gradient falls on the few pixels scored highest: hard negatives, mined in every batch.
    image_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.contour_mode not in CONTOUR_MODES:
            raise ValueError(
                f"contour_mode must be one of {CONTOUR_MODES}, got {self.contour_mode!r}"
            )
        if not 0.0 <= self.mu <= 1.0:
            raise ValueError("mu must lie in [0, 1]")
        if self.tau <= 0:
            raise ValueError("tau must be positive")
        if self.pos_weight <= 0 or self.dice < 0:
            raise ValueError("pos_weight must be positive and dice not negative")
        if self.image_weight < 0:
            raise ValueError("image_weight must not be negative")

    @property
    def needs_pivot(self) -> bool:
        """Whether a network trained with this loss needs the pivot branches
        (``ModelConfig.pivot``): they serve only the full NCL loss; plain and "drop" runs skip
        their cost."""
        return self.contour_mode == "pivot" and self.omega > 0
