"""The marginal cost per image of ``batch --report`` against ``analyze``, and what a report's
pictures cost, for one or more checkouts of the code, in alternating rounds.

    .venv/bin/python bench/bench_report_speed.py [--n 40] [--size 1024] [--rounds 3]
        [--code DIR ...] [--cli] [--parts] [--model PATH] [--pictures all|indicated]

Writes ``--n`` photo-like JPEGs of ``--size`` px (``bench_batch.write_images``) into a
temporary folder, then for each round and each ``--code`` checkout (default: this one; give
an older checkout, e.g. a ``git worktree``, for a before/after) starts a fresh process that
loads the model once and times, on the same images, in turn:

- *analyze*: what ``ncl-forensics analyze`` does per image (``Predictor.analyze_stream`` and
  the finding), no output files;
- *report*: ``run_batch`` with the defaults of ``ncl-forensics batch --report`` (pictures,
  rows, HTML, PDF, manifest).

Each is timed on the first quarter of the images and on all of them: the time per image is
the difference over the difference in images, so that what a report costs once (fonts, the
folder, the finished documents' fixed part) and start-up stay out. The figure is images/s of
*report* over *analyze* (the target: >= 0.85), median over the rounds, with the CPU time per
image (``time.process_time``: all threads) of each. ``--cli`` times the commands themselves instead, on the first quarter of the
images and on all of them: the marginal time per image is the difference over the difference
in images (start-up cancels out). ``--parts`` prints the CPU time of each picture of a row.
``--pictures indicated`` times reports that draw pictures only for the images with a finding.
The rounds alternate checkouts and the order of the two timings, so a changing background
load hits both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_MODEL = ROOT / "resources" / "models" / "ncl-starter.safetensors"


# -- one checkout, one round (a fresh process: --worker) ----------------------------------------
def worker(args: argparse.Namespace) -> dict:
    import ncl_core

    # As the commands set up the process, where this checkout does (an older one does not: an
    # editable install would still find the module in the current one).
    if (Path(ncl_core.__file__).parent / "cpu.py").is_file():
        from ncl_core.cpu import prefer_sleeping_threads, set_aside_long_lived_objects
    else:
        prefer_sleeping_threads = set_aside_long_lived_objects = lambda: None  # noqa: E731
    prefer_sleeping_threads()
    import torch

    from ncl_core.inference.finding import analysis_finding
    from ncl_core.inference.predictor import Predictor
    from ncl_core.report import ReportOptions, run_batch

    images = Path(args.images)
    few_dir = images.parent / "images-few"  # the first quarter: its time is the fixed part
    paths = sorted(p for p in images.iterdir() if p.is_file())
    few = sorted(p for p in few_dir.iterdir() if p.is_file())
    predictor = Predictor.load(args.model, device="cpu")
    set_aside_long_lived_objects()
    for path in paths[:2]:  # warm-up
        predictor.analyze(path)

    def analyze(folder: Path) -> tuple[float, float]:
        files = sorted(p for p in folder.iterdir() if p.is_file())
        wall, cpu = time.perf_counter(), time.process_time()
        for _evidence, result in predictor.analyze_stream(files):
            analysis_finding(result)
        return time.perf_counter() - wall, time.process_time() - cpu

    # Older checkouts know no pictures option: it is given only when it is not the default.
    options = ReportOptions(**({"pictures": args.pictures} if args.pictures != "all" else {}))
    with_pictures = []  # rows of the last report that have their pictures

    def report(folder: Path) -> tuple[float, float]:
        out = Path(args.out)
        shutil.rmtree(out, ignore_errors=True)
        wall, cpu = time.perf_counter(), time.process_time()
        summary = run_batch([folder], predictor, out, options)
        spent = time.perf_counter() - wall, time.process_time() - cpu
        with_pictures.append(sum(1 for r in summary.rows if r.get("image_path")))
        return spent

    first, second = (report, analyze) if args.report_first else (analyze, report)
    timed = {}
    for folder in (few_dir, images):
        timed[first.__name__, folder] = first(folder)
        timed[second.__name__, folder] = second(folder)
    extra = len(paths) - len(few)

    def marginal(kind: str, i: int) -> float:
        return 1000 * (timed[kind, images][i] - timed[kind, few_dir][i]) / extra

    return {
        "images": len(paths),
        "analyze_ms": marginal("analyze", 0),
        "report_ms": marginal("report", 0),
        "analyze_cpu_ms": marginal("analyze", 1),
        "report_cpu_ms": marginal("report", 1),
        "ratio": marginal("analyze", 0) / marginal("report", 0),
        "report_fixed_s": timed["report", few_dir][0] - len(few) * marginal("report", 0) / 1000,
        "torch_threads": torch.get_num_threads(),
        "rows_with_pictures": with_pictures[-1],
    }


def cli_round(
    code: Path, images: list[Path], model: Path, work: Path, pictures: str = "all"
) -> dict:
    """``analyze`` and ``batch --report`` on a quarter of the images and on all of them."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    few = images[: max(1, len(images) // 4)]

    def run(command: list[str]) -> tuple[float, float]:
        before = os.times()
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "ncl_core", *command],
            env=env,
            cwd=code,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        after = os.times()
        cpu = (after.children_user + after.children_system) - (
            before.children_user + before.children_system
        )
        return time.perf_counter() - start, cpu

    def batch(paths: list[Path]) -> tuple[float, float]:
        folder = work / f"in-{len(paths)}"
        if not folder.is_dir():
            folder.mkdir()
            for path in paths:
                os.link(path, folder / path.name)
        out = work / "cli-report"
        shutil.rmtree(out, ignore_errors=True)
        command = ["batch", str(folder), "--report", str(out), "--model", str(model)]
        return run(command + (["--pictures", pictures] if pictures != "all" else []))

    def analyze(paths: list[Path]) -> tuple[float, float]:
        return run(["analyze", *map(str, paths), "--model", str(model)])

    a_few, a_all = analyze(few), analyze(images)
    b_few, b_all = batch(few), batch(images)
    extra = len(images) - len(few)
    return {
        "analyze_ms": 1000 * (a_all[0] - a_few[0]) / extra,
        "report_ms": 1000 * (b_all[0] - b_few[0]) / extra,
        "analyze_cpu_ms": 1000 * (a_all[1] - a_few[1]) / extra,
        "report_cpu_ms": 1000 * (b_all[1] - b_few[1]) / extra,
        "ratio": (a_all[0] - a_few[0]) / (b_all[0] - b_few[0]),
        "startup_analyze_s": a_few[0] - len(few) * (a_all[0] - a_few[0]) / extra,
    }


# Drawing and encoding steps of a row's pictures, old and new names (a step inside another,
# such as fit_within inside panel_rgb, counts in both).
_PICTURE_STEPS = (
    "write_output",
    "save_jpeg",
    "save_heatmap_png",
    "overlay_rgb",
    "heatmap_rgb",
    "fit_within",
    "panel_rgb",
    "mask_png",
    "scale_to",
    "preview_to",
    "mask_overlay",
    "levels",
    "colour",
    "grey_png",
    "palette_png",
    "encode_jpeg",
    "atomic_write_bytes",
)


def parts(images: list[Path], model: Path) -> None:
    """CPU time of each picture of a row (``_write_pictures``' encoders and drawing)."""
    from ncl_core.evidence.image import load_evidence
    from ncl_core.inference.predictor import Predictor
    from ncl_core.report import artefacts

    predictor = Predictor.load(model, device="cpu")
    pairs = [(e, predictor.analyze(e)) for e in map(load_evidence, images[:8])]
    spent: dict[str, float] = {}
    for name in _PICTURE_STEPS:  # those this checkout's artefacts module calls
        fn = getattr(artefacts, name, None)
        if fn is None:
            continue

        def timed(*a, _fn=fn, _name=name, **k):
            start = time.process_time()
            try:
                return _fn(*a, **k)
            finally:
                spent[_name] = spent.get(_name, 0.0) + time.process_time() - start

        setattr(artefacts, name, timed)
    with tempfile.TemporaryDirectory(prefix="ncl-bench-parts-") as tmp:
        start = time.process_time()
        for i, (evidence, analysis) in enumerate(pairs * 3):
            artefacts._write_pictures(evidence, analysis, Path(tmp), f"{i:05d}", 160, [])
        total = time.process_time() - start
    n = 3 * len(pairs)
    print(f"pictures of a row: {1000 * total / n:.1f} ms CPU")
    for name, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"  {name}: {1000 * seconds / n:.2f} ms")


# -- the driver ---------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--code", type=Path, nargs="+", default=[ROOT], help="checkouts to time")
    parser.add_argument("--cli", action="store_true", help="time the commands (marginal per image)")
    parser.add_argument("--parts", action="store_true", help="CPU time per picture of a row")
    parser.add_argument(
        "--pictures", default="all", help="the report's pictures option (all, indicated)"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--images", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--report-first", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return

    sys.path.insert(0, str(HERE))
    from bench_batch import write_images

    from machine import cpu_name

    model = args.model.resolve()
    with tempfile.TemporaryDirectory(prefix="ncl-bench-report-") as tmp:
        work = Path(tmp)
        images = write_images(work / "images", args.n, args.size)
        (work / "images-few").mkdir()
        for path in images[: max(1, len(images) // 4)]:
            os.link(path, work / "images-few" / path.name)
        if args.parts:
            parts(images, model)
            return
        results: dict[str, list[dict]] = {str(c): [] for c in args.code}
        for r in range(args.rounds):
            for code in args.code if r % 2 == 0 else list(reversed(args.code)):
                if args.cli:
                    found = cli_round(code.resolve(), images, model, work, args.pictures)
                else:
                    command = [sys.executable, str(Path(__file__).resolve()), "--worker"]
                    command += ["--images", str(work / "images"), "--out", str(work / "report")]
                    command += ["--model", str(model), "--pictures", args.pictures]
                    command += ["--report-first"] if r % 2 else []
                    env = {**os.environ, "PYTHONPATH": str(code.resolve())}
                    done = subprocess.run(
                        command, env=env, check=True, capture_output=True, text=True
                    )
                    found = json.loads(done.stdout.strip().splitlines()[-1])
                results[str(code)].append(found)
                print(
                    f"round {r + 1} {code}: analyze {found['analyze_ms']:.0f} ms/image "
                    f"({found['analyze_cpu_ms']:.0f} ms CPU), report {found['report_ms']:.0f} "
                    f"ms/image ({found['report_cpu_ms']:.0f} ms CPU), ratio {found['ratio']:.3f}"
                    f"; {found.get('rows_with_pictures', args.n)} of {args.n} rows with pictures"
                    f"; load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; {args.n} JPEGs of {args.size} px")
    kind = "commands, marginal per image" if args.cli else "in one process"
    print(f"| code ({kind}) | analyze ms/image (CPU) | report ms/image (CPU) | ratio (rounds) |")
    print("|---|---:|---:|---|")
    for code, rounds in results.items():

        def med(key: str, rounds=rounds) -> float:
            return statistics.median(r[key] for r in rounds)

        ratios = ", ".join(f"{r['ratio']:.2f}" for r in rounds)
        print(
            f"| {code} | {med('analyze_ms'):.0f} ({med('analyze_cpu_ms'):.0f}) "
            f"| {med('report_ms'):.0f} ({med('report_cpu_ms'):.0f}) "
            f"| **{med('ratio'):.3f}** ({ratios}) |"
        )


if __name__ == "__main__":
    main()
