#!/usr/bin/env python3
"""Build the yardsticks a model is selected and reported on (never trained on).

    .venv/bin/python scripts/build_yardsticks.py --nist NIST16_DIR --photos PHOTO_DIR [PHOTO_DIR ...] OUT

- ``OUT/nist16-A`` and ``OUT/nist16-B``: the real forgeries split by a hash of the image name
  (``split_samples(samples, 0.5, salt="nist-split")``: its validation side is A). Links to the
  original files, nothing copied. A selects and calibrates; B is held out for reporting.
- ``OUT/nist16-B-offcentre``: two crops of each half-B forgery, 60 % of each side, placed at
  random, kept when 0.5-95 % of the crop is manipulated: where the manipulated region lies
  relative to the frame is no longer a clue, so a position prior scores about chance there.
- ``OUT/authentic-native-{A,B}/authentic/``: crops of held-out authentic photos at native resolution (up
  to 1,024 x 768, on the 8 x 8 grid, stored losslessly; two of each photo over 2 MP).
- ``OUT/authentic-published-{A,B}/authentic/``: the same photos as evidence usually arrives: the whole
  photo downscaled (long side 800-2,048 px), recompressed as JPEG (quality 70-95, 4:2:0 or
  4:4:4, sometimes twice), or a "screenshot" (downscaled, saved as PNG).

Authentic photos are split by photo (a hash of the photo's folder name), so no photo is on
both sides. Every choice is drawn from a generator seeded by the photo's name: the same
photos always give the same files. ``OUT/yardsticks.json`` lists what was written.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from ncl_core.data.datasets import scan_dataset, split_samples
from ncl_core.data.io import read_image
from ncl_core.data.synth import scan_photos

Image.MAX_IMAGE_PIXELS = 200_000_000


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big"))


def _half(name: str) -> str:
    return "A" if hashlib.sha256(f"authentic-split:{name}".encode()).digest()[0] < 128 else "B"


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    os.symlink(src.resolve(), dst)


def split_nist(nist: Path, out: Path) -> dict[str, int]:
    samples = scan_dataset(nist).samples
    half_b, half_a = split_samples(samples, 0.5, salt="nist-split")
    counts = {}
    for label, part in (("A", half_a), ("B", half_b)):
        root = out / f"nist16-{label}"
        for s in part:
            _link(s.image, root / "tampered" / s.image.name)
            if s.mask is not None:
                _link(s.mask, root / "masks" / s.mask.name)
        counts[f"nist16-{label}"] = len(part)
    return counts


def offcentre_crops(half_b: Path, out: Path) -> int:
    """Two random crops (60 % of each side) of each forgery of ``half_b``, saved losslessly
    (the JPEG already in them stays; nothing is recompressed), with their masks."""
    count = 0
    for sample in scan_dataset(half_b).samples:
        image = read_image(sample.image)[0]
        mask = np.asarray(Image.open(sample.mask).convert("L")) > 127
        if mask.shape != image.shape[:2]:
            continue
        rng = _rng(f"offcentre:{sample.image.name}")
        h, w = mask.shape
        ch, cw = int(h * 0.6), int(w * 0.6)
        for k in range(2):
            for _ in range(20):
                y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
                share = mask[y : y + ch, x : x + cw].mean()
                if 0.005 <= share <= 0.95:
                    break
            else:
                continue
            stem = f"{sample.image.stem}-{k}"
            (out / "tampered").mkdir(parents=True, exist_ok=True)
            (out / "masks").mkdir(parents=True, exist_ok=True)
            Image.fromarray(image[y : y + ch, x : x + cw]).save(out / "tampered" / f"{stem}.png")
            crop = (mask[y : y + ch, x : x + cw] * 255).astype(np.uint8)
            Image.fromarray(crop).save(out / "masks" / f"{stem}.png")
            count += 1
    return count


def _jpeg(image: np.ndarray, quality: int, subsampling: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality, subsampling=subsampling)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def _resize_long(image: np.ndarray, long_side: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    if scale >= 1:
        return image
    size = (max(8, round(w * scale)), max(8, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


def native_crops(photo: np.ndarray, name: str) -> list[np.ndarray]:
    rng = _rng(f"native:{name}")
    h, w = photo.shape[:2]
    n = 2 if h * w > 2_000_000 else 1
    crops = []
    for _ in range(n):
        ch, cw = min(h, 768), min(w, 1024)
        if h > w:
            ch, cw = min(h, 1024), min(w, 768)
        y = int(rng.integers(0, (h - ch) // 8 + 1)) * 8
        x = int(rng.integers(0, (w - cw) // 8 + 1)) * 8
        crops.append(np.ascontiguousarray(photo[y : y + ch, x : x + cw]))
    return crops


def published(photo: np.ndarray, name: str) -> list[tuple[str, bytes]]:
    """Two versions of the photo as it is usually passed on: (suffix, encoded bytes)."""
    rng = _rng(f"published:{name}")
    out = []
    for k in range(2):
        image = _resize_long(photo, int(rng.integers(800, 2049)))
        if rng.random() < 0.2:  # a screenshot: resampled, then lossless
            image = _resize_long(image, int(max(image.shape[:2]) * rng.uniform(0.6, 0.9)))
            buf = io.BytesIO()
            Image.fromarray(image).save(buf, "PNG")
            out.append((f"{k}-screenshot.png", buf.getvalue()))
            continue
        if rng.random() < 0.3:  # passed on twice
            image = _jpeg(image, int(rng.integers(75, 96)), 2)
            image = _resize_long(image, int(max(image.shape[:2]) * rng.uniform(0.6, 1.0)))
        quality = int(rng.integers(70, 96))
        subsampling = 2 if rng.random() < 0.7 else 0
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, "JPEG", quality=quality, subsampling=subsampling)
        out.append((f"{k}-q{quality}.jpg", buf.getvalue()))
    return out


def build_authentic(photo_dirs: list[Path], out: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for folder in photo_dirs:
        photos, problems = scan_photos(folder)
        for line in problems:
            print(f"warning: {line}", file=sys.stderr)
        for path in photos:
            name = path.parent.name if path.parent != folder else path.stem
            half = _half(name)
            photo = read_image(path)[0]
            native = out / f"authentic-native-{half}" / "authentic"
            native.mkdir(parents=True, exist_ok=True)
            for i, crop in enumerate(native_crops(photo, name)):
                Image.fromarray(crop).save(native / f"{name}-{i}.png")
                counts[native.parent.name] = counts.get(native.parent.name, 0) + 1
            pub = out / f"authentic-published-{half}" / "authentic"
            pub.mkdir(parents=True, exist_ok=True)
            for suffix, data in published(photo, name):
                (pub / f"{name}-{suffix}").write_bytes(data)
                counts[pub.parent.name] = counts.get(pub.parent.name, 0) + 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--nist", type=Path, help="NIST16 folder (tampered/ + masks/)")
    parser.add_argument(
        "--photos",
        type=Path,
        nargs="*",
        default=[],
        help="folders of held-out authentic photos (a pool split's val/test)",
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    if args.nist:
        counts.update(split_nist(args.nist, args.out))
        offcentre = args.out / "nist16-B-offcentre"
        counts[offcentre.name] = offcentre_crops(args.out / "nist16-B", offcentre)
    if args.photos:
        counts.update(build_authentic(args.photos, args.out))
    record = {"counts": counts, "nist": str(args.nist), "photos": [str(p) for p in args.photos]}
    (args.out / "yardsticks.json").write_text(json.dumps(record, indent=1))
    for name, n in sorted(counts.items()):
        print(f"{name}: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
