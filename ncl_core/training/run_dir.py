"""A training run folder: what it holds, how its files are written, and how they are read.

A run folder (``runs_dir()/<timestamp>`` by default) holds ``config.json`` (the run's
``TrainConfig``), ``events.jsonl`` (the Trainer's events, one JSON object a line: see
``ncl_core.training.events``), ``checkpoint.pt`` (what ``--resume`` continues from) and, when
asked for, ``snapshot.safetensors``. This module owns their names, the checkpoint's format
(written whole or not at all, read without running any code a foreign file carries) and the
event log's writer.

``describe_run`` turns the config and the log into a ``RunSummary`` an analyst can read: which
model, on which data, how far, since when. Damaged or missing files never raise: the summary
keeps what could be read and says what could not in ``notes``. ``past_events`` gives the GUI the
curves of a run it resumes. Only the JSON files are read for these (the tail of the event log,
which can grow to many megabytes); ``torch`` is imported only to write or load a checkpoint, so
listing the runs is instant.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ncl_core.errors import TrainingError
from ncl_core.fsutil import atomic_path
from ncl_core.paths import runs_dir

CHECKPOINT_NAME = "checkpoint.pt"
SNAPSHOT_NAME = "snapshot.safetensors"
CONFIG_NAME = "config.json"
EVENTS_NAME = "events.jsonl"
CHECKPOINT_FORMAT = "ncl-forensics-checkpoint"
_TAIL_CHUNK = 64 * 1024
_REGISTRY_SUFFIX = re.compile(r"-[0-9a-f]{12}$")  # registry files: <name>-<id>.safetensors


@dataclass
class RunSummary:
    """One run folder, as far as its files could be read."""

    path: Path
    name: str | None = None  # the name of the model the run writes
    backbone: str | None = None
    base_model: str | None = None  # the model file it fine-tunes; None: from scratch
    data: tuple[str, ...] = ()  # labeled dataset folders (or JSON lists)
    synthetic: str | None = None  # folder of authentic photos forged on the fly
    step: int | None = None  # the step of the last checkpoint (where a resume starts)
    total_steps: int | None = None
    started: datetime | None = None  # local time of the run's first event
    updated: datetime | None = None  # local time of its last checkpoint (or last event)
    state: str = "interrupted"  # interrupted | cancelled | stopped | failed | finished
    time_limit_min: float | None = None  # the run's time limit (all sessions, when clock-driven)
    schedule_by_time: bool = False  # its learning rate follows the clock to the time limit
    has_checkpoint: bool = False
    notes: list[str] = field(default_factory=list)  # what could not be read, and why

    @property
    def resumable(self) -> bool:
        return self.has_checkpoint

    @property
    def needs_more_time(self) -> bool:
        """It stopped at a time limit its learning rate followed to 0: a resume needs more
        time (``Trainer.resume(..., more_minutes=...)``)."""
        return self.state == "stopped" and self.schedule_by_time

    def model_text(self) -> str:
        """E.g. "my-model: fine-tuning casia-v1 (resnet50)" or "resnet18 from scratch"."""
        arch = self.backbone or "unknown backbone"
        if self.base_model:
            what = f"fine-tuning {model_label(self.base_model)} ({arch})"
        elif self.backbone or self.name:
            what = f"{arch} from scratch"
        else:
            what = "unknown model"
        return f"{self.name}: {what}" if self.name else what

    def data_text(self) -> str:
        """The folders trained on, by name (the full paths are in ``data_paths``)."""
        parts = [_short(d) for d in self.data]
        if self.synthetic:
            parts.append(f"synthetic forgeries of {_short(self.synthetic)}")
        return ", ".join(parts) if parts else "unknown data"

    def data_paths(self) -> list[str]:
        return list(self.data) + ([self.synthetic] if self.synthetic else [])

    def progress_text(self) -> str:
        """E.g. "step 1200 of 5000 (24 %)"."""
        if self.step is None:
            return "no step recorded"
        if not self.total_steps:
            return f"step {self.step}"
        pct = 100 * self.step / self.total_steps
        return f"step {self.step} of {self.total_steps} ({pct:.0f} %)"

    def date_text(self) -> str:
        """When the run started and, if later, when it last saved a checkpoint."""
        fmt = "%Y-%m-%d %H:%M"
        if self.started is None and self.updated is None:
            return "unknown date"
        if self.started is None:
            return f"saved {self.updated:{fmt}}"
        text = f"started {self.started:{fmt}}"
        if self.updated is not None and self.updated.strftime(fmt) != self.started.strftime(fmt):
            same_day = self.updated.date() == self.started.date()
            text += f", saved {self.updated:{'%H:%M' if same_day else fmt}}"
        return text


def model_label(model_path: str) -> str:
    """A model file's readable name: its stem, without the registry's id suffix."""
    stem = Path(model_path).stem
    return _REGISTRY_SUFFIX.sub("", stem) or stem


def _short(path: str) -> str:
    p = Path(path)
    return p.name or str(p)


def _local_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    # Naive local time, comparable with file times (which carry no zone).
    return stamp.astimezone().replace(tzinfo=None) if stamp.tzinfo else stamp


def _read_config(run: RunSummary) -> None:
    path = run.path / CONFIG_NAME
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        run.notes.append(f"no {CONFIG_NAME}: model and data unknown")
        return
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        run.notes.append(f"{CONFIG_NAME} cannot be read ({exc.__class__.__name__})")
        return
    if not isinstance(config, dict):
        run.notes.append(f"{CONFIG_NAME} holds no settings")
        return
    name, base = config.get("name"), config.get("base_model")
    run.name = name if isinstance(name, str) and name else None
    run.base_model = base if isinstance(base, str) and base else None
    model = config.get("model")
    if isinstance(model, dict) and isinstance(model.get("backbone"), str):
        run.backbone = model["backbone"]
    data = config.get("data")
    if isinstance(data, (list, tuple)):
        run.data = tuple(str(d) for d in data)
    synthetic = config.get("synthetic")
    run.synthetic = synthetic if isinstance(synthetic, str) and synthetic else None
    limit = config.get("time_limit_min")
    if isinstance(limit, (int, float)) and not isinstance(limit, bool) and limit > 0:
        run.time_limit_min = float(limit)
    run.schedule_by_time = config.get("schedule_by_time") is True and run.time_limit_min is not None
    steps = config.get("steps")
    if isinstance(steps, int) and steps > 0:
        run.total_steps = steps  # the events say it for epoch-based runs too


def _first_line(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as fh:
            line = fh.readline(_TAIL_CHUNK)
        event = json.loads(line)
    except (OSError, ValueError):
        return None
    return event if isinstance(event, dict) else None


def _tail_events(path: Path):
    """The log's events from the last one backwards, read in chunks from the end.

    Lines that are not JSON (one cut short when the run was killed) are skipped.
    """
    with open(path, "rb") as fh:
        end = fh.seek(0, os.SEEK_END)
        rest = b""
        while end > 0:
            start = max(0, end - _TAIL_CHUNK)
            fh.seek(start)
            block = fh.read(end - start) + rest
            end = start
            lines = block.split(b"\n")
            rest = lines.pop(0) if start > 0 else b""  # maybe a partial line: keep it
            for line in reversed(lines):
                if line.strip():
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(event, dict):
                        yield event


def _read_events(run: RunSummary) -> None:
    path = run.path / EVENTS_NAME
    if not path.is_file():
        run.notes.append(f"no {EVENTS_NAME}: progress unknown")
        return
    first = _first_line(path)
    if first is not None:
        run.started = _local_time(first.get("time"))
    state = None
    total = None
    last_time = None
    try:
        for event in _tail_events(path):
            kind = event.get("type")
            if last_time is None:
                last_time = _local_time(event.get("time"))
            if state is None and kind in ("cancelled", "failed", "finished", "start"):
                # The last of these says how the last session ended ("start": killed).
                state = {"start": "interrupted"}.get(kind, kind)
                if kind == "finished" and event.get("stopped_by_time_limit"):
                    state = "stopped"
                if kind == "failed" and event.get("message"):
                    run.notes.append(f"failed: {event['message']}")
            if total is None and isinstance(event.get("total_steps"), int):
                total = event["total_steps"]
            if run.step is None and kind == "checkpoint" and isinstance(event.get("step"), int):
                run.step = event["step"]
                run.updated = _local_time(event.get("time"))
            if run.step is not None and total is not None and state is not None:
                break
    except OSError as exc:
        run.notes.append(f"{EVENTS_NAME} cannot be read ({exc.__class__.__name__})")
    if total is not None:
        run.total_steps = total
    if state is not None:
        run.state = state
    if run.updated is None:
        run.updated = last_time
    if first is None and last_time is None:
        run.notes.append(f"{EVENTS_NAME} holds no readable event")


def describe_run(run_dir: str | Path) -> RunSummary:
    """What ``run_dir`` holds: model, data, the step of its checkpoint, dates, state.

    Never raises for a damaged folder: what cannot be read is named in ``notes``.
    """
    run = RunSummary(Path(run_dir))
    checkpoint = run.path / CHECKPOINT_NAME
    run.has_checkpoint = checkpoint.is_file()
    _read_config(run)
    _read_events(run)
    if not run.has_checkpoint:
        run.notes.append(f"no {CHECKPOINT_NAME}: cannot be resumed")
    elif run.updated is None:
        with contextlib.suppress(OSError):
            run.updated = datetime.fromtimestamp(checkpoint.stat().st_mtime)
    if run.started is None:
        run.started = _stamp_from_name(run.path.name)
    return run


def _stamp_from_name(name: str) -> datetime | None:
    """The date in a default run folder's name (``20240501-140312``)."""
    try:
        return datetime.strptime(name, "%Y%m%d-%H%M%S")
    except ValueError:
        return None


def list_runs(root: str | Path | None = None) -> list[RunSummary]:
    """The resumable runs (folders with a checkpoint) under ``root`` (default: the user's runs
    folder), the most recently saved first."""
    root = Path(root) if root is not None else runs_dir()
    try:
        folders = [p for p in root.iterdir() if (p / CHECKPOINT_NAME).is_file()]
    except OSError:
        return []
    runs = [describe_run(p) for p in folders]
    oldest = datetime.min
    runs.sort(key=lambda r: (r.updated or r.started or oldest, r.path.name), reverse=True)
    return runs


def past_events(run_dir: str | Path) -> list[dict[str, Any]]:
    """The step and validation events a run logged up to its last checkpoint (what the GUI
    plots again when it resumes a run).

    Steps after that checkpoint are trained again on resume, so they are left out here.
    """
    events = []
    checkpoint_step = 0
    try:
        with open(Path(run_dir) / EVENTS_NAME, encoding="utf-8") as fh:
            for line in fh:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # a line cut short when the run was killed
                if event.get("type") in ("step", "validation"):
                    events.append(event)
                elif event.get("type") == "checkpoint":
                    checkpoint_step = int(event.get("step", 0))
    except OSError:
        return []
    return [e for e in events if int(e.get("step", 0)) <= checkpoint_step]


# -- written by the trainer ----------------------------------------------------------------------
def append_event(run_dir: Path, event: Mapping[str, Any]) -> None:
    """One line of ``events.jsonl``."""
    with open(run_dir / EVENTS_NAME, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(event, default=str) + "\n")


def make_checkpoint(
    *, config_json: str, model, optimizer, scheduler, scaler, ema, world_size: int, progress
) -> dict[str, Any]:
    """Everything a resume needs: settings, weights, optimizer, schedule, the loss scaler, the
    weights' moving average, and ``progress`` (step, epoch, best validation so far, …)."""
    return {
        "format": CHECKPOINT_FORMAT,
        "version": 1,
        "config": config_json,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler.is_enabled() else {},
        "ema": ema or {},
        "world_size": world_size,  # a global batch is this many processes' batches
        **progress,
    }


def write_checkpoint(
    run_dir: Path, checkpoint: dict[str, Any], name: str = CHECKPOINT_NAME
) -> Path:
    """``checkpoint.pt`` (or ``name``), replaced whole or not at all; a failure keeps the
    previous one."""
    import torch

    path = run_dir / name
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            torch.save(checkpoint, fh)
    except (OSError, RuntimeError) as exc:
        # torch reports a full disk as "RuntimeError: ... unexpected pos"; the OSError it
        # ran into says why.
        reason = exc.__context__ if isinstance(exc.__context__, OSError) else exc
        raise TrainingError(
            f"cannot write the checkpoint {path} ({reason}); the previous checkpoint is "
            f"kept: free disk space, then continue with --resume {run_dir}"
        ) from exc
    return path


def read_checkpoint(
    run_dir: Path, name: str = CHECKPOINT_NAME, fmt: str = CHECKPOINT_FORMAT
) -> dict[str, Any]:
    """The checkpoint of ``run_dir`` (``name``, whose "format" must be ``fmt``), loaded safely
    (tensors and settings only), on the CPU."""
    import torch

    ckpt_path = run_dir / name
    if not ckpt_path.is_file():
        raise TrainingError(f"{run_dir}: no checkpoint to resume from ({name})")
    try:
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # Not torch's message: it runs to many lines and suggests weights_only=False, which
        # would run whatever code a foreign file carries.
        raise TrainingError(
            f"{ckpt_path}: refused: not a checkpoint that can be loaded safely (it holds "
            "objects other than tensors and settings, or is damaged); resume only runs "
            "NCL Forensics wrote"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint gets one message
        raise TrainingError(f"{ckpt_path}: the checkpoint cannot be read ({exc})") from exc
    if checkpoint.get("format") != fmt:
        raise TrainingError(f"{ckpt_path}: not an NCL Forensics checkpoint")
    return checkpoint
