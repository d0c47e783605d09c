"""``ncl-forensics train`` and ``finetune``: one set of flags, whose defaults come from the two
recipes (ncl_core/training/recipes.py) and the loss and model settings (ncl_core/network/net_config.py);
``--nproc N`` runs the same command line in N processes under torchrun."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from ncl_core.cli.common import EXIT_FAILED, EXIT_OK, progress, shown
from ncl_core.errors import UsageError
from ncl_core.settings import SELECT_BY


def add_parser(subparsers) -> None:
    """Both subcommands, ``train`` then ``finetune``."""
    p = subparsers.add_parser("train", help="train a model from scratch")
    add_train_args(p, finetune=False)
    p.set_defaults(func=run)

    p = subparsers.add_parser("finetune", help="fine-tune a model on local labeled images")
    add_train_args(p, finetune=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import signal
    from pathlib import Path

    init = getattr(args, "init_encoder", None)
    if init and not Path(init).is_file():
        raise UsageError(f"{shown(init)}: no such encoder file (--init-encoder)")

    from ncl_core.training import Trainer
    from ncl_core.training.distributed import DistEnv

    finetune = args.command == "finetune"
    dist = DistEnv.from_environ()
    if args.nproc is not None and not dist.active:
        return _launch_processes(args)
    if args.more_time is not None and not args.resume:
        raise UsageError("--more-time goes with --resume RUN_DIR (a run to give more time)")
    on_event, close = train_printer()
    if args.resume:
        trainer = Trainer.resume(args.resume, on_event, more_minutes=args.more_time)
    else:
        if not (args.data or args.synthetic or args.labeled_set):
            raise UsageError(
                "give --set NAME (a labeled set), --data DIR (labeled images) or --synthetic "
                "DIR (authentic photos)"
            )
        trainer = Trainer(train_config(args, finetune), on_event)
    # Ctrl-C stops after the current step and leaves a resumable checkpoint.
    previous = signal.signal(signal.SIGINT, lambda *_: trainer.cancel())
    try:
        path = trainer.fit()
    finally:
        signal.signal(signal.SIGINT, previous)
        close()
    # Registered when asked, now or when the run began (a resume remembers it), and always
    # when no --out was given: the model's home is then the registry.
    if path is not None and (args.register or trainer.config.register) and dist.is_main:
        from ncl_core.models.registry import ModelRegistry

        info = ModelRegistry().register_trained(path)
        print(f"registered as {shown(info.name)} ({info.id})", file=sys.stderr)
    return EXIT_OK if path is not None else EXIT_FAILED


def train_config(args: argparse.Namespace, finetune: bool):
    """The ``TrainConfig`` of parsed ``train`` or ``finetune`` flags."""
    from ncl_core.network.net_config import LossConfig, ModelConfig
    from ncl_core.training import TrainConfig

    loss = LossConfig(
        omega=args.omega,
        mu=args.mu,
        tau=args.tau,
        contour_mode=args.contour_mode,
        pos_weight=args.pos_weight,
        dice=args.dice,
        image_weight=args.image_weight,
    )
    model = ModelConfig(
        backbone=args.backbone,
        output_stride=args.output_stride,
        patch_cells=args.patch_cells,
        noise_stem=args.noise_stem,
        pivot=loss.needs_pivot,
    )
    base = None
    if finetune:
        from ncl_core.models.registry import resolve_model

        base = str(resolve_model(args.model).path)  # a file, a name, an id, or the default
    data = tuple(args.data or ())
    if args.labeled_set:
        from ncl_core.training.labeled_sets import LabeledSets

        data += (str(LabeledSets().path(args.labeled_set)),)  # SetError names the sets there are
    return TrainConfig(
        data=data,
        labeled_set=args.labeled_set,
        val=tuple(args.val or ()),
        synthetic=args.synthetic,
        synthetic_length=args.synthetic_length,
        synthetic_authentic=args.synthetic_authentic,
        synthetic_options=_synthetic_options(args.synthetic_config),
        out=args.out,  # None: in the run folder, and registered
        name=args.name,
        register=bool(args.register or not args.out),
        model=model,
        loss=loss,
        base_model=base,
        init_encoder=None if finetune else args.init_encoder,
        size=args.size,
        epochs=args.epochs,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        head_lr_mult=args.head_lr_mult,
        freeze_bn=args.freeze_bn,
        freeze_backbone=args.freeze_backbone,
        revive_dead=args.revive_dead,
        warmup_steps=args.warmup_steps,
        time_limit_min=args.time_limit or None,
        schedule_by_time=bool(args.schedule_by_time and args.time_limit),
        ema_decay=args.ema,
        select_by=args.select_by,
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
_UNPRINTED = ("step", "checkpoint", "snapshot", "failed")


def train_printer() -> tuple[Callable[[dict[str, Any]], None], Callable[[], None]]:
    """An ``on_event`` for the trainer that prints its events, and the ``close`` of its bar."""
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
        if kind in _UNPRINTED:
            return
        text = format_event(event)
        if text is not None:
            # Validation results and the before/after are the run's output (stdout); the rest
            # is said on stderr.
            out = sys.stdout if kind in ("validation", "comparison") else sys.stderr
            text = "\n".join(shown(line) for line in text.split("\n"))  # no escape codes
            (bar.write if bar else print)(text, file=out)
        if kind == "start":
            bar = progress(event["total_steps"], "train", unit="step")

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


def add_train_args(p: argparse.ArgumentParser, finetune: bool) -> None:
    """The flags of ``train`` (``finetune=False``) or ``finetune``."""
    from ncl_core.network.backbones import BACKBONES
    from ncl_core.network.net_config import CONTOUR_MODES
    from ncl_core.training.recipes import recipe_for
    from ncl_core.training.train_config import VAL_MODES, TrainConfig

    # Every default below comes from the recipe (what it sets) or from TrainConfig, its loss
    # and its network (the rest); none of them loads torch, so the parser is built at once.
    recipe = recipe_for(finetune)
    config = TrainConfig()
    loss, model = config.loss, config.model

    p.add_argument(
        "--set",
        dest="labeled_set",
        metavar="NAME",
        help="a labeled set kept by the app (`ncl-forensics sets list`); a fifth of it is held "
        "out to measure the model before and after",
    )
    p.add_argument("--data", nargs="+", help="labeled dataset folder(s) or IMDL-BenCo JSON list(s)")
    p.add_argument(
        "--val",
        nargs="+",
        help="validation set(s) (default: about 10 %% of --data, split by a hash of the file "
        "names)",
    )
    p.add_argument(
        "--synthetic", help="folder of authentic photos: train on forgeries made on the fly"
    )
    p.add_argument(
        "--synthetic-length",
        type=int,
        default=config.synthetic_length,
        help="synthetic items per epoch",
    )
    p.add_argument(
        "--synthetic-authentic",
        type=float,
        default=config.synthetic_authentic,
        help="share of untouched photos among the synthetic items",
    )
    p.add_argument(
        "--synthetic-config",
        metavar="FILE",
        help="JSON object of generator settings for the training forgeries (fields of "
        'SynthConfig in ncl_core/data/synth/synth_config.py, e.g. {"publish_scale_p": 0.9}); '
        "validation forgeries keep the defaults",
    )
    p.add_argument(
        "--out",
        help="model file to write (the best by validation F1); default: in the run folder, "
        "and the model is added to the registry (never the current folder)",
    )
    p.add_argument("--name", help="model name stored in the file")
    if finetune:
        p.add_argument(
            "--model",
            help="base model: a file, or the name or id of a registered model "
            "(default: the registry's default model)",
        )
    else:
        p.add_argument(
            "--init-encoder",
            metavar="FILE",
            help="start the network's encoder from an encoder file of `ncl-forensics "
            "pretrain` (its backbone, output stride and noise stem are used)",
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
        default=model.patch_cells,
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
        "--pos-weight",
        type=float,
        default=loss.pos_weight,
        help="PC loss: BCE weight of manipulated pixels",
    )
    p.add_argument(
        "--dice", type=float, default=loss.dice, help="PC loss: weight of a soft Dice term"
    )
    p.add_argument(
        "--image-weight",
        type=float,
        default=loss.image_weight,
        help="weight of the image loss (the image score against 'anything manipulated'; on "
        "authentic images it pushes down the pixels scored highest)",
    )
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
        "--head-lr-mult",
        type=float,
        metavar="X",
        default=config.head_lr_mult,
        help="the ASPP, decoder and heads learn X times faster than the backbone (default "
        "%(default)s, as DeepLabV3+; lower it if --revive-dead keeps finding dead channels)",
    )
    p.add_argument(
        "--freeze-bn",
        action=argparse.BooleanOptionalAction,
        default=config.freeze_bn,
        help="batch-norm layers keep the model's running statistics (and use them) while the "
        "rest learns: fine-tuning on other images than the model's own, or at small batches",
    )
    p.add_argument(
        "--freeze-backbone",
        action=argparse.BooleanOptionalAction,
        default=config.freeze_backbone,
        help="the backbone stays as the base model (or --init-encoder) has it, weights and "
        "batch norms; only the ASPP, decoder and heads learn, and each step costs less",
    )
    p.add_argument(
        "--revive-dead",
        action=argparse.BooleanOptionalAction,
        default=config.revive_dead,
        help="fine-tuning: before the first step, give the decoder's dead narrow channels (a "
        "ReLU that never fires learns nothing more) fresh weights, leaving the output unchanged",
    )
    p.add_argument(
        "--warmup-steps",
        type=int,
        default=config.warmup_steps,
        help="linear learning-rate warm-up (large batches)",
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
        "--select-by",
        choices=SELECT_BY,
        default=config.select_by,
        help="the validation figure that picks the weights kept: f1 (at 0.5) or quiet_f1 (F1 at "
        "the threshold where the median authentic validation image has at most 5 %% of its "
        "pixels flagged; needs authentic images there, else f1 decides)",
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
    p.add_argument("--omega", type=float, default=loss.omega, help="weight of the NCL loss")
    p.add_argument("--mu", type=float, default=loss.mu, help="contour weight of the PC loss")
    p.add_argument("--tau", type=float, default=loss.tau, help="contrastive temperature")
    p.add_argument("--contour-mode", choices=CONTOUR_MODES, default=loss.contour_mode)
    p.add_argument("--workers", type=int, default=recipe.workers, help="data-loading processes")
    p.add_argument("--seed", type=int, default=config.seed)
    p.add_argument(
        "--device", default=config.device, help="auto (default), cpu, cuda, cuda:N or mps"
    )
    p.add_argument(
        "--no-amp",
        action="store_true",
        help="train in fp32 (default: mixed precision on CUDA, and bf16 on CPUs with bf16 units)",
    )
    p.add_argument(
        "--val-every", type=int, default=config.val_every, help="validate every N epochs"
    )
    p.add_argument(
        "--val-mode",
        choices=VAL_MODES,
        default=config.val_mode,
        help="labeled validation images whole at their own resolution (as tiled mode sees "
        "them; default) or resized to --size (as resize mode does)",
    )
    p.add_argument(
        "--val-limit",
        type=int,
        help="validate on at most N labeled images, spread evenly (validation runs at native "
        "resolution, so large sets take a while on a CPU)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=config.checkpoint_every,
        help="checkpoint every N steps",
    )
    p.add_argument("--half", action="store_true", help="store fp16 weights in the model file")
    p.add_argument(
        "--run-dir", help="folder for checkpoints and the event log (default: user data dir)"
    )
    p.add_argument(
        "--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its last checkpoint"
    )
    p.add_argument(
        "--more-time",
        type=float,
        metavar="MIN",
        help="with --resume: give the run MIN more minutes (its time limit grows by MIN and a "
        "clock-driven learning rate follows the longer schedule); needed to resume a run "
        "stopped by its time limit",
    )
    p.add_argument(
        "--register",
        action="store_true",
        help="add the trained model to the registry (also after a --resume; always without --out)",
    )
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


def _synthetic_options(path: str | None) -> dict[str, Any]:
    """The generator settings in ``path`` (a JSON object), or none."""
    if not path:
        return {}
    import json
    from pathlib import Path

    try:
        options = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(
            f"{shown(path)}: cannot read it ({exc.strerror}); --synthetic-config"
        ) from None
    except ValueError as exc:
        raise UsageError(f"{shown(path)}: not valid JSON ({exc}); --synthetic-config") from None
    if not isinstance(options, dict):
        raise UsageError(
            f"{shown(path)}: --synthetic-config needs a JSON object of generator settings, "
            'such as {"publish_scale_p": 0.9}'
        )
    from ncl_core.training.train_config import check_synthetic_options

    try:
        check_synthetic_options(options)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{shown(path)}: {exc}; --synthetic-config") from None
    return options
