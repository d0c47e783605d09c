#!/usr/bin/env python3
"""Build the DATA folder of scripts/train_gpu.sh from scripts/build_starter_data.sh's output.

A GPU lease here uploads at most 64 MiB with the repository, so training takes a subset of the
training crops: two or three per source photo (every photo is kept), about 37 MiB. The
validation and test forgeries come from the validation and test photos, as for the starter.

    .venv/bin/python scripts/build_gpu_data.py /work/data/starter .devdata

OUT gets train/ (copied crops), val512/ (80 forgeries at 512 px), abl/val/ (64 at 256 px) and
abl/test/ (300 at 256 px, 75 per type and 75 authentic).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

CROPS_PER_PHOTO = 3  # every second photo (sorted by name) keeps two, to fit the upload
SYNTH = [  # (folder under OUT, photos split, count, size, seed)
    ("val512", "val", 80, 512, 101),
    ("abl/val", "val", 64, 256, 103),
    ("abl/test", "test", 300, 256, 202),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("starter", type=Path, help="scripts/build_starter_data.sh's OUT_DIR")
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    photos = args.starter / "photos"
    train = args.out / "train"
    for index, folder in enumerate(sorted(p for p in (photos / "train").iterdir() if p.is_dir())):
        crops = sorted(folder.glob("*.jpg"))
        if not crops:
            continue
        keep = min(len(crops), CROPS_PER_PHOTO - (index % 2))
        picked = [crops[int(i * len(crops) / CROPS_PER_PHOTO)] for i in range(keep)]
        (train / folder.name).mkdir(parents=True, exist_ok=True)
        for crop in picked:
            shutil.copy2(crop, train / folder.name / crop.name)
    cli = [sys.executable, "-m", "ncl_core"]
    for folder, split, count, size, seed in SYNTH:
        subprocess.run(
            [*cli, "synth", str(photos / split), str(args.out / folder), "--count", str(count)]
            + ["--size", str(size), "--seed", str(seed), "--authentic-fraction", "0.25"]
            + ["--format", "jpg"],
            check=True,
        )
    n = sum(1 for _ in train.rglob("*.jpg"))
    mib = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file()) / 2**20
    print(f"{args.out}: {n} training crops, {mib:.1f} MiB in all")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
