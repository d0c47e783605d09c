"""``AugmentConfig``: the training augmentations' probabilities and ranges (docs/METHOD.md,
training). Without torch or OpenCV, so that the command line builds its flags from it at once;
``ncl_core.data.transforms`` applies it."""

from __future__ import annotations

from dataclasses import dataclass

from ncl_core.jsonconfig import JsonConfig


@dataclass
class AugmentConfig(JsonConfig):
    """Probabilities and ranges of the training augmentations; 0 switches a step off."""

    hflip_p: float = 0.5  # [paper, DeepLabV3+]
    scale_p: float = 0.3  # [ours] mild random rescale before the crop (else native scale)
    scale_range: tuple[float, float] = (0.5, 1.5)
    tampered_crop_p: float = 0.5  # [ours] a crop that holds a tampered pixel, when any
    blur_p: float = 0.2  # [paper] Gaussian blur; probability [ours]
    blur_kernels: tuple[int, ...] = (3, 5, 7)
    jpeg_p: float = 0.3  # [ours] re-compression, for robustness
    jpeg_quality: tuple[int, int] = (50, 100)  # inclusive
    noise_p: float = 0.2  # [ours] Gaussian noise, for robustness
    noise_sigma: tuple[float, float] = (1.0, 6.0)  # grey levels on the 0-255 scale

    def __post_init__(self) -> None:
        for name in ("hflip_p", "scale_p", "tampered_crop_p", "blur_p", "jpeg_p", "noise_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1]")
        if not 0 < self.scale_range[0] <= self.scale_range[1]:
            raise ValueError("scale_range must be (low, high) with 0 < low <= high")
        if not 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100:
            raise ValueError("jpeg_quality must be (low, high) within 1..100")
        if any(k < 1 or k % 2 == 0 for k in self.blur_kernels):
            raise ValueError("blur_kernels must be positive odd numbers")

    @classmethod
    def off(cls) -> AugmentConfig:
        """No augmentation: training input is then a plain random crop at native scale."""
        return cls(
            hflip_p=0.0, scale_p=0.0, tampered_crop_p=0.0, blur_p=0.0, jpeg_p=0.0, noise_p=0.0
        )
