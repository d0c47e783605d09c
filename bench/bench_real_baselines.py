"""Classic forensic views as localisers: the no-training baselines a model must beat.

Scores each view's map (ELA, noise; in [0, 1], brighter = more suspicious) against the masks of
a labeled set exactly as `ncl-forensics eval` scores a model: per-image F1 at 0.5, best F1,
the all-manipulated floor, pixel AUC, and the image-level AUC when authentic images are given
(the image score is the model's: the mean of the top 0.5 % of the map).

    .venv/bin/python bench/bench_real_baselines.py --data FORGERIES [AUTHENTIC] \
        [--views ela noise] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import math
import time

from ncl_core.analysis import image_score
from ncl_core.data.datasets import scan_dataset
from ncl_core.data.io import ImageReadError
from ncl_core.evaluation.evaluate import read_pair
from ncl_core.evaluation.metrics import MetricAccumulator
from ncl_core.evidence.image import Evidence
from ncl_core.views import VIEWS

from machine import cpu_name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", required=True)
    parser.add_argument("--views", nargs="+", default=["ela", "noise"])
    parser.add_argument("--json")
    args = parser.parse_args()
    samples = [s for root in args.data for s in scan_dataset(root).samples]
    results = {}
    for name in args.views:
        view = VIEWS[name]
        acc = MetricAccumulator()
        t0 = time.perf_counter()
        for sample in samples:
            try:
                image, gt = read_pair(sample)
            except ImageReadError:
                continue
            # With the file's bytes, as the app and analyze give them (ELA reads a JPEG's
            # quantisation tables to choose its quality).
            path = sample.image
            found = view.compute(Evidence(image, path.read_bytes(), path.name, path=path))
            if found.map is None:
                continue
            acc.add(found.map, gt, score=image_score(found.map), tampered=bool(gt.any()))
        result = acc.result()
        results[name] = {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in result.items()
            if isinstance(v, (int, float))
        }
        results[name]["seconds"] = time.perf_counter() - t0
    print(f"{len(samples)} images from {', '.join(args.data)}; {cpu_name()}")
    print(f"{'view':<8} {'n':>5} {'F1@.5':>7} {'bestF1':>7} {'floor':>7} {'AUC':>7} {'imgAUC':>7}")
    for name, r in results.items():
        cells = [r.get(k) for k in ("f1", "best_f1", "floor_f1", "auc", "image_auc")]
        print(
            f"{name:<8} {r['n_all']:>5} "
            + " ".join("    n/a" if c is None else f"{c:>7.3f}" for c in cells)
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"data": args.data, "cpu": cpu_name(), "results": results}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
