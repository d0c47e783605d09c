"""The JPEG damage check (``ncl_core.data.io.jpeg_damage``): what it costs beside the decode,
whether it stays silent on intact files, and which damage it notices.

For every JPEG under the folders: the time of ``read_image`` (the decode, the check included)
and of the check alone, and whether the intact file was flagged. Then, for the first ``--damaged``
files, three damaged copies made in memory, each read as evidence is (Pillow decodes all of
them): cut in the middle of the scan and closed with an end marker; a run of 512 zero bytes
at a third of the file; 16 bytes flipped at random in the scan. For each: whether the check
flagged it, and the share of pixels the damage changed (more than 40 grey levels in a channel).

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_jpeg_damage.py FOLDER [FOLDER ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from ncl_core.data.io import jpeg_damage, read_image_bytes

from machine import cpu_name


def _scan_start(data: bytes) -> int:
    """Offset just after the first start-of-scan header (0 when there is none)."""
    at = data.find(b"\xff\xda")
    if at < 0:
        return 0
    return at + 2 + int.from_bytes(data[at + 2 : at + 4], "big")


def damaged_copies(data: bytes, rng: np.random.Generator) -> dict[str, bytes]:
    start = _scan_start(data)
    scan = len(data) - 2 - start
    half = start + scan // 2
    third = start + scan // 3
    flipped = bytearray(data)
    for at in rng.integers(start, len(data) - 2, 16):
        flipped[at] ^= 0xFF
    return {
        "cut and closed": data[:half] + b"\xff\xd9",
        "512 zero bytes": data[:third] + bytes(512) + data[third + 512 :],
        "16 flipped bytes": bytes(flipped),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--damaged", type=int, default=100, help="files to damage (default 100)")
    args = parser.parse_args(argv)
    files = sorted(
        p
        for folder in args.folders
        for p in folder.rglob("*")
        if p.suffix.lower() in (".jpg", ".jpeg")
    )
    if not files:
        print("no JPEG files under the folders", file=sys.stderr)
        return 2
    decode_ms, check_ms, megapixels, flagged = [], [], [], []
    for path in files:
        data = path.read_bytes()
        t0 = time.perf_counter()
        image, _ = read_image_bytes(data, path.name)
        t1 = time.perf_counter()
        damage = jpeg_damage(data)
        t2 = time.perf_counter()
        decode_ms.append(1000 * (t1 - t0))
        check_ms.append(1000 * (t2 - t1))
        megapixels.append(image.shape[0] * image.shape[1] / 1e6)
        if damage is not None:
            flagged.append(f"{path}: {damage}")
    decode, check, mp = np.array(decode_ms), np.array(check_ms), np.array(megapixels)
    print(f"CPU: {cpu_name()}; {len(files)} intact JPEGs, {mp.min():.1f}-{mp.max():.1f} MP")
    print(
        f"read_image (decode and check): median {np.median(decode):.1f} ms, "
        f"mean {decode.mean():.1f} ms; the check alone: median {np.median(check):.1f} ms, "
        f"mean {check.mean():.1f} ms, {100 * check.sum() / decode.sum():.0f} % of the reads' time"
    )
    print(f"intact files flagged: {len(flagged)}")
    for line in flagged:
        print("  " + line)

    rng = np.random.default_rng(0)
    found: dict[str, list[bool]] = {}
    changed: dict[str, list[float]] = {}
    for path in files[: args.damaged]:
        data = path.read_bytes()
        intact = read_image_bytes(data, path.name)[0].astype(np.int16)
        for kind, copy in damaged_copies(data, rng).items():
            try:
                image = read_image_bytes(copy, path.name)[0].astype(np.int16)
            except Exception:  # noqa: BLE001 - refused outright: an error, not a silent read
                continue
            changed.setdefault(kind, []).append(
                float((np.abs(image - intact).max(axis=2) > 40).mean())
            )
            found.setdefault(kind, []).append(jpeg_damage(copy) is not None)
    print(
        f"damaged copies of the first {min(args.damaged, len(files))} files, as Pillow reads them:"
    )
    print(
        "| damage | read without an error | flagged | pixels changed, median (flagged / missed) |"
    )
    print("|---|---|---|---|")
    for kind, hits in found.items():
        hit = np.array(hits)
        share = np.array(changed[kind])
        median = lambda v: f"{100 * np.median(v):.0f} %" if len(v) else "-"  # noqa: E731
        print(
            f"| {kind} | {len(hit)} | {hit.sum()} ({100 * hit.mean():.0f} %) | "
            f"{median(share)} ({median(share[hit])} / {median(share[~hit])}) |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
