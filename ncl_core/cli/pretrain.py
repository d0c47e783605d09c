"""``ncl-forensics pretrain``: the self-supervised stage before NCL. From folders of authentic
photos alone, an encoder learns to tell processing chains apart (ncl_core/training/pretrain.py);
``ncl-forensics train --init-encoder`` then starts a network from it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ncl_core.cli.common import EXIT_FAILED, EXIT_OK, shown
from ncl_core.errors import UsageError


def add_parser(subparsers) -> None:
    from ncl_core.network.backbones import BACKBONES
    from ncl_core.training.pretrain_config import PretrainConfig

    config = PretrainConfig()
    p = subparsers.add_parser(
        "pretrain",
        help="self-supervised stage before training: an encoder from authentic photos alone",
    )
    p.add_argument("--photos", nargs="+", metavar="DIR", help="folders of authentic photos")
    p.add_argument("--out", help="encoder file to write (.safetensors)")
    p.add_argument(
        "--run-dir", help="run folder for the checkpoint and the log (default: beside --out)"
    )
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its checkpoint")
    p.add_argument(
        "--more-time", type=float, metavar="MIN", help="with --resume: minutes added to its limit"
    )
    p.add_argument("--backbone", choices=BACKBONES, default=config.model.backbone)
    p.add_argument("--output-stride", type=int, choices=(8, 16), default=config.model.output_stride)
    p.add_argument("--noise-stem", action="store_true", help="as `train --noise-stem`")
    p.add_argument("--crop", type=int, default=config.crop, help="px a side of each view")
    p.add_argument(
        "--batch-size",
        type=int,
        default=config.batch_size,
        help="photo regions per step (three crops each)",
    )
    p.add_argument("--steps", type=int, default=config.steps)
    p.add_argument(
        "--time-limit",
        type=float,
        metavar="MIN",
        help="stop after this many minutes and write the encoder (the learning rate decays "
        "over it)",
    )
    p.add_argument("--lr", type=float, default=config.lr)
    p.add_argument("--tau", type=float, default=config.tau, help="InfoNCE temperature")
    p.add_argument(
        "--hard-weight",
        type=float,
        default=config.hard_weight,
        help="weight of the term that ranks a crop's pair above the same content after "
        "another chain",
    )
    p.add_argument("--seed", type=int, default=config.seed)
    p.add_argument("--workers", type=int, default=config.workers)
    p.add_argument("--device", default=config.device, help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--no-amp", action="store_true", help="full precision")
    p.add_argument("--checkpoint-every", type=int, default=config.checkpoint_every)
    p.add_argument("--log-every", type=int, default=config.log_every)
    p.set_defaults(func=run)


def _config(args: argparse.Namespace):
    """The ``PretrainConfig`` of the flags, checked before torch loads."""
    from ncl_core.network.net_config import ModelConfig
    from ncl_core.training.pretrain_config import PretrainConfig

    if not args.photos or not args.out:
        raise UsageError("give --photos DIR (authentic photos) and --out FILE, or --resume RUN")
    for folder in args.photos:
        if not Path(folder).is_dir():
            raise UsageError(f"{shown(folder)}: not a folder (--photos takes folders of photos)")
    run_dir = args.run_dir or str(Path(args.out).with_suffix("")) + "-run"
    try:
        return PretrainConfig(
            photos=tuple(args.photos),
            out=args.out,
            run_dir=run_dir,
            model=ModelConfig(
                backbone=args.backbone,
                output_stride=args.output_stride,
                noise_stem=args.noise_stem,
            ),
            crop=args.crop,
            batch_size=args.batch_size,
            steps=args.steps,
            time_limit_min=args.time_limit,
            lr=args.lr,
            tau=args.tau,
            hard_weight=args.hard_weight,
            seed=args.seed,
            workers=args.workers,
            device=args.device,
            amp=not args.no_amp,
            checkpoint_every=args.checkpoint_every,
            log_every=args.log_every,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def run(args: argparse.Namespace) -> int:
    import signal

    if args.more_time is not None and not args.resume:
        raise UsageError("--more-time goes with --resume RUN_DIR (a run to give more time)")
    if args.resume:
        if not Path(args.resume).is_dir():
            raise UsageError(f"{shown(args.resume)}: no such run folder")
        config = None
    else:
        config = _config(args)

    from ncl_core.training.pretrain import Pretrainer

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if config is None:
        trainer = Pretrainer.resume(args.resume, log, more_minutes=args.more_time or 0.0)
    else:
        trainer = Pretrainer(config, log)
    # Ctrl-C stops after the current step and leaves a checkpoint to resume.
    previous = signal.signal(signal.SIGINT, lambda *_: trainer.cancel())
    try:
        path = trainer.fit()
    finally:
        signal.signal(signal.SIGINT, previous)
    return EXIT_OK if path is not None else EXIT_FAILED
