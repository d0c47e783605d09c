#!/usr/bin/env python3
"""Build resources/samples/ (the bundled sample forgeries) with ncl_core.data.synth.

The source photos are scikit-image's public-domain / CC0 sample photos, taken from its wheel:

    .venv/bin/pip download scikit-image==0.26.0 --no-deps -d /tmp/skimage-wheel
    unzip -o -q /tmp/skimage-wheel/scikit_image-0.26.0-*.whl 'skimage/data/*' -d /tmp/skimage-wheel
    .venv/bin/python scripts/make_samples.py /tmp/skimage-wheel/skimage/data

Deterministic: the photos are checked against their SHA-256 and every draw is seeded, so two runs
write the same files. The committed samples were made with the generator's previous version
(photos squashed to 512 px); a run today makes native-scale samples whose seeds were not
re-chosen by eye. Writes tampered/, masks/, authentic/, synth.json and SOURCES.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np

from ncl_core.data.io import read_image
from ncl_core.data.synth import SynthConfig, make_item

REPO = Path(__file__).resolve().parent.parent
SKIMAGE = "scikit-image 0.26.0 (skimage/data/, BSD-3-Clause package)"
# name -> (sha256, origin, licence), as stated in skimage/data/_fetchers.py of that version.
PHOTOS = {
    "astronaut.png": (
        "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
        "Eileen Collins, NASA Great Images database (https://flic.kr/p/r9qvLn)",
        "public domain (NASA): no known copyright restrictions",
    ),
    "coffee.png": (
        "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
        "coffee cup, courtesy of Pikolo Espresso Bar, photo by Rachel Michetti",
        "CC0 1.0 (no copyright restrictions)",
    ),
    "rocket.jpg": (
        "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
        "DSCOVR launch on Falcon 9, SpaceX Photos "
        "(https://www.flickr.com/photos/spacexphotos/16511594820/)",
        "public domain (released by SpaceX)",
    ),
    "chelsea.png": (
        "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
        "Chelsea the cat, photo by Stefan van der Walt",
        "CC0 1.0 (no copyright restrictions)",
    ),
}
NO_POST = {"host_rescale_p": 0.0, "resize_p": 0.0, "blur_p": 0.0, "noise_p": 0.0, "jpeg_p": 0.0}
# (output stem, kind, photo, donor, seed, config overrides). Seeds were chosen by looking at
# the results: a plausible region, on the subject, not cut off by the border.
FORGERIES = [
    (
        "astronaut_splice",
        "splice",
        "astronaut.png",
        "coffee.png",
        1,
        {"area_range": (0.06, 0.14), "feather_px": (1.0, 3.0), "color_match_p": 0.0, **NO_POST},
    ),
    (
        "rocket_copy_move",
        "copy_move",
        "rocket.jpg",
        None,
        8,
        {"area_range": (0.04, 0.10), "feather_px": (1.0, 3.0), "transform_p": 1.0, **NO_POST},
    ),
    (
        "coffee_removal",
        "removal",
        "coffee.png",
        None,
        1,
        {"shape_weights": (0.0, 0.0, 1.0, 0.0), **NO_POST},
    ),
]
AUTHENTIC = "chelsea.png"
SIZE = 512
JPEG_QUALITY = 92


def load(source: Path, name: str) -> np.ndarray:
    path = source / name
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != PHOTOS[name][0]:
        sys.exit(f"{path}: SHA-256 {digest} differs from the pinned photo; use scikit-image 0.26.0")
    return read_image(path)[0]


def write_jpeg(path: Path, image: np.ndarray) -> None:
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    assert ok
    path.write_bytes(data.tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="folder holding the scikit-image photos")
    parser.add_argument("--out", type=Path, default=REPO / "resources" / "samples")
    args = parser.parse_args()
    out: Path = args.out
    for sub in ("tampered", "masks", "authentic"):
        shutil.rmtree(out / sub, ignore_errors=True)
        (out / sub).mkdir(parents=True)

    record = []
    rows = []
    for stem, kind, photo_name, donor_name, seed, overrides in FORGERIES:
        config = SynthConfig(size=SIZE, seed=seed, types=(kind,), **overrides)
        rng = np.random.default_rng(seed)
        photo = load(args.source, photo_name)
        donor = load(args.source, donor_name) if donor_name else None
        image, mask, params = make_item(photo, donor, kind, rng, config)
        write_jpeg(out / "tampered" / f"{stem}.jpg", image)
        ok, png = cv2.imencode(".png", mask.astype(np.uint8) * 255)
        (out / "masks" / f"{stem}.png").write_bytes(png.tobytes())
        record.append(
            {
                "image": f"tampered/{stem}.jpg",
                "mask": f"masks/{stem}.png",
                "source": photo_name,
                "donor": donor_name,
                "seed": seed,
                **params,
                "config": dataclasses.asdict(config),
            }
        )
        rows.append(
            f"| tampered/{stem}.jpg | {kind} | {photo_name}"
            + (f" (region from {donor_name})" if donor_name else "")
            + f" | {params['area_fraction']:.1%} |"
        )
    authentic = load(args.source, AUTHENTIC)
    write_jpeg(out / "authentic" / "chelsea.jpg", authentic)
    rows.append(f"| authentic/chelsea.jpg | authentic | {AUTHENTIC} (re-encoded only) | 0 % |")
    (out / "synth.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    (out / "SOURCES.md").write_text(sources_md(rows), encoding="utf-8")
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"wrote {out} ({total / 1e6:.2f} MB)")


def sources_md(rows: list[str]) -> str:
    photos = "\n".join(
        f"| {name} | {origin} | {licence} | `{sha[:16]}…` |"
        for name, (sha, origin, licence) in PHOTOS.items()
    )
    return f"""# Sample images

Generated by `scripts/make_samples.py` with `ncl_core.data.synth` (do not edit by hand;
rerun the script). Masks are PNG, white = tampered, same stem as the image. Every drawn
parameter is in `synth.json`. Tampered images are {SIZE}x{SIZE} (square crop of the photo,
resized), saved as JPEG quality {JPEG_QUALITY}; no other post-processing.

| file | kind | made from | tampered area |
|---|---|---|---|
{chr(10).join(rows)}

## Source photos

All from {SKIMAGE}; origin and licence as stated in that package's
`skimage/data/_fetchers.py`.

| file | origin | licence | SHA-256 |
|---|---|---|---|
{photos}

## Command

```
.venv/bin/pip download scikit-image==0.26.0 --no-deps -d /tmp/skimage-wheel
unzip -o -q /tmp/skimage-wheel/scikit_image-0.26.0-*.whl 'skimage/data/*' -d /tmp/skimage-wheel
.venv/bin/python scripts/make_samples.py /tmp/skimage-wheel/skimage/data
```
"""


if __name__ == "__main__":
    main()
