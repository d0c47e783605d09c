"""NCLNet: DeepLabV3+ on a ResNet trained from scratch, four-stage decoder, pivot branches.

docs/METHOD.md (network, patches, pivots). No pre-trained weights, ever: every ResNet is built with
``weights=None`` so nothing can be downloaded.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import ResNet
from torchvision.models.segmentation.deeplabv3 import ASPP

from ncl_core.network.backbones import get_backbone
from ncl_core.network.net_config import ModelConfig
from ncl_core.network.patches import CONTOUR, patch_labels

# Padding multiple for eval on arbitrary sizes: the deepest stride in the network (16 at
# OS 16, and the stride-2 stem/maxpool chain below it) and the patch grid both divide 32.
_EVAL_MULTIPLE = 32
# [ours] heads start at a prior of 10 % tampered pixels, so early steps are not spent
# learning that most pixels are authentic.
_HEAD_PRIOR = 0.1


# Fixed SRM high-pass filters (Fridrich and Kodovsky's rich models, as RGB-N uses them).
_SRM = (
    [[0, 0, 0, 0, 0], [0, -1, 2, -1, 0], [0, 2, -4, 2, 0], [0, -1, 2, -1, 0], [0, 0, 0, 0, 0]],
    [
        [-1, 2, -2, 2, -1],
        [2, -6, 8, -6, 2],
        [-2, 8, -12, 8, -2],
        [2, -6, 8, -6, 2],
        [-1, 2, -2, 2, -1],
    ],
    [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, -2, 1, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]],
)
_SRM_SCALE = (4.0, 12.0, 2.0)


class NoiseStem(nn.Module):
    """RGB, 3 fixed SRM residuals and 3 Bayar-constrained 5 x 5 residuals: 9 channels at the
    input's resolution (stride 1). ``constrain()`` re-applies Bayar's constraint (centre -1,
    the rest summing to 1) and is called after every optimizer step."""

    channels = 9

    def __init__(self) -> None:
        super().__init__()
        srm = torch.tensor(_SRM, dtype=torch.float32) / torch.tensor(_SRM_SCALE)[:, None, None]
        # Each residual sums its filter over R, G and B (as RGB-N does); fixed, not learned.
        self.register_buffer("srm", srm[:, None].repeat(1, 3, 1, 1) / 3.0, persistent=True)
        self.bayar = nn.Conv2d(3, 3, 5, padding=2, bias=False)
        self.constrain()

    @torch.no_grad()
    def constrain(self) -> None:
        w = self.bayar.weight
        w[:, :, 2, 2] = 0.0
        total = w.sum(dim=(2, 3), keepdim=True)
        w.div_(torch.where(total.abs() < 1e-6, torch.full_like(total, 1e-6), total))
        w[:, :, 2, 2] = -1.0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        srm = F.conv2d(images, self.srm.to(images.dtype), padding=2)
        return torch.cat([images, srm, self.bayar(images)], dim=1)


def build_backbone(config: ModelConfig) -> ResNet:
    """A randomly initialised torchvision ResNet with output stride ``config.output_stride``."""
    dilate = (False, config.output_stride == 8, True)
    net = get_backbone(config.backbone).build(dilate)
    # Classification head is unused; removing it keeps model files small.
    net.fc = nn.Identity()
    if config.noise_stem:
        net.conv1 = nn.Conv2d(NoiseStem.channels, 64, 7, stride=2, padding=3, bias=False)
    return net


def _conv_bn_relu(cin: int, cout: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _separable_conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    """Depthwise 3x3 then pointwise 1x1, as DeepLabV3+'s decoder: ~9x cheaper than a full 3x3
    at stride 4, where the decoder would otherwise cost as much as the whole backbone."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
        nn.BatchNorm2d(cin),
        nn.ReLU(inplace=True),
        _conv_bn_relu(cin, cout, kernel=1),
    )


def _head(cin: int) -> nn.Conv2d:
    head = nn.Conv2d(cin, 1, kernel_size=1)
    nn.init.constant_(head.bias, math.log(_HEAD_PRIOR / (1 - _HEAD_PRIOR)))
    return head


class PivotBranch(nn.Sequential):
    """Conv1x1(C->C) -> BN -> ReLU, applied to each contour patch (docs/METHOD.md, pivot network)."""

    def __init__(self, channels: int) -> None:
        super().__init__(
            nn.Conv2d(channels, channels, kernel_size=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
        )


class NCLNet(nn.Module):
    """DeepLabV3+ with four supervised decoder stages and the NCL pivot network.

    ``forward(images)`` in eval mode returns final full-resolution logits ``[B, 1, H, W]`` for
    any input size. In training mode, ``forward(images, masks)`` returns a dict with
    ``stage_logits`` (4 tensors, strides OS, 4, 2, 1), ``logits`` (the last one),
    ``patch_feats`` ``[B, K, D]`` (L2-normalised), ``patch_labels`` ``[B, K]``,
    ``se_pos``/``se_neg`` ``[B, D]`` and ``has_contour`` ``[B]``.
    """

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or ModelConfig()
        self.backbone = build_backbone(config)
        self.noise_stem = NoiseStem() if config.noise_stem else None
        c_low = config.feature_channels
        c_high = get_backbone(config.backbone).high_channels
        self.aspp = ASPP(c_high, list(config.aspp_rates), config.aspp_channels)
        self.low_reduce = _conv_bn_relu(c_low, config.low_level_channels, kernel=1)
        fused = config.aspp_channels + config.low_level_channels
        self.fuse = nn.Sequential(
            _separable_conv_bn_relu(fused, config.decoder_channels),
            _separable_conv_bn_relu(config.decoder_channels, config.decoder_channels),
        )
        # Reduce before upsampling: the stride-2 and stride-1 stages work on 4x / 16x more
        # pixels, so they stay narrow.
        self.stage3_reduce = _conv_bn_relu(config.decoder_channels, config.stage3_channels, 1)
        self.stage3 = _conv_bn_relu(config.stage3_channels, config.stage3_channels)
        self.stage4 = _conv_bn_relu(config.stage3_channels, config.stage4_channels)
        self.head1 = _head(config.aspp_channels)
        self.head2 = _head(config.decoder_channels)
        self.head3 = _head(config.stage3_channels)
        self.head4 = _head(config.stage4_channels)
        if config.pivot:
            self.pivot_pos = PivotBranch(c_low)
            self.pivot_neg = PivotBranch(c_low)

    # -- pieces -------------------------------------------------------------------------------
    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``layer1`` features (stride 4) and the ASPP output (stride OS)."""
        b = self.backbone
        if self.noise_stem is not None:
            images = self.noise_stem(images)
        x = b.maxpool(b.relu(b.bn1(b.conv1(images))))
        low = b.layer1(x)
        high = b.layer4(b.layer3(b.layer2(low)))
        return low, self.aspp(high)

    def _decode(
        self, low: torch.Tensor, aspp: torch.Tensor, size: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Decoder stages 2-4: features at strides 4, 2 and 1."""
        up = F.interpolate(aspp, size=low.shape[-2:], mode="bilinear", align_corners=False)
        s2 = self.fuse(torch.cat([up, self.low_reduce(low)], dim=1))
        s3 = F.interpolate(
            self.stage3_reduce(s2), scale_factor=2.0, mode="bilinear", align_corners=False
        )
        s3 = self.stage3(s3)
        s4 = self.stage4(F.interpolate(s3, size=size, mode="bilinear", align_corners=False))
        return s2, s3, s4

    def patch_features(self, low: torch.Tensor) -> torch.Tensor:
        """Non-overlapping ``p x p`` windows of ``layer1`` as raw ``[B, K, C, p, p]`` (row-major)."""
        p = self.config.patch_cells
        bsz, c = low.shape[:2]
        windows = low.unfold(2, p, p).unfold(3, p, p)  # B, C, Hp, Wp, p, p
        return windows.permute(0, 2, 3, 1, 4, 5).reshape(bsz, -1, c, p, p)

    def _pivots(
        self, windows: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Hard positive / negative per image: each branch on every contour patch, averaged."""
        bsz, _, c, p, _ = windows.shape
        dim = c * p * p
        is_contour = labels == CONTOUR
        has_contour = is_contour.any(dim=1)
        # float32 accumulators: averaging many bf16 patches under autocast loses precision.
        se_pos = windows.new_zeros(bsz, dim, dtype=torch.float32)
        se_neg = windows.new_zeros(bsz, dim, dtype=torch.float32)
        # A host-device sync: the number of contour patches sets the shapes below.
        flat = is_contour.flatten().nonzero()[:, 0]
        if flat.numel() == 0:
            return se_pos, se_neg, has_contour
        # index_select rather than windows[is_contour]: its backward is an index_add, while a
        # boolean-mask index back-propagates through a sorting index_put on CUDA.
        contour = windows.flatten(0, 1).index_select(0, flat)  # N, C, p, p over the batch
        owner = flat // labels.shape[1]
        counts = is_contour.sum(dim=1).clamp(min=1).float()[:, None]
        for branch, out in ((self.pivot_pos, se_pos), (self.pivot_neg, se_neg)):
            mapped = branch(contour).flatten(1)
            out.index_add_(0, owner, mapped.float())
            out.div_(counts)
        se_pos = F.normalize(se_pos, dim=1) * has_contour[:, None]
        se_neg = F.normalize(se_neg, dim=1) * has_contour[:, None]
        return se_pos, se_neg, has_contour

    # -- forward ------------------------------------------------------------------------------
    def forward(self, images: torch.Tensor, masks: torch.Tensor | None = None):
        if not self.training:
            return self._forward_eval(images)
        return self._forward_train(images, masks)

    def _forward_eval(self, images: torch.Tensor) -> torch.Tensor:
        """Final logits only: no auxiliary heads, no pivot network. Pads to a multiple of 32."""
        h, w = images.shape[-2:]
        pad_h, pad_w = (-h) % _EVAL_MULTIPLE, (-w) % _EVAL_MULTIPLE
        if pad_h or pad_w:
            # Zero = the dataset mean after normalisation, the least surprising filler.
            images = F.pad(images, (0, pad_w, 0, pad_h))
        low, aspp = self.encode(images)
        _, _, s4 = self._decode(low, aspp, images.shape[-2:])
        return self.head4(s4)[..., :h, :w]

    def _forward_train(self, images: torch.Tensor, masks: torch.Tensor | None) -> dict:
        h, w = images.shape[-2:]
        px = self.config.patch_px
        if h % px or w % px:
            raise ValueError(f"training input sides must be multiples of {px} px, got {h}x{w}")
        low, aspp = self.encode(images)
        s2, s3, s4 = self._decode(low, aspp, (h, w))
        stage_logits = [self.head1(aspp), self.head2(s2), self.head3(s3), self.head4(s4)]
        windows = self.patch_features(low)
        out = {
            "stage_logits": stage_logits,
            "logits": stage_logits[-1],
            "patch_feats": F.normalize(windows.flatten(2).float(), dim=2),
            "patch_labels": None,
            "se_pos": None,
            "se_neg": None,
            "has_contour": None,
        }
        if masks is not None:
            labels = patch_labels(masks, px, self.config.patch_eps).flatten(1)
            out["patch_labels"] = labels
            if self.config.pivot:
                se_pos, se_neg, has_contour = self._pivots(windows, labels)
                out.update(se_pos=se_pos, se_neg=se_neg, has_contour=has_contour)
        return out


def apply_constraints(model: nn.Module) -> None:
    """Re-apply weight constraints after an optimizer step (the noise stem's Bayar filters)."""
    stem = getattr(model, "noise_stem", None)
    if stem is not None:
        stem.constrain()


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
