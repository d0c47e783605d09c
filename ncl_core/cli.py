"""The ``ncl-forensics`` command line (Qt-free): analyze, batch, train, finetune, eval, synth, models.

Exit codes: 0 all good, 1 some inputs failed (each reported) or the run failed (a full disk, a
training error), 2 usage error. User errors are one-line messages; ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ncl_core import __version__
from ncl_core.errors import UsageError

SUBCOMMANDS = ("analyze", "batch", "train", "finetune", "eval", "calibrate", "synth", "models")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


# -- helpers -------------------------------------------------------------------------------------
def _progress(total: int | None, desc: str, unit: str = "img"):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)


def _load_predictor(args: argparse.Namespace):
    from ncl_core.infer import Predictor
    from ncl_core.modelfile import resolve_model

    # --model: a file, a registry name or an id; none: the registry's default.
    predictor = Predictor.load(resolve_model(args.model).path, args.device)
    print(
        f"model {predictor.model_id} ({predictor.model_sha256[:12]}) on {predictor.device}",
        file=sys.stderr,
    )
    return predictor


def _refuse_inside(out_dir: Path, inputs: Sequence[Path]) -> None:
    """Nothing is ever written into a folder of evidence (the rule every writer applies)."""
    from ncl_core.outputs import refuse_inside_evidence

    refuse_inside_evidence(out_dir, inputs)  # EvidenceFolderError: a user error, exit 2


def _settings(args: argparse.Namespace):
    from ncl_core.infer import InferenceSettings

    return InferenceSettings(
        mode=args.mode,
        threshold=args.threshold,
        input_size=getattr(args, "input_size", None),
        tile=args.tile,
    )


# -- analyze -------------------------------------------------------------------------------------
def cmd_analyze(args: argparse.Namespace) -> int:
    from ncl_core.outputs import unique_stem, write_outputs

    inputs = [Path(p) for p in args.images]
    out = Path(args.out) if args.out else None
    if out is not None:
        _refuse_inside(out, inputs)
        out.mkdir(parents=True, exist_ok=True)
    views = _view_names(args)
    predictor = _load_predictor(args)
    failures, used = 0, set()
    with _progress(len(inputs), "analyze") as bar:
        # Each file is read once: the views and the output files use the evidence analysed.
        for evidence, result in predictor.analyze_stream(inputs, settings=_settings(args)):
            bar.update(1)
            if not result.ok:
                failures += 1
                bar.write(f"error: {result.message}", file=sys.stderr)
                continue
            line = f"{result.source}: score {result.score:.3f}, tampered area {100 * result.area_fraction:.2f} %"
            found = _views_of(evidence, views, args.show_gps) if views else {}
            if out is not None:
                stem = unique_stem(result.source, used)
                write_outputs(out, stem, result, evidence.image, views=found)
            for warning in result.warnings:
                line += f"\n  warning: {warning}"
            for name, view in found.items():
                line += f"\n  {name}: {view.summary}"
            bar.write(line)
    if failures:
        print(f"{failures} of {len(inputs)} image(s) could not be analysed", file=sys.stderr)
    return EXIT_FAILED if failures else EXIT_OK


def _view_names(args: argparse.Namespace) -> tuple[str, ...]:
    if not getattr(args, "views", None):
        return ()
    from ncl_core.views import parse_names

    try:
        return parse_names(args.views)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _views_of(evidence, views: tuple[str, ...], show_gps: bool) -> dict[str, Any]:
    """The forensic views of the evidence the model analysed (no second read of the file)."""
    from ncl_core.views import compute_views

    return compute_views(views, evidence, {"metadata": {"show_gps": show_gps}})


# -- batch ---------------------------------------------------------------------------------------
def cmd_batch(args: argparse.Namespace) -> int:
    from ncl_core.report import ReportOptions, run_batch

    predictor = _load_predictor(args)
    options = ReportOptions(
        mode=args.mode,
        threshold=args.threshold,
        analyst=args.analyst,
        case_id=args.case_id,
        views=_view_names(args),
    )
    bar = _progress(None, "batch")

    def on_event(event: dict[str, Any]) -> None:
        if event["type"] == "start":
            bar.reset(total=event.get("total"))
        elif event["type"] == "row":
            bar.update(1)
            row = event.get("row", {})
            if row.get("status") == "error":
                bar.write(f"error: {row.get('error')}", file=sys.stderr)

    with bar:
        summary = run_batch(
            args.inputs, predictor, args.report, options, resume=args.resume, on_event=on_event
        )
    for problem in summary.problems:
        print(f"warning: {problem.path}: {problem.message}", file=sys.stderr)
    print(f"report: {summary.out_dir} ({summary.n_ok} analysed, {summary.n_errors} error(s))")
    if summary.n_hash_mismatches:
        print(
            f"WARNING: {summary.n_hash_mismatches} input file(s) changed during the batch",
            file=sys.stderr,
        )
    if summary.n_errors:
        print(
            f"{summary.n_errors} of {summary.n_files} file(s) could not be analysed",
            file=sys.stderr,
        )
    return EXIT_FAILED if summary.n_errors or summary.n_hash_mismatches else EXIT_OK


# -- train / finetune ----------------------------------------------------------------------------
def _train_config(args: argparse.Namespace, finetune: bool):
    from ncl_core.config import LossConfig, ModelConfig
    from ncl_core.training import TrainConfig

    model = ModelConfig(
        backbone=args.backbone,
        output_stride=args.output_stride,
        patch_cells=args.patch_cells,
        noise_stem=args.noise_stem,
        # The pivot branches only serve the full NCL loss; plain and "drop" runs skip their cost.
        pivot=args.contour_mode == "pivot" and args.omega > 0,
    )
    loss = LossConfig(
        omega=args.omega,
        mu=args.mu,
        tau=args.tau,
        contour_mode=args.contour_mode,
        pos_weight=args.pos_weight,
        dice=args.dice,
    )
    base = None
    if finetune:
        from ncl_core.modelfile import resolve_model

        base = str(resolve_model(args.model).path)  # a file, a name, an id, or the default
    return TrainConfig(
        data=tuple(args.data or ()),
        val=tuple(args.val or ()),
        synthetic=args.synthetic,
        synthetic_length=args.synthetic_length,
        synthetic_authentic=args.synthetic_authentic,
        out=args.out,
        name=args.name,
        model=model,
        loss=loss,
        base_model=base,
        size=args.size,
        epochs=args.epochs,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        time_limit_min=args.time_limit or None,
        schedule_by_time=bool(args.schedule_by_time and args.time_limit),
        ema_decay=args.ema,
        snapshot_every_s=args.snapshot_every,
        workers=args.workers,
        seed=args.seed,
        device=args.device,
        amp=not args.no_amp,
        val_every=args.val_every,
        val_limit=args.val_limit,
        val_mode=args.val_mode,
        checkpoint_every=args.checkpoint_every,
        half_weights=args.half,
        sync_bn=args.sync_bn,
        run_dir=args.run_dir,
    )


# Events the training command does not print: the bar shows the steps, checkpoints would only
# interrupt it, and a failure is printed once, as the command's error.
_TRAIN_UNPRINTED = ("step", "checkpoint", "snapshot", "failed")


def _train_printer() -> tuple[Callable[[dict[str, Any]], None], Callable[[], None]]:
    from ncl_core.training import format_event

    bar = None

    def on_event(event: dict[str, Any]) -> None:
        nonlocal bar
        kind = event["type"]
        if kind == "step" and bar is not None:
            bar.n = event["step"]
            losses = event["losses"]
            bar.set_postfix(
                loss=f"{losses['total']:.3f}",
                ncl=f"{losses['ncl']:.3f}",
                pc=f"{losses['pc']:.3f}",
                lr=f"{event['lr']:.2e}",
                ips=f"{event['images_per_s']:.1f}",
                refresh=False,
            )
            bar.refresh()
        if kind in _TRAIN_UNPRINTED:
            return
        text = format_event(event)
        if text is not None:
            # Validation results are the run's output (stdout); the rest is said on stderr.
            out = sys.stdout if kind == "validation" else sys.stderr
            (bar.write if bar else print)(text, file=out)
        if kind == "start":
            bar = _progress(event["total_steps"], "train", unit="step")

    def close() -> None:
        if bar is not None:
            bar.close()

    return on_event, close


def _launch_processes(args: argparse.Namespace) -> int:
    """``--nproc N``: the same command line, once per process, under torchrun on this machine."""
    if args.nproc < 1:
        raise UsageError("--nproc must be at least 1")
    argv = getattr(args, "argv", None)
    if argv is None:
        raise UsageError("--nproc needs the command line (run it through ncl_core.cli.main)")
    forwarded, skip = [], False
    for token in argv:
        if skip:
            skip = False
        elif token == "--nproc":
            skip = True
        elif not token.startswith("--nproc="):
            forwarded.append(token)
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser
    from torch.distributed.run import run as torchrun

    from ncl_core.training import TrainingError

    launch = get_args_parser().parse_args(
        ["--standalone", "--nproc-per-node", str(args.nproc), "-m", "ncl_core.training", *forwarded]
    )
    try:
        torchrun(launch)
    except ChildFailedError as exc:
        # Which one failed first is not known to the second: every failed one, by rank.
        failed = ", ".join(
            f"rank {rank} (exit code {failure.exitcode})"
            if failure.exitcode >= 0
            else f"rank {rank} (stopped by signal {-failure.exitcode})"
            for rank, failure in sorted(exc.failures.items())
        )
        raise TrainingError(
            f"training stopped: {failed} of {args.nproc} processes failed; their errors are "
            "above, the others were stopped"
        ) from None
    return EXIT_OK


def _run_training(args: argparse.Namespace, finetune: bool) -> int:
    import signal

    from ncl_core.distributed import DistEnv
    from ncl_core.training import Trainer

    dist = DistEnv.from_environ()
    if args.nproc is not None and not dist.active:
        return _launch_processes(args)
    on_event, close = _train_printer()
    if args.resume:
        trainer = Trainer.resume(args.resume, on_event)
    else:
        if not (args.data or args.synthetic):
            raise UsageError(
                "give --data DIR (labeled images) or --synthetic DIR (authentic photos)"
            )
        trainer = Trainer(_train_config(args, finetune), on_event)
    # Ctrl-C stops after the current step and leaves a resumable checkpoint.
    previous = signal.signal(signal.SIGINT, lambda *_: trainer.cancel())
    try:
        path = trainer.fit()
    finally:
        signal.signal(signal.SIGINT, previous)
        close()
    if path is not None and args.register and dist.is_main:
        from ncl_core.modelfile import ModelRegistry

        info = ModelRegistry().register_trained(path)
        print(f"registered as {info.name} ({info.id})", file=sys.stderr)
    return EXIT_OK if path is not None else EXIT_FAILED


def cmd_train(args: argparse.Namespace) -> int:
    return _run_training(args, finetune=False)


def cmd_finetune(args: argparse.Namespace) -> int:
    return _run_training(args, finetune=True)


# -- eval ----------------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    return "  n/a" if value is None else f"{value:.3f}"


EVAL_COLUMNS = (
    ("f1", "F1@.5"),
    ("best_f1", "bestF1"),
    ("floor_f1", "floor"),
    ("auc", "AUC"),
    ("iou", "IoU"),
    ("image_auc", "imgAUC"),
    ("image_accuracy", "imgAcc"),
)


def format_eval_table(results: list[dict[str, Any]]) -> str:
    """The evaluation table: one row per condition and subset (all, then each manipulation
    type and the authentic images), with the all-manipulated floor beside F1 and AUC.

    ``n`` counts every image of the subset; pixel figures are means over its manipulated
    images (``tampered``), image-level figures use all of them.
    """
    head = f"{'condition':<14} {'subset':<10} {'n':>5} {'tampered':>8} " + " ".join(
        f"{label:>7}" for _, label in EVAL_COLUMNS
    )
    lines = [head]
    for result in results:
        kinds = list(result["by_kind"].items())
        if len(kinds) == 1:  # one subset only (e.g. no types known): it is the "all" row
            kinds = []
        for subset, metrics in [("all", result["overall"]), *kinds]:
            lines.append(
                f"{result['perturbation'] or 'clean':<14} {subset:<10} "
                f"{metrics.get('n_all', ''):>5} {metrics.get('n_tampered', ''):>8} "
                + " ".join(f"{_fmt(metrics.get(key)):>7}" for key, _ in EVAL_COLUMNS)
            )
    lines.append(
        "floor = mean per-image F1 of marking every pixel as manipulated, 2r/(1+r); "
        "a model at or below it has not learned to localise"
    )
    return "\n".join(lines)


def cmd_eval(args: argparse.Namespace) -> int:
    from ncl_core.data.datasets import scan_dataset
    from ncl_core.data.perturb import PERTURBATIONS
    from ncl_core.evaluate import evaluate, manipulation_kinds

    samples, kinds = [], {}
    for root in args.data:  # e.g. real forgeries plus a folder of authentic photos
        index = scan_dataset(root)
        samples += index.samples
        kinds.update(manipulation_kinds(index.root))
    samples = samples[: args.limit] if args.limit else samples
    predictor = _load_predictor(args)
    conditions = [None] + (list(PERTURBATIONS) if args.robustness else [])
    results = []
    for condition in conditions:
        # The bar is closed before any error is printed, so the message starts its own line.
        with _progress(len(samples), condition or "clean") as bar:
            result = evaluate(
                predictor,
                samples,
                _settings(args),
                condition,
                kinds,
                args.include_authentic,
                progress=lambda i, n, bar=bar: bar.update(1),
            )
        results.append(result)
    skipped = results[0]["skipped"]  # the same files fail under every perturbation
    for item in skipped:
        print(f"error: {item['error']}", file=sys.stderr)
    print(format_eval_table(results))
    if args.json:
        from ncl_core.fsutil import atomic_write_text

        record = {"model": predictor.info.summary(), "data": list(args.data), "results": results}
        atomic_write_text(args.json, json.dumps(record, indent=2))
    if skipped:
        print(
            f"{len(skipped)} of {len(samples)} image(s) could not be read; the metrics leave them out",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK


# -- synth ---------------------------------------------------------------------------------------
def cmd_calibrate(args: argparse.Namespace) -> int:
    from ncl_core.calibrate import calibrate
    from ncl_core.data.datasets import scan_dataset
    from ncl_core.infer import InferenceSettings
    from ncl_core.modelfile import export_model

    out = Path(args.out)
    _refuse_inside(out.parent, [Path(d) for d in args.data])
    samples = []
    for root in args.data:
        samples += scan_dataset(root).samples
    predictor = _load_predictor(args)
    settings = predictor.resolve(
        InferenceSettings(mode=args.mode, input_size=args.input_size, tile=args.tile)
    )
    with _progress(len(samples), "calibrate") as bar:
        record = calibrate(predictor, samples, settings, lambda i, n: bar.update(1))
    record["data"] = [str(d) for d in args.data]
    effective = predictor.effective(settings)
    inference = {
        "mode": settings.mode,
        "input_size": effective["input_size"],
        "tile": effective["tile"],
        "threshold": record["threshold"],
        "calibration": record,
    }
    if "score_threshold" in record:
        inference["score_threshold"] = record["score_threshold"]
    export_model(predictor.info.path, out, half=args.half, inference=inference)
    at = record["at_0.5"]
    print(
        f"calibrated on {record['n_tampered']} manipulated and {record['n_authentic']} authentic "
        f"image(s), {settings.mode} mode: F1@0.5 {_fmt(at.get('f1'))} (floor "
        f"{_fmt(at.get('floor_f1'))}), AUC {_fmt(at.get('auc'))}; best pixel threshold "
        f"{record['threshold']:g} (F1 {record['f1_at_threshold']:.3f})"
    )
    if "score_threshold" in record:
        print(
            f"image score threshold {record['score_threshold']:.4f}: balanced accuracy "
            f"{record['balanced_accuracy']:.3f}, image AUC {_fmt(record['image_auc'])}"
        )
    else:
        print("no authentic images: the image score is left uncalibrated", file=sys.stderr)
    print(f"written to {out}")
    return EXIT_OK


def cmd_synth(args: argparse.Namespace) -> int:
    from ncl_core.data.synth import SynthConfig, generate_dataset

    config = SynthConfig(
        size=args.size,
        types=tuple(args.types),
        authentic_fraction=args.authentic_fraction,
        seed=args.seed,
        image_format=args.format,
    )
    with _progress(args.count, "synth") as bar:
        result = generate_dataset(
            args.source, args.out, args.count, config, progress=lambda i, n: bar.update(1)
        )
    print(
        f"wrote {result['count']} image(s) to {result['out_dir']} (parameters in {result['json']})"
    )
    return EXIT_OK


# -- models --------------------------------------------------------------------------------------
def cmd_models(args: argparse.Namespace) -> int:
    from ncl_core.modelfile import ModelFileError, ModelRegistry, resolve_model

    registry = ModelRegistry()
    action = args.action
    if action == "list":
        default = None
        with contextlib.suppress(ModelFileError):  # listing still works with no default
            default = registry.default().sha256
        for info in registry.list():
            mark = "*" if info.sha256 == default else " "
            f1 = info.metrics.get("f1")
            tag = " [bundled]" if info.bundled else ""
            print(
                f"{mark} {info.id}  {info.name:<28} {info.backbone:<10} "
                f"F1 {_fmt(f1)}  {info.created}{tag}"
            )
        return EXIT_OK
    if action == "info":
        info = resolve_model(args.target, registry)
        print(json.dumps(info.summary(), indent=2))
        return EXIT_OK
    if action == "import":
        info = registry.import_model(args.target, name=args.name)
        print(f"imported {info.name} ({info.id}) to {info.path}")
    elif action == "export":
        if not args.dest:
            raise UsageError("models export ID DEST: give a destination file or folder")
        if Path(args.target).is_file():
            from ncl_core.modelfile import export_half

            if not args.half:
                raise UsageError("models export FILE DEST copies nothing new: add --half")
            print(f"exported to {export_half(args.target, args.dest)}")
        else:
            print(f"exported to {registry.export_model(args.target, args.dest, half=args.half)}")
    elif action == "remove":
        registry.remove(args.target)
        print(f"removed {args.target}")
    elif action == "default":
        info = registry.set_default(args.target)
        print(f"default model: {info.name} ({info.id})")
    return EXIT_OK


# -- parser --------------------------------------------------------------------------------------
def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        help="model file, or the name or id of a registered model (`models list`); "
        "default: the registry's default model",
    )
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps")


def _add_analysis_args(p: argparse.ArgumentParser, input_size: bool = True) -> None:
    p.add_argument(
        "--mode",
        choices=("auto", "resize", "tiled"),
        default="auto",
        help="auto (default): the model's own default mode and sizes; resize: the paper's "
        "protocol, the whole image resized to the model's input size; tiled: full resolution "
        "in overlapping tiles",
    )
    p.add_argument("--threshold", type=float, default=0.5, help="probability threshold of the mask")
    p.add_argument(
        "--tile",
        type=int,
        help="tiled mode: tile side (default: the model's own, else its training size)",
    )
    if input_size:
        p.add_argument(
            "--input-size",
            type=int,
            help="resize mode: network input side (default: the model's own, else its training size)",
        )
    _add_model_args(p)


def _add_train_args(p: argparse.ArgumentParser, finetune: bool) -> None:
    from ncl_core.backbones import BACKBONES
    from ncl_core.config import CONTOUR_MODES
    from ncl_core.training.recipes import recipe_for

    recipe = recipe_for(finetune)  # every default below that a recipe sets comes from it

    p.add_argument("--data", nargs="+", help="labeled dataset folder(s) or IMDL-BenCo JSON list(s)")
    p.add_argument(
        "--val", nargs="+", help="validation set(s) (default: a 10 %% hash split of --data)"
    )
    p.add_argument(
        "--synthetic", help="folder of authentic photos: train on forgeries made on the fly"
    )
    p.add_argument("--synthetic-length", type=int, default=2000, help="synthetic items per epoch")
    p.add_argument(
        "--synthetic-authentic",
        type=float,
        default=0.25,
        help="share of untouched photos among the synthetic items",
    )
    p.add_argument(
        "--out",
        default="ncl-model.safetensors" if not finetune else "ncl-finetuned.safetensors",
        help="model file to write (the best by validation F1)",
    )
    p.add_argument("--name", help="model name stored in the file")
    if finetune:
        p.add_argument(
            "--model",
            help="base model: a file, or the name or id of a registered model "
            "(default: the registry's default model)",
        )
    p.add_argument(
        "--backbone",
        choices=BACKBONES,
        default=recipe.backbone,
        help="network preset (ignored when fine-tuning: the base model's)",
    )
    p.add_argument("--output-stride", type=int, choices=(8, 16), default=recipe.output_stride)
    p.add_argument(
        "--patch-cells",
        type=int,
        default=8,
        help="patch side in layer1 cells of 4 px (8: 32 px patches; 4: 16 px, 256 patches on a "
        "256 px crop)",
    )
    p.add_argument(
        "--noise-stem",
        action="store_true",
        help="feed conv1 RGB plus fixed SRM and Bayar-constrained noise residuals (from scratch "
        "only)",
    )
    p.add_argument(
        "--pos-weight", type=float, default=1.0, help="PC loss: BCE weight of manipulated pixels"
    )
    p.add_argument("--dice", type=float, default=0.0, help="PC loss: weight of a soft Dice term")
    p.add_argument(
        "--size", type=int, default=recipe.size, help="training crop side in px (native scale)"
    )
    p.add_argument("--epochs", type=int, default=recipe.epochs)
    p.add_argument("--steps", type=int, help="total steps (overrides --epochs)")
    p.add_argument("--batch-size", type=int, default=recipe.batch_size)
    p.add_argument(
        "--lr", type=float, help="base learning rate (default 0.007 x batch/4; x0.1 to fine-tune)"
    )
    p.add_argument(
        "--warmup-steps", type=int, default=0, help="linear learning-rate warm-up (large batches)"
    )
    p.add_argument(
        "--time-limit",
        type=float,
        metavar="MIN",
        default=recipe.time_limit_min,
        help="stop after MIN minutes: validate, keep the best model, leave a checkpoint to "
        "resume (0: no limit)",
    )
    p.add_argument(
        "--schedule-by-time",
        action=argparse.BooleanOptionalAction,
        default=recipe.schedule_by_time,
        help="with a time limit: the learning rate decays with the clock and reaches 0 when the "
        "time is up (resumes included), whatever the speed of the machine",
    )
    p.add_argument(
        "--ema",
        type=float,
        metavar="DECAY",
        help="also keep an exponential moving average of the weights (e.g. 0.999); validation "
        "measures both and the model file gets the better",
    )
    p.add_argument(
        "--snapshot-every",
        type=float,
        metavar="SECONDS",
        help="also write fp16 weights to RUN_DIR/snapshot.safetensors this often (a run cut off "
        "from outside still leaves a model)",
    )
    p.add_argument("--omega", type=float, default=0.1, help="weight of the NCL loss")
    p.add_argument("--mu", type=float, default=0.8, help="contour weight of the PC loss")
    p.add_argument("--tau", type=float, default=0.1, help="contrastive temperature")
    p.add_argument("--contour-mode", choices=CONTOUR_MODES, default="pivot")
    p.add_argument("--workers", type=int, default=recipe.workers, help="data-loading processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument(
        "--no-amp",
        action="store_true",
        help="train in fp32 (default: mixed precision on CUDA, and bf16 on CPUs with bf16 units)",
    )
    p.add_argument("--val-every", type=int, default=1, help="validate every N epochs")
    p.add_argument(
        "--val-mode",
        choices=("native", "resize"),
        default="native",
        help="labeled validation images whole at their own resolution (as tiled mode sees "
        "them; default) or resized to --size (as resize mode does)",
    )
    p.add_argument(
        "--val-limit",
        type=int,
        help="validate on at most N labeled images, spread evenly (validation runs at native "
        "resolution, so large sets take a while on a CPU)",
    )
    p.add_argument("--checkpoint-every", type=int, default=200, help="checkpoint every N steps")
    p.add_argument("--half", action="store_true", help="store fp16 weights in the model file")
    p.add_argument(
        "--run-dir", help="folder for checkpoints and the event log (default: user data dir)"
    )
    p.add_argument(
        "--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint"
    )
    p.add_argument("--register", action="store_true", help="add the trained model to the registry")
    p.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="train in N processes on this machine (one per GPU, or gloo on the CPU): starts "
        "torchrun; the global batch is N x --batch-size",
    )
    p.add_argument(
        "--sync-bn",
        action="store_true",
        help="several processes on GPUs: batch norm statistics over the global batch",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ncl-forensics",
        description="Image manipulation localization (NCL). Without a subcommand, opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"ncl-forensics {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "analyze", help="analyse images; print scores, optionally write mask/heatmap/overlay/JSON"
    )
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--out", help="folder for <name>.mask.png, .heatmap.png, .overlay.png and .json")
    p.add_argument(
        "--views",
        metavar="LIST",
        help="forensic views beside the model, comma-separated: ela,noise,jpeg,clone,metadata "
        "or all; with --out each map is written as <name>.<view>.png (8-bit grey, brighter = "
        "more suspicious) and each view's summary goes into the JSON",
    )
    p.add_argument(
        "--show-gps",
        action="store_true",
        help="metadata view: show GPS positions (hidden otherwise)",
    )
    _add_analysis_args(p)
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("batch", help="analyse files and folders (recursively) into a report folder")
    p.add_argument("inputs", nargs="+", help="image files and/or folders")
    p.add_argument(
        "--report", required=True, help="report folder to create (or continue with --resume)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue a report, skipping files already in it"
    )
    p.add_argument("--analyst", help="analyst name for the report header")
    p.add_argument("--case-id", help="case identifier for the report header")
    p.add_argument(
        "--views",
        metavar="LIST",
        help="forensic views on each file's page, comma-separated: ela,noise,jpeg,clone,metadata "
        "or all (every row gets the metadata summary regardless)",
    )
    _add_analysis_args(p, input_size=False)
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("train", help="train a model from scratch")
    _add_train_args(p, finetune=False)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("finetune", help="fine-tune a model on local labeled images")
    _add_train_args(p, finetune=True)
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("eval", help="evaluate a model on a labeled dataset")
    p.add_argument(
        "--data",
        required=True,
        nargs="+",
        help="labeled dataset folder(s) or JSON list(s); add a folder of authentic images "
        "(Au/ or authentic/) to measure the image-level AUC",
    )
    p.add_argument("--robustness", action="store_true", help="also under the paper's perturbations")
    p.add_argument(
        "--include-authentic",
        action="store_true",
        help="average pixel metrics over authentic images too",
    )
    p.add_argument("--limit", type=int, help="only the first N samples")
    p.add_argument("--json", help="write all results as JSON")
    _add_analysis_args(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "calibrate",
        help="calibrate a model's score and threshold on labeled data; write a copy that "
        "carries them and its default inference mode",
    )
    p.add_argument(
        "--data",
        required=True,
        nargs="+",
        help="labeled manipulated images and a folder of authentic ones (Au/ or authentic/)",
    )
    p.add_argument("--out", required=True, help="model file to write (a copy; the input is kept)")
    p.add_argument(
        "--mode",
        choices=("auto", "resize", "tiled"),
        default="auto",
        help="the inference mode to calibrate and store as the model's default",
    )
    p.add_argument("--input-size", type=int, help="resize mode: network input side to store")
    p.add_argument("--tile", type=int, help="tiled mode: tile side to store")
    p.add_argument("--half", action="store_true", help="write fp16 weights")
    _add_model_args(p)
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("synth", help="make labeled forgeries from a folder of authentic photos")
    p.add_argument("source", help="folder of authentic photos (read only)")
    p.add_argument("out", help="new output folder")
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=512)
    p.add_argument(
        "--types",
        nargs="+",
        choices=("splice", "copy_move", "removal"),
        default=["splice", "copy_move", "removal"],
    )
    p.add_argument("--authentic-fraction", type=float, default=0.0)
    p.add_argument("--format", choices=("png", "jpg"), default="png")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser(
        "models", help="list, inspect, import, export, remove models; set the default"
    )
    p.add_argument("action", choices=("list", "info", "import", "export", "remove", "default"))
    p.add_argument("target", nargs="?", help="model id, name or file")
    p.add_argument("dest", nargs="?", help="export destination")
    p.add_argument("--name", help="name for an imported model")
    p.add_argument("--half", action="store_true", help="export with fp16 weights (half the size)")
    p.set_defaults(func=cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for --nproc to pass on
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    if args.command == "models" and args.action != "list" and not args.target:
        parser.error(f"models {args.action} needs a model id, name or file")
    return run(args)


def _error_label() -> str:
    """``error``, or ``error (rank R)`` in one of several training processes."""
    import os

    if os.environ.get("WORLD_SIZE", "1") not in ("", "0", "1") and "RANK" in os.environ:
        return f"error (rank {os.environ['RANK']})"
    return "error"


def run(args: argparse.Namespace) -> int:
    """Run a parsed command, turning user errors into one line and an exit code.

    Sorted by ``ncl_core.errors.classify``, as the GUI sorts its jobs: a failed run (a report that
    could not be written, a full disk) exits 1, something the user can fix exits 2.
    """
    from ncl_core.errors import classify

    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        kind = classify(exc)
        if args.debug or kind == "bug":
            raise
        print(f"{_error_label()}: {exc}", file=sys.stderr)
        return EXIT_FAILED if kind == "failed" else EXIT_USAGE
