"""Shared regions across a case: time and recall of ``ncl_core.views.case_match`` on N photos.

    nice -n 19 .venv/bin/python bench/bench_case_match.py --photos DIR [-n 100 300] [--keep]

Builds a case of N photos of about one megapixel in a temporary folder: the first N photos
found under ``--photos`` (JPEG or PNG, any size; each scaled and cropped to 1152 x 864, saved
as a quality-90 JPEG), then in every 10th photo a 160 x 160 patch of another photo of the case
is pasted at a random place (scaled 0.9x; the patch is the busiest of 20 random places of its
photo, as a spliced object would be), and every 50th photo gets a copy resized to 70 %
(a "same picture"). Without ``--photos`` the four bundled samples are not enough for an
unrelated case, so the photos are drawn: smooth random colour fields with noise and shapes.

Then ``match_case`` runs on the files (reading, features, index, verification) and the script
prints the time, the planted regions found (both boxes overlapping the truth, IoU > 0.5), the
same pictures found, and every other pair reported (false alarms, or photos of one scene).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from machine import cpu_name

SIZE = (1152, 864)
PATCH = 160


def _photos(folder: Path | None, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    found: list[Path] = []
    if folder is not None:
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in (".jpg", ".jpeg", ".png") and path.stat().st_size > 50_000:
                found.append(path)
    images: list[np.ndarray] = []
    for path in found:
        if len(images) == n:
            break
        try:
            with Image.open(path) as im:
                rgb = np.asarray(im.convert("RGB"))
        except OSError:
            continue
        if min(rgb.shape[:2]) < 400:
            continue
        images.append(_fit(rgb))
    while len(images) < n:
        images.append(_drawn(rng))
    return images


def _fit(rgb: np.ndarray) -> np.ndarray:
    """Scaled to cover SIZE, centre crop."""
    height, width = rgb.shape[:2]
    scale = max(SIZE[0] / width, SIZE[1] / height)
    size = (max(SIZE[0], round(width * scale)), max(SIZE[1], round(height * scale)))
    rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    y0, x0 = (size[1] - SIZE[1]) // 2, (size[0] - SIZE[0]) // 2
    return np.ascontiguousarray(rgb[y0 : y0 + SIZE[1], x0 : x0 + SIZE[0]])


def _drawn(rng: np.random.Generator) -> np.ndarray:
    small = rng.integers(0, 255, (SIZE[1] // 64, SIZE[0] // 64, 3), dtype=np.uint8)
    image = cv2.resize(small, SIZE, interpolation=cv2.INTER_CUBIC)
    for _ in range(40):
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        centre = (int(rng.integers(0, SIZE[0])), int(rng.integers(0, SIZE[1])))
        if rng.random() < 0.5:
            cv2.circle(image, centre, int(rng.integers(5, 80)), colour, -1)
        else:
            size = (int(rng.integers(5, 120)), int(rng.integers(5, 120)))
            cv2.ellipse(image, centre, size, float(rng.integers(0, 180)), 0, 360, colour, -1)
    noise = rng.normal(0, 6, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def _textured_spot(image: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
    """Of 20 random places for the patch, the busiest (a spliced object, not a piece of sky)."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    best, spot = -1.0, (0, 0)
    for _ in range(20):
        x, y = int(rng.integers(0, SIZE[0] - PATCH)), int(rng.integers(0, SIZE[1] - PATCH))
        energy = float(cv2.Laplacian(grey[y : y + PATCH, x : x + PATCH], cv2.CV_32F).var())
        if energy > best:
            best, spot = energy, (x, y)
    return spot


def _iou(a: list[int], b: list[int]) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    return inter / float(a[2] * a[3] + b[2] * b[3] - inter)


def build_case(folder: Path, photos: Path | None, n: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    images = _photos(photos, n, rng)
    truth: dict = {"regions": [], "same": []}
    small = round(PATCH * 0.9)
    for j in range(0, n, 10):
        i = (j + 7) % n
        sx, sy = _textured_spot(images[i], rng)
        tx, ty = int(rng.integers(0, SIZE[0] - small)), int(rng.integers(0, SIZE[1] - small))
        patch = cv2.resize(
            images[i][sy : sy + PATCH, sx : sx + PATCH],
            (small, small),
            interpolation=cv2.INTER_AREA,
        )
        images[j] = images[j].copy()
        images[j][ty : ty + small, tx : tx + small] = patch
        truth["regions"].append(
            {
                "source": f"{i:04d}.jpg",
                "target": f"{j:04d}.jpg",
                "source_box": [sx, sy, PATCH, PATCH],
                "target_box": [tx, ty, small, small],
            }
        )
    names = []
    for k, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{k:04d}.jpg", quality=90)
        names.append(f"{k:04d}.jpg")
    for k in range(10, n, 50):
        copy = cv2.resize(images[k], (SIZE[0] * 7 // 10, SIZE[1] * 7 // 10), cv2.INTER_AREA)
        Image.fromarray(copy).save(folder / f"{k:04d}_small.jpg", quality=80)
        truth["same"].append((f"{k:04d}.jpg", f"{k:04d}_small.jpg"))
    return truth


def score(result, truth: dict) -> dict:
    found, extra = 0, []
    planted = {(t["source"], t["target"]): t for t in truth["regions"]}
    hit_keys = set()
    for region in result.shared_regions:
        a, b = Path(region["source"]).name, Path(region["target"]).name
        plain = (a.replace("_small", ""), b.replace("_small", ""))
        if "_small" in a + b and (plain in planted or plain[::-1] in planted):
            continue  # the region, found again in the resized copy of its image
        t = planted.get((a, b)) or planted.get((b, a))
        if t is not None:
            boxes = (region["source_box"], region["target_box"])
            if (a, b) != (t["source"], t["target"]):
                boxes = boxes[::-1]
            if _iou(boxes[0], t["source_box"]) > 0.5 and _iou(boxes[1], t["target_box"]) > 0.5:
                hit_keys.add((t["source"], t["target"]))
                continue
        extra.append((a, b, region["matches"]))
    found = len(hit_keys)
    same = {frozenset(p) for p in truth["same"]}
    got_same = {frozenset((Path(d["a"]).name, Path(d["b"]).name)) for d in result.duplicates}
    return {
        "planted_regions": len(planted),
        "found_iou_0.5": found,
        "same_planted": len(same),
        "same_found": len(same & got_same),
        "other_pairs": extra,
        "other_same": sorted(tuple(sorted(p)) for p in got_same - same),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, help="a folder of photos (searched recursively)")
    parser.add_argument("-n", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--budget", type=float, default=None, help="time budget, seconds")
    parser.add_argument("--keep", action="store_true", help="keep the generated case folders")
    args = parser.parse_args()
    from ncl_core.views.case_match import match_case

    print(f"CPU: {cpu_name()} ({os.cpu_count()} cores)")
    print(
        "| images | time (s) | per image (ms) | candidates | planted found | same found | other pairs |"
    )
    print("|---|---|---|---|---|---|---|")
    for n in args.n:
        folder = Path(tempfile.mkdtemp(prefix=f"ncl-case-{n}-"))
        truth = build_case(folder, args.photos, n)
        files = sorted(folder.glob("*.jpg"))
        t0 = time.perf_counter()
        result = match_case(files, time_budget_s=args.budget)
        seconds = time.perf_counter() - t0
        s = score(result, truth)
        print("  steps:", result.summary()["timings"])
        print(
            f"| {len(files)} | {seconds:.1f} | {1000 * seconds / len(files):.0f} | "
            f"{result.n_candidates} ({result.n_verified} verified) | "
            f"{s['found_iou_0.5']} / {s['planted_regions']} | {s['same_found']} / {s['same_planted']} "
            f"| {len(s['other_pairs'])} |"
        )
        if s["other_pairs"] or s["other_same"]:
            print("  other pairs:", json.dumps(s["other_pairs"]), json.dumps(s["other_same"]))
        if not result.complete:
            print("  incomplete:", result.note)
        if args.keep:
            print("  case folder:", folder)
        else:
            for path in folder.iterdir():
                path.unlink()
            folder.rmdir()


if __name__ == "__main__":
    main()
