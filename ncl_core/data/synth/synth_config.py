"""What the generator makes: the forgery kinds, region shapes, donor steps and ``SynthConfig``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ncl_core.jsonconfig import JsonConfig
from ncl_core.settings import KINDS

SHAPES = ("polygon", "ellipse", "blob", "segment")
DONOR_STEPS = ("resample", "jpeg", "noise", "blur", "gamma", "colour")
MIN_PHOTO_SIDE = 64  # smaller photos are listed as skipped


@dataclass
class SynthConfig(JsonConfig):
    """What to generate and how; every value drawn per image is recorded in its recipe."""

    size: int = 512  # output side: a crop of the host at native scale (smaller photos: smaller)
    types: tuple[str, ...] = KINDS
    authentic_fraction: float = 0.25  # share of untouched (but post-processed) crops
    seed: int = 0
    # Host
    host_rescale_p: float = 0.3  # rescale the whole host before any manipulation
    host_rescale_range: tuple[float, float] = (0.5, 1.5)
    # Region
    area_range: tuple[float, float] = (0.01, 0.5)  # manipulated fraction of the image
    # Placement: the whole region inside the frame, else its centre anywhere in the frame (a
    # region cut by the edge, as a cropped edit is). Always inside, the regions would cover
    # the centre far more often than the border, and a network learns that prior.
    region_inside_p: float = 0.1
    # Texture: a region smoother than its image is kept with probability (its texture / the
    # image's) ** texture_power (0: any region). Pasted objects are textured; flat regions
    # alone teach that smooth means manipulated, which real forgeries contradict.
    texture_power: float = 4.0
    removal_area_range: tuple[float, float] = (0.01, 0.15)  # inpainting large areas only smears
    shape_weights: tuple[float, ...] = (0.2, 0.1, 0.25, 0.45)  # SHAPES, in order
    feather_px: tuple[float, float] = (0.0, 3.0)  # width of the soft edge; below 0.5: a hard cut
    # Pastes (splices, copy-moves, patches over a removal) blended into their surroundings: a
    # smooth correction takes away any step of colour or brightness along the region's edge,
    # as an editor's healing brush or gradient-domain paste does; else the edge is feathered.
    membrane_blend_p: float = 0.0
    # Splice
    self_splice_p: float = 0.3  # donor = the same photo, reprocessed, from elsewhere
    donor_resample_range: tuple[float, float] = (0.6, 1.6)
    donor_jpeg_quality: tuple[int, int] = (50, 100)  # inclusive
    donor_noise_sigma: tuple[float, float] = (1.0, 6.0)
    donor_blur_sigma: tuple[float, float] = (0.4, 1.5)
    donor_gamma_range: tuple[float, float] = (0.7, 1.4)
    donor_colour_shift: float = 18.0  # max per-channel offset, grey levels
    donor_step_p: tuple[float, ...] = (0.5, 0.5, 0.3, 0.2, 0.3, 0.3)  # DONOR_STEPS, in order
    color_match_p: float = 0.5  # match the pasted colours to the target area
    # Copy-move
    transform_p: float = 0.7  # rotate and scale (else only shift)
    scale_range: tuple[float, float] = (0.75, 1.33)
    rotation_range: tuple[float, float] = (-45.0, 45.0)  # degrees
    flip_p: float = 0.25
    copy_jpeg_p: float = 0.3  # JPEG round trip of the copied content
    min_shift: float = 0.5  # source-target distance, in region diameters
    # Removal
    removal_patch_p: float = 0.3  # cover with a patch from elsewhere; else inpaint
    inpaint_radius: int = 5
    # Publication: evidence is usually passed on smaller than it was edited. The edit is made
    # on a host crop 1/scale times larger, then the whole item is downscaled to ``size``, each
    # axis by its own factor (resize-mode inference squashes a whole image the same way).
    publish_scale_p: float = 0.6
    publish_scale_range: tuple[float, float] = (0.3, 1.0)
    publish_aspect: float = 1.35  # largest ratio between the two axes' factors
    # Global post-processing, in this order; JPEG last
    resize_p: float = 0.05  # down-scale then back up (resampling traces)
    resize_range: tuple[float, float] = (0.5, 0.9)
    blur_p: float = 0.05
    blur_kernels: tuple[int, ...] = (3, 5)
    noise_p: float = 0.05
    noise_sigma: tuple[float, float] = (1.0, 5.0)
    jpeg_p: float = 0.85
    jpeg_quality: tuple[int, int] = (60, 98)  # inclusive
    jpeg_444_p: float = 0.3  # chroma kept at full resolution; else subsampled 4:2:0
    jpeg_twice_p: float = 0.2  # of the JPEG items: passed on again, at another quality
    # Output files
    image_format: str = "png"  # "png" (lossless, default) or "jpg"
    save_quality: int = 95  # JPEG quality of the written file when image_format is "jpg"

    def __post_init__(self) -> None:
        self.types = tuple(self.types)  # a list from a CLI or JSON works the same
        unknown = set(self.types) - set(KINDS)
        if not self.types or unknown:
            raise ValueError(f"types must be a non-empty subset of {KINDS}, got {self.types!r}")
        if self.size < 32:
            raise ValueError("size must be at least 32 px")
        for name in ("authentic_fraction", "membrane_blend_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1]")
        for name in ("area_range", "removal_area_range"):
            a, b = getattr(self, name)
            if not 0.0 < a <= b < 1.0:
                raise ValueError(f"{name} must be (low, high) with 0 < low <= high < 1")
        if len(self.shape_weights) != len(SHAPES) or sum(self.shape_weights) <= 0:
            raise ValueError(f"shape_weights needs one weight per shape {SHAPES}")
        if len(self.donor_step_p) != len(DONOR_STEPS):
            raise ValueError(f"donor_step_p needs one probability per step {DONOR_STEPS}")
        a, b = self.publish_scale_range
        if not 0.0 < a <= b <= 1.0 or self.publish_aspect < 1.0:
            raise ValueError("publish_scale_range must lie in (0, 1] and publish_aspect >= 1")
        if self.image_format not in ("png", "jpg"):
            raise ValueError("image_format must be 'png' or 'jpg'")

    @classmethod
    def plain(cls, **overrides: Any) -> SynthConfig:
        """No host rescale and no global post-processing: outside its region an item is the
        native crop of its photo, bit for bit (what the invariant tests pin)."""
        base = {
            "host_rescale_p": 0.0,
            "publish_scale_p": 0.0,
            "resize_p": 0.0,
            "blur_p": 0.0,
            "noise_p": 0.0,
            "jpeg_p": 0.0,
        }
        return cls(**{**base, **overrides})
