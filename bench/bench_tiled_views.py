"""Tiled analysis and the forensic views on a CPU: seconds per image, before against after.

    nice -n 5 .venv/bin/python bench/bench_tiled_views.py IMG [IMG ...] [--threads N]
        [--precision auto|fp32] [--what resize tiled ela clone]
    nice -n 5 .venv/bin/python bench/bench_tiled_views.py IMG ... --before DIR [--rounds 3]

The first form loads the bundled model and times, on each image, resize mode, tiled mode and
the ELA and clone views (each after one warm-up run, so the network's kernels are built) and
prints one JSON line per image. ``--before DIR`` runs that form in fresh processes, taking turns
between the code in DIR (a copy of an earlier ``ncl_core``, e.g. from ``git archive REV
ncl_core | tar -x -C DIR``) and this checkout, ``--rounds`` times, so that a machine's load
falls on both alike; it prints the median of each as a Markdown table with the load average.
Code from before ``InferenceSettings.precision`` ignores ``--precision`` (it ran fp32).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "resources" / "models" / "ncl-starter.safetensors"
WHAT = ("resize", "tiled", "ela", "clone")


def _call(predictor, model: bool, args: tuple):
    """An analysis (``model``: evidence, settings) or a view (name, evidence)."""
    from ncl_core.views import compute_view

    return predictor.analyze(args[0], settings=args[1]) if model else compute_view(*args)


def measure(paths: list[str], what: list[str], precision: str, threads: int | None) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)
    from ncl_core.evidence.image import load_evidence
    from ncl_core.inference.predictor import InferenceSettings, Predictor
    from ncl_core.views import Evidence

    predictor = Predictor.load(MODEL, "cpu")

    def settings(mode: str):
        try:
            return InferenceSettings(mode=mode, precision=precision)
        except TypeError:  # code from before the precision setting: fp32
            return InferenceSettings(mode=mode)

    for path in paths:
        evidence, views_evidence = load_evidence(path), Evidence.from_path(path)
        row = {"image": Path(path).name, "size": "{1}x{0}".format(*evidence.image.shape[:2])}
        for name in what:
            model = name in ("resize", "tiled")
            one = (evidence, settings(name)) if model else (name, views_evidence)
            result = _call(predictor, model, one)  # warm-up: kernels for this size, caches
            start = time.perf_counter()
            result = _call(predictor, model, one)
            row[name] = round(time.perf_counter() - start, 3)
            if model:
                row["precision"] = result.settings.get("precision", "fp32")
        row["threads"] = torch.get_num_threads()
        print(json.dumps(row), flush=True)


def compare(args) -> None:
    rows: dict[tuple[str, str], list[dict]] = {}
    loads = [os.getloadavg()[0]]
    for _ in range(args.rounds):
        for label, code in (("before", args.before), ("after", str(ROOT))):
            command = [sys.executable, __file__, *args.images, "--what", *args.what]
            command += ["--precision", args.precision]
            if args.threads:
                command += ["--threads", str(args.threads)]
            env = {**os.environ, "PYTHONPATH": code}
            out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            for line in out.stdout.splitlines():
                if line.startswith("{"):
                    row = json.loads(line)
                    rows.setdefault((row["image"], label), []).append(row)
            loads.append(os.getloadavg()[0])
    print(
        f"\nMedian of {args.rounds} turns each, before and after alternating; load average "
        f"(1 min) {min(loads):.1f} to {max(loads):.1f} on {os.cpu_count()} logical cores\n"
    )
    print("| image | code | " + " | ".join(f"{w} (s)" for w in args.what) + " | precision |")
    print("|---|---|" + "---:|" * len(args.what) + "---|")
    for (image, label), found in rows.items():
        cells = [f"{statistics.median(r[w] for r in found):.2f}" for w in args.what]
        size = found[0]["size"]
        print(
            f"| {image} ({size}) | {label} | "
            + " | ".join(cells)
            + f" | {found[0].get('precision', '')} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+")
    parser.add_argument("--what", nargs="+", choices=WHAT, default=list(WHAT))
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    parser.add_argument("--before", help="a folder holding an earlier ncl_core to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.before:
        compare(args)
    else:
        measure(args.images, args.what, args.precision, args.threads)


if __name__ == "__main__":
    main()
