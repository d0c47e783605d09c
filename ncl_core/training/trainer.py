"""The training engine: fit, validate, checkpoint, resume, cancel, fine-tune.

The ``Trainer`` speaks only through events (``ncl_core.training.events``); the CLI prints them
with a progress bar, the GUI plots them. Every step is reproducible from (seed, step) alone, so
a resumed run follows the same loss trajectory as an uninterrupted one. ``fit()`` runs
``_setup``, then ``_run_epoch`` and ``_end_epoch`` (validation, best model, checkpoint) over a
``RunState`` until the steps are done, the run is cancelled or its time is up. The recipe is in
docs/METHOD.md.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from ncl_core.errors import NCLError, TrainingError
from ncl_core.fsutil import atomic_write_text, remove_stale_temp_files, shorten_name
from ncl_core.models.modelfile import load_model
from ncl_core.network.device import amp_dtype, describe
from ncl_core.network.model import NCLNet
from ncl_core.paths import runs_dir
from ncl_core.training import events as ev
from ncl_core.training.comparison import PICTURES_DIR, draw_before_after
from ncl_core.training.distributed import (
    DistEnv,
    all_reduce_sum,
    barrier,
    destroy_process_group,
    init_process_group,
    is_peer_failure,
)
from ncl_core.training.keeping import Keeper
from ncl_core.training.progress import Progress, RunState
from ncl_core.training.revive import revive_dead_channels
from ncl_core.training.run_data import (
    EpochBatches,
    build_datasets,
    collate,
    leaf_datasets,
    scan_sources,
)
from ncl_core.training.run_dir import CHECKPOINT_NAME, CONFIG_NAME, append_event, read_checkpoint
from ncl_core.training.run_setup import (
    build_optimizer,
    for_processes,
    initial_model,
    place_model,
    training_device,
    without_worker_traceback,
)
from ncl_core.training.steps import (
    no_scheduler_order_warning,
    train_mode,
    train_step,
    update_ema,
)
from ncl_core.training.train_config import TrainConfig

# Training crops the dead-channel probe looks at (ncl_core/training/revive.py).
REVIVE_PROBE = 8


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _time_is_up(config: TrainConfig, checkpoint: dict[str, Any]) -> bool:
    """Whether a checkpointed run with a clock-driven schedule has no time left."""
    if config.time_limit_min is None:
        return False
    if checkpoint.get("time_up"):
        return True
    return float(checkpoint.get("elapsed_s", 0.0)) >= 60.0 * config.time_limit_min - 1.0


def default_model_path(run_dir: Path, name: str) -> Path:
    """Where a run without ``out`` writes its model: in its own folder, never the current one."""
    stem = re.sub(r"[^\w.-]+", "_", name).strip("._") or "model"  # a name, not a path
    return run_dir / f"{shorten_name(stem, 120)}.safetensors"


class Trainer:
    """Trains an ``NCLNet``; ``fit()`` blocks (run it in a worker thread), ``cancel()`` is safe
    to call from any thread."""

    def __init__(self, config: TrainConfig, on_event: Callable[[ev.Event], None] | None = None):
        self.config = config
        self.on_event = on_event
        self._cancel = threading.Event()
        self._checkpoint: dict[str, Any] | None = None
        self.run_dir = Path(config.run_dir) if config.run_dir else None
        self._elapsed_s = 0.0  # training time of this run, resumes included
        # Under torchrun: this process's place in the run. Rank 0 alone writes (checkpoints,
        # events, snapshots, the model file) and validates; every rank trains.
        self.dist = DistEnv.from_environ()
        self._agreed_cancel = False  # several processes: the cancel all of them agreed on
        self._own_group = False  # this trainer created the process group (and destroys it)
        self._keeper: Keeper | None = None  # validates and writes; made once run_dir is known

    # -- public -------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop after the current step, leaving a resumable checkpoint."""
        self._cancel.set()

    @classmethod
    def resume(
        cls,
        run_dir: str | Path,
        on_event: Callable[[ev.Event], None] | None = None,
        more_minutes: float | None = None,
    ) -> Trainer:
        """A trainer that continues the run in ``run_dir`` from its last checkpoint.

        ``more_minutes`` gives the run more time: a run whose learning rate follows the clock
        (``schedule_by_time``) gets its time limit raised by that much, and its schedule
        continues over the longer span (the rate rises again to where the longer schedule
        stands, then reaches 0 at the new limit); any other run gets that limit for this
        session. A run that stopped at its time limit needs more time to resume
        (``TrainingError`` otherwise: it would train one step at learning rate 0).
        """
        run_dir = Path(run_dir)
        # Half-written checkpoints and snapshots of a killed process (up to 124 MB each);
        # a minute old at least, so that a write in progress elsewhere is left alone.
        remove_stale_temp_files(run_dir, older_than_s=60.0)
        checkpoint = read_checkpoint(run_dir)
        config = TrainConfig.from_json(checkpoint["config"])
        config.run_dir = str(run_dir)
        if more_minutes is not None:
            if not math.isfinite(more_minutes) or more_minutes <= 0:
                raise TrainingError(
                    f"more time must be a positive number of minutes, not {more_minutes:g}"
                )
            elapsed_min = float(checkpoint.get("elapsed_s", 0.0)) / 60.0
            if config.schedule_by_time and config.time_limit_min is not None:
                # The limit counts training time over every session: what was used, plus more.
                config.time_limit_min = max(config.time_limit_min, elapsed_min) + more_minutes
            else:
                config.time_limit_min = more_minutes
            checkpoint["time_up"] = False
        elif config.schedule_by_time and _time_is_up(config, checkpoint):
            raise TrainingError(
                f"{run_dir}: this run used all of its {config.time_limit_min:g}-minute time "
                "limit, so its learning rate is 0; give it more time to continue "
                f"(ncl-forensics finetune --resume {run_dir} --more-time MIN, or "
                "More time in the Training view's Resume dialog)"
            )
        trainer = cls(config, on_event)
        trainer._checkpoint = checkpoint
        return trainer

    def fit(self) -> Path | None:
        """Train; returns the model file written, or None when cancelled."""
        try:
            path = self._fit()
        except TrainingError as exc:
            self._emit_failed(str(exc))
            raise
        except Exception as exc:
            if self.dist.active and is_peer_failure(exc):
                # A collective broke because another process went away: it reports the cause.
                message = (
                    f"lost contact with another training process (it failed or was stopped: "
                    f"see its error); {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                )
                self._emit_failed(f"training failed: {message}")
                raise TrainingError(message) from exc
            clean = without_worker_traceback(exc)
            self._emit_failed(f"training failed: {clean}")
            if clean is exc:
                raise
            raise clean from exc
        if self._own_group:
            destroy_process_group()
        return path

    # -- events -------------------------------------------------------------------------------
    def _emit(self, event: ev.Event) -> None:
        if not self.dist.is_main:  # one voice per run: rank 0's
            return
        event.setdefault("time", _now())
        try:
            if self.run_dir is not None:
                append_event(self.run_dir, event)
        finally:
            if self.on_event is not None:
                self.on_event(event)

    def _emit_failed(self, message: str) -> None:
        # The event log may be what failed (a read-only or full disk): the listener still
        # hears why, and the original error, not the log's, reaches the caller.
        with contextlib.suppress(OSError):
            self._emit(ev.FailedEvent(type="failed", message=message))

    def _log(self, message: str, level: str = "info") -> None:
        self._emit(ev.log_event(message, level))

    def _datasets(self) -> tuple[Dataset, Dataset | None, dict[str, Any]]:
        """The training set, the validation set (or None) and what the model file records;
        what the folders hold is reported first (a ``dataset`` event each, then warnings)."""
        found = scan_sources(self.config)
        for summary in found.summaries:
            self._emit(ev.DatasetEvent(type="dataset", summary=summary))
        for line in found.warnings:
            self._log(line, "warning")
        data = build_datasets(self.config, found)
        return data.train, data.val, data.trained_on

    # -- the loop -----------------------------------------------------------------------------
    def _fit(self) -> Path | None:
        run = self._setup()
        progress = run.progress
        while progress.step < run.total_steps:
            self._run_epoch(run)
            self._end_epoch(run)
            if self._stopping() and progress.step < run.total_steps:
                checkpoint = str(self.run_dir / CHECKPOINT_NAME)
                self._emit(
                    ev.CancelledEvent(type="cancelled", step=progress.step, checkpoint=checkpoint)
                )
                return None
            if run.out_of_time and progress.step < run.total_steps:
                self._log(
                    f"time limit ({self.config.time_limit_min:g} min) reached at step "
                    f"{progress.step} of {run.total_steps}; continue with --resume {self.run_dir}",
                    "warning",
                )
                break
        if run.val_set is None or progress.best_f1 < 0:
            self._keeper.save_model(run, progress.best_metrics)
            if run.val_set is None:
                self._log("no validation set: the final weights were saved", "warning")
        if progress.baseline and progress.best_metrics and self.dist.is_main:
            self._compare(run)
        self._emit(
            ev.FinishedEvent(
                type="finished",
                model_path=str(run.model_path),
                metrics=progress.best_metrics,
                steps=progress.step,
                total_steps=run.total_steps,
                stopped_by_time_limit=progress.step < run.total_steps,
                duration_s=time.perf_counter() - run.t_start,
            )
        )
        barrier(self.dist)  # every process returns once the model file is there
        return run.model_path

    def _compare(self, run: RunState) -> None:
        """A fine-tune's before/after on its held-out images: the table of both validations,
        and a few held-out images drawn by the base model and the kept one."""
        progress = run.progress
        pictures: list[str] = []
        try:
            base, _ = load_model(self.config.base_model)
            tuned, _ = load_model(run.model_path)
            pictures = draw_before_after(
                base, tuned, run.val_set, self.run_dir / PICTURES_DIR, device="cpu"
            )
        except (
            OSError,
            ValueError,
            RuntimeError,
            NCLError,
        ) as exc:  # the table still says the gain
            self._log(f"the before/after pictures could not be drawn: {exc}", "warning")
        floor = progress.best_metrics.get("floor_f1", progress.baseline.get("floor_f1"))
        self._emit(
            ev.ComparisonEvent(
                type="comparison",
                rows=ev.comparison_rows(progress.baseline, progress.best_metrics),
                floor_f1=floor if isinstance(floor, float) else None,
                n_images=len(run.val_set),
                pictures=pictures,
            )
        )

    def _setup(self) -> RunState:
        """Run folder, device, process group, network, data, optimizer; a resumed run's
        checkpoint restored; then the ``start`` event and the clock."""
        cfg, dist = self.config, self.dist
        if self.run_dir is None:
            self.run_dir = runs_dir() / datetime.now().strftime("%Y%m%d-%H%M%S")
            cfg.run_dir = str(self.run_dir)
        if cfg.name is None:
            cfg.name = f"ncl-{self.run_dir.name}"
        if cfg.out is None:
            cfg.out = str(default_model_path(self.run_dir, cfg.name))
        if dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self._keeper = Keeper(cfg, dist, self.run_dir, self._emit)
        device = training_device(cfg, dist)
        self._own_group = init_process_group(dist, device)
        model, parent = initial_model(cfg)
        train_set, val_set, trained_on = self._datasets()
        if cfg.revive_dead and self._checkpoint is None:
            if cfg.base_model:
                self._revive(model, train_set)
            else:  # a new network's batch norms have seen nothing: no channel is dead yet
                self._log("--revive-dead has no effect on a new network", "warning")
        if dist.is_main:
            atomic_write_text(self.run_dir / CONFIG_NAME, cfg.to_json())
        steps_per_epoch = len(
            EpochBatches(len(train_set), cfg.batch_size, cfg.seed, 0, 0, 0, dist.world_size)
        )
        total_steps = cfg.steps or cfg.epochs * steps_per_epoch
        amp = amp_dtype(device, training=True) if cfg.amp else None
        model = place_model(model, device, cfg, dist, amp)
        optimizer, scheduler = build_optimizer(
            model, cfg, total_steps, dist.world_size, lambda: self._elapsed_s
        )
        run = RunState(
            device=device,
            amp=amp,
            model=model,
            train_model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            scaler=torch.amp.GradScaler("cuda", enabled=amp == torch.float16),
            train_set=train_set,
            val_set=val_set,
            total_steps=total_steps,
            model_path=Path(cfg.out),
            meta={"trained_on": trained_on, "parent": parent},
        )
        if cfg.ema_decay is not None and dist.is_main:  # only rank 0 validates and saves
            run.ema = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if self._checkpoint is not None:
            self._restore(run, self._checkpoint)
        if cfg.sync_bn and not dist.active:
            self._log("--sync-bn has no effect in a single process", "warning")
        run.train_model = for_processes(model, device, dist)
        self._emit(
            ev.StartEvent(
                type="start",
                total_steps=total_steps,
                epochs=math.ceil(total_steps / steps_per_epoch),
                steps_per_epoch=steps_per_epoch,
                device=describe(device),
                processes=dist.world_size,
                amp=str(amp).replace("torch.", "") if amp else "off",
                n_train=trained_on["n_train"],
                n_val=trained_on["n_val"],
                run_dir=str(self.run_dir),
            )
        )
        if self._checkpoint is None and cfg.base_model and val_set is not None:
            self._keeper.measure_baseline(run)  # where the fine-tune starts from
        run.t_start = run.last_snapshot = time.perf_counter()
        run.elapsed_before = run.progress.elapsed_s
        if cfg.time_limit_min is not None:
            # A clock-driven schedule spans the whole run, resumes included; otherwise each
            # invocation gets the full limit.
            run.deadline = run.t_start + 60.0 * cfg.time_limit_min
            if cfg.schedule_by_time:
                run.deadline -= run.elapsed_before
        return run

    def _revive(self, model: NCLNet, train_set: Dataset) -> None:
        """Revive the decoder's dead channels on a probe of training crops (every process
        draws the same ones and the same fresh weights)."""
        n = min(REVIVE_PROBE, len(train_set))
        picks = sorted({round(i * (len(train_set) - 1) / max(1, n - 1)) for i in range(n)})
        probe = torch.stack([train_set[i]["image"] for i in picks])
        counts = revive_dead_channels(model, probe, seed=self.config.seed)
        found = ", ".join(f"{name} {dead} of {total}" for name, (dead, total) in counts.items())
        self._log(f"dead decoder channels revived (the output is unchanged): {found}")

    def _restore(self, run: RunState, ckpt: dict[str, Any]) -> None:
        """Continue from a resumed run's checkpoint (with as many processes as wrote it)."""
        world_size = self.dist.world_size
        if ckpt.get("world_size", 1) != world_size:
            raise TrainingError(
                f"this run was trained by {ckpt.get('world_size', 1)} process(es) and is "
                f"resumed by {world_size}: resume it with as many (--nproc), so that "
                "its batches and schedule stay the same"
            )
        run.model.load_state_dict(ckpt["model"])
        if run.ema is not None and ckpt.get("ema"):
            run.ema = {k: v.to(run.device) for k, v in ckpt["ema"].items()}
        run.optimizer.load_state_dict(ckpt["optimizer"])
        run.scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            run.scaler.load_state_dict(ckpt["scaler"])
        run.progress.update_from(ckpt)
        self._log(f"resumed from step {run.progress.step} (epoch {run.progress.epoch + 1})")

    def _run_epoch(self, run: RunState) -> None:
        """The steps of one epoch from where it stands, until it ends, the run is cancelled,
        the steps are done or the time is up."""
        cfg, dist, progress = self.config, self.dist, run.progress
        epoch = progress.epoch
        for ds in leaf_datasets(run.train_set):
            ds.set_epoch(epoch)
        batches = EpochBatches(
            len(run.train_set),
            cfg.batch_size,
            cfg.seed,
            epoch,
            progress.batch_in_epoch,
            dist.rank,
            dist.world_size,
        )
        loader = DataLoader(
            run.train_set,
            batch_sampler=batches,
            num_workers=cfg.workers,
            collate_fn=collate,
            pin_memory=run.device.type == "cuda",
            persistent_workers=False,
        )
        train_mode(run.train_model, cfg.freeze_bn, cfg.freeze_backbone)
        for batch in loader:
            t0 = time.perf_counter()
            losses = train_step(
                run.train_model,
                batch,
                run.optimizer,
                run.scaler,
                run.device,
                run.amp,
                cfg,
                dist,
                progress,
                warn=lambda message: self._log(message, "warning"),
            )
            now = time.perf_counter()
            progress.elapsed_s = run.elapsed_before + now - run.t_start
            if not dist.active:  # else rank 0's, as agreed after each step (below)
                self._elapsed_s = progress.elapsed_s
            if losses is not None and run.ema is not None:
                update_ema(run.ema, run.model, progress.step, cfg.ema_decay)
            # A skipped (non-finite) step still advances the schedule, so that a resumed run
            # stays on it. Only then is PyTorch's "no optimizer step came first" warning
            # silenced: warning filters are process-wide, and this loop runs in a thread.
            with no_scheduler_order_warning() if losses is None else contextlib.nullcontext():
                run.scheduler.step()
            progress.step += 1
            progress.batch_in_epoch += 1
            run.recent = (run.recent + [time.perf_counter() - t0])[-20:]
            per_step = sum(run.recent) / len(run.recent)
            if losses is not None:
                self._emit(
                    ev.StepEvent(
                        type="step",
                        step=progress.step,
                        total_steps=run.total_steps,
                        epoch=epoch + 1,
                        losses=losses,
                        lr=run.optimizer.param_groups[0]["lr"],
                        images_per_s=len(batch["path"]) * dist.world_size / max(per_step, 1e-9),
                        eta_s=self._eta(run, per_step, now),
                    )
                )
            if progress.step % cfg.checkpoint_every == 0:
                self._keeper.checkpoint(run)
            if (
                cfg.snapshot_every_s
                and time.perf_counter() - run.last_snapshot >= cfg.snapshot_every_s
            ):
                self._keeper.snapshot(run)
                run.last_snapshot = time.perf_counter()
            if dist.active:
                run.out_of_time = self._agree(progress, run.device, run.deadline)
            else:
                run.out_of_time = run.deadline is not None and time.perf_counter() >= run.deadline
            progress.time_up = run.out_of_time
            if self._stopping() or progress.step >= run.total_steps or run.out_of_time:
                break

    def _eta(self, run: RunState, per_step: float, now: float) -> float:
        """Seconds left: the remaining steps at the recent pace, or the time left before the
        time limit when that comes first (validation at the end not included)."""
        eta = per_step * (run.total_steps - run.progress.step)
        if run.deadline is not None:
            eta = min(eta, max(0.0, run.deadline - now))
        return eta

    def _end_epoch(self, run: RunState) -> None:
        """After an epoch (or a stop inside one): validate when due and keep the best model,
        then checkpoint. A stop by the time limit validates too; a cancel does not."""
        progress = run.progress
        epoch_done = progress.step >= run.total_steps or not (self._stopping() or run.out_of_time)
        if epoch_done:
            progress.epoch += 1
            progress.batch_in_epoch = 0
            self._emit(ev.EpochEvent(type="epoch", epoch=progress.epoch, step=progress.step))
            last = progress.step >= run.total_steps
            if run.val_set is not None and (progress.epoch % self.config.val_every == 0 or last):
                self._keeper.validate_and_keep(run)
        elif run.out_of_time and not self._stopping() and run.val_set is not None:
            self._keeper.validate_and_keep(run)
        self._keeper.checkpoint(run)

    def _stopping(self) -> bool:
        """Cancelled: with several processes, as all of them agreed at the last step."""
        return self._agreed_cancel if self.dist.active else self._cancel.is_set()

    def _agree(self, progress: Progress, device: torch.device, deadline: float | None) -> bool:
        """Several processes: one decision for all after each step (a process that stopped
        alone would leave the others waiting in a collective). A cancel anywhere cancels all;
        rank 0's clock decides the time limit and is the elapsed time the next step's schedule
        reads (each process's own would give each its own learning rate). Returns whether the
        time is up."""
        main = self.dist.is_main
        out_of_time = main and deadline is not None and time.perf_counter() >= deadline
        flags = torch.tensor(
            [float(self._cancel.is_set()), float(out_of_time), progress.elapsed_s if main else 0],
            dtype=torch.float64,
            device=device,
        )
        cancel, out_of_time, elapsed = all_reduce_sum(self.dist, flags).tolist()
        self._agreed_cancel = cancel > 0
        progress.elapsed_s = self._elapsed_s = elapsed
        return out_of_time > 0
