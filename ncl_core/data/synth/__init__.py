"""Synthetic forgeries that teach forensic traces: splicing, copy-move and removal, with masks.

A forensic network learns from traces that live at the pixel scale: sensor noise, demosaicing,
the JPEG 8x8 grid, resampling. The generator keeps them:

- **host**: a random crop of a photo at its native scale. The only scaling is an optional mild
  rescale (x0.5-1.5) of the whole host, before anything is manipulated.
- **donor** (splice): another photo, or the same photo reprocessed (a self-splice). Its history
  always differs from the host's: each item draws donor-only processing (resampling, JPEG at its
  own quality and grid, noise, blur, gamma, colour shift), at least one step of it.
- **regions**: polygons, ellipses, smooth blobs, or segments that follow image content (a
  flood fill from a random seed), 1-50 % of the image.
- **splice** pastes with a feathered edge of 0-3 px, colour matching on about half of the items
  and an offset that is not a multiple of 8; **copy-move** rotates, scales and flips a region of
  the host, sometimes after a JPEG round trip; **removal** inpaints (Telea, Navier-Stokes) or
  covers the region with a patch from elsewhere in the host.
- **last**, on the whole image, authentic items included: a JPEG on most items (quality 60-100,
  so JPEG hosts carry misaligned double compression), and rarely a resize, blur or noise.

Pixels change only where the blend alpha is positive, and the mask is alpha >= 0.5, so the
mask covers every changed pixel up to the feather band. Every item records its full recipe;
everything is drawn from a seeded RNG: same seed, same bytes.

Modules: ``config`` (``SynthConfig``, the kinds and shapes), ``regions`` (shapes, segments,
feather, blend), ``photos`` (source photos, host crop, donor canvas), ``forge`` (the
manipulations, post-processing, ``make_item``) and ``dataset`` (``generate_dataset``,
``SynthDataset``). Every name is importable from ``ncl_core.data.synth`` itself.
"""

from ncl_core.data.synth.dataset import SynthDataset, generate_dataset, pad_to
from ncl_core.data.synth.forge import make_forgery, make_item, post_process
from ncl_core.data.synth.photos import (
    PhotoCache,
    donor_canvas,
    host_crop,
    native_crop,
    scan_photos,
)
from ncl_core.data.synth.regions import blend, content_segment, draw_region, feather, random_shape
from ncl_core.data.synth.synth_config import DONOR_STEPS, KINDS, MIN_PHOTO_SIDE, SHAPES, SynthConfig
from ncl_core.errors import SynthError

__all__ = [
    "DONOR_STEPS",
    "KINDS",
    "MIN_PHOTO_SIDE",
    "SHAPES",
    "PhotoCache",
    "SynthConfig",
    "SynthDataset",
    "SynthError",
    "blend",
    "content_segment",
    "donor_canvas",
    "draw_region",
    "feather",
    "generate_dataset",
    "host_crop",
    "make_forgery",
    "make_item",
    "native_crop",
    "pad_to",
    "post_process",
    "random_shape",
    "scan_photos",
]
