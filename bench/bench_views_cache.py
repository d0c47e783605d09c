"""Memory the GUI's forensic-views cache holds for one large image with every map view.

    .venv/bin/python bench/bench_views_cache.py [--megapixels 12]

Computes every view with a map (ELA, noise, JPEG ghost, double quantisation, clone detection,
combined) of ``bench_views``' photo-like JPEG, then counts the bytes of the arrays held:

- *before*: the results as computed (float32 maps), as the cache kept them per image;
- *ViewCache, the image shown*: ``ncl_core.views.cache.ViewCache`` with the image in focus and
  two maps asked for (the map shown and the one beside it, held as computed);
- *ViewCache, another image shown*: the same cache once another image is in focus.

``tracemalloc`` (numpy's arrays are traced) checks what putting the results into the cache
allocates and keeps, and the peak of reading a map back.

Prints a Markdown table for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import tracemalloc
from pathlib import Path

from bench_views import _photo_jpeg

from ncl_core.evidence.image import load_evidence
from ncl_core.views import MAP_VIEWS, compute_views
from ncl_core.views.cache import ViewCache, _details_nbytes

from machine import cpu_name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=12.0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ncl-bench-cache-") as tmp:
        path = Path(tmp) / "photo.jpg"
        path.write_bytes(_photo_jpeg(args.megapixels))
        evidence = load_evidence(path)
    height, width = evidence.image.shape[:2]
    results = compute_views(MAP_VIEWS, evidence)
    maps = {n: r.map for n, r in results.items() if r.map is not None}
    details = sum(_details_nbytes(r.details) for r in results.values())
    print(f"{width} x {height} px; {len(maps)} maps: {', '.join(maps)}")
    before = sum(m.nbytes for m in maps.values()) + details

    # What putting the results into the cache allocates and keeps (the levels), and its peak.
    cache = ViewCache()
    cache.focus("photo")
    gc.collect()
    tracemalloc.start()
    cache.put("photo", results)
    put_kept, put_peak = tracemalloc.get_traced_memory()
    for name in ("ela", "noise"):  # the map shown and the one beside it: as computed
        cache.get("photo", name)
    shown = cache.nbytes + cache.focus_nbytes
    cache.focus("another image")
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    cache.get("photo", "ela")  # read back: a float map again, not kept
    restore_peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    elsewhere = cache.nbytes + cache.focus_nbytes

    mb = 2**20
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores")
    print("| kept of the image | MiB |")
    print("|---|---:|")
    print(f"| before: the results as computed (float32 maps, detail arrays) | {before / mb:.1f} |")
    print(
        f"| ViewCache, the image shown: levels {cache.nbytes / mb:.1f} + float32 maps shown "
        f"{(shown - cache.nbytes) / mb:.1f} | {shown / mb:.1f} |"
    )
    print(f"| ViewCache, another image shown: levels only | {elsewhere / mb:.1f} |")
    print(
        f"tracemalloc: put kept {put_kept / mb:.1f} MiB (peak {put_peak / mb:.1f}); "
        f"reading a map back allocates at most {restore_peak / mb:.1f} MiB"
    )


if __name__ == "__main__":
    main()
