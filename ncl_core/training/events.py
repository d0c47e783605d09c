"""What the ``Trainer`` says while it runs: typed events, and the one text line for each.

Events are plain dicts (JSON objects in ``events.jsonl``, one a line, and the argument of the
``on_event`` listener); the ``TypedDict`` classes below name their keys, so that the trainer
builds them and the readers use them alike. Every event gets a ``time`` (UTC, ISO 8601) when it
is emitted. Old run folders keep loading: these are the keys the log has always held.

``format_event`` is the text both the CLI (``ncl-forensics train``) and the GUI's Training view
show for an event; what each does beyond that (the CLI's progress bar, the GUI's plots) is its
own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypedDict

# The loss parts named in a step's line (the event holds every part).
MAIN_LOSSES = ("total", "ncl", "pc")
# The validation metrics named in a validation's line, when present and finite.
VALIDATION_SHOWN = ("f1", "best_f1", "floor_f1", "auc", "iou", "image_auc", "quiet_f1")
# The figures of the table, in order, with the words a reader sees; ``floor_f1`` (F1 of
# marking every pixel) is the same before and after, so it is shown once, beside F1.
COMPARED = (
    ("f1", "F1 at 0.5"),
    ("best_f1", "F1 at the best threshold"),
    ("auc", "pixel AUC"),
    ("iou", "IoU at 0.5"),
    ("image_auc", "image AUC"),
    ("authentic_flagged_median", "flagged share of authentic images (median)"),
    ("quiet_f1", "F1 where authentic images stay quiet"),
)


class _Timed(TypedDict, total=False):
    time: str  # added when the event is emitted


class StartEvent(_Timed):
    """Training starts (or resumes): its size, where it runs, where it writes."""

    type: Literal["start"]
    total_steps: int
    epochs: int
    steps_per_epoch: int
    device: str
    processes: int
    amp: str  # "bfloat16", "float16" or "off"
    n_train: int
    n_val: int
    run_dir: str


class StepEvent(_Timed):
    """One optimizer step (skipped non-finite steps report none)."""

    type: Literal["step"]
    step: int
    total_steps: int
    epoch: int  # 1-based: the epoch this step belongs to
    losses: dict[str, float]  # "total", "ncl", "pc" and every part the loss reports
    lr: float  # the rate of the next step
    images_per_s: float
    eta_s: float


class EpochEvent(_Timed):
    type: Literal["epoch"]
    epoch: int  # epochs completed
    step: int


class _Baseline(_Timed, total=False):
    baseline: bool  # the base model of a fine-tune, measured before the first step


class ValidationEvent(_Baseline):
    type: Literal["validation"]
    epoch: int
    step: int
    metrics: dict[str, float]


class CheckpointEvent(_Timed):
    type: Literal["checkpoint"]
    path: str
    step: int


class SnapshotEvent(_Timed):
    type: Literal["snapshot"]
    path: str
    step: int


class _LogDetails(_Timed, total=False):
    ema_metrics: dict[str, float]  # with an EMA of the weights: both validations
    raw_metrics: dict[str, float]


class LogEvent(_LogDetails):
    type: Literal["log"]
    level: Literal["info", "warning"]
    message: str


class DatasetEvent(_Timed):
    type: Literal["dataset"]
    summary: dict[str, Any]  # ``DatasetIndex.summary()`` of one labeled folder


class CancelledEvent(_Timed):
    type: Literal["cancelled"]
    step: int
    checkpoint: str


class FinishedEvent(_Timed):
    type: Literal["finished"]
    model_path: str
    metrics: dict[str, float]
    steps: int
    total_steps: int
    stopped_by_time_limit: bool
    duration_s: float


class ComparisonEvent(_Timed):
    """A fine-tune's before/after on its held-out images (``ncl_core.training.comparison``)."""

    type: Literal["comparison"]
    rows: list[dict[str, Any]]  # {"metric", "label", "before", "after"}
    floor_f1: float | None
    n_images: int
    pictures: list[str]  # image | truth | before | after, one PNG per held-out image


class FailedEvent(_Timed):
    type: Literal["failed"]
    message: str


TrainingEvent = (
    StartEvent
    | StepEvent
    | EpochEvent
    | ValidationEvent
    | CheckpointEvent
    | SnapshotEvent
    | LogEvent
    | DatasetEvent
    | CancelledEvent
    | ComparisonEvent
    | FinishedEvent
    | FailedEvent
)
# What a listener receives: one of the above (a GUI may add its own kinds to the same stream).
Event = dict[str, Any]


def log_event(message: str, level: Literal["info", "warning"] = "info") -> LogEvent:
    return LogEvent(type="log", level=level, message=message)


def format_duration(seconds: float | None) -> str:
    """``H:MM:SS``; "–" when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def format_event(event: Mapping[str, Any]) -> str | None:
    """One line of text for ``event``; None for the kinds that have nothing to say as a line
    (an epoch's end, kinds this module does not know)."""
    kind = event.get("type")
    if kind == "start":
        processes = event.get("processes", 1)
        where = event["device"] + (
            f" and {processes - 1} more process(es)" if processes > 1 else ""
        )
        return (
            f"training on {where} (AMP {event['amp']}): {event['n_train']} training / "
            f"{event['n_val']} validation items, {event['total_steps']} steps; "
            f"run folder {event['run_dir']}"
        )
    if kind == "step":
        losses = event.get("losses", {})
        parts = "  ".join(f"{k} {losses[k]:.4f}" for k in MAIN_LOSSES if k in losses)
        return (
            f"step {event['step']} / {event['total_steps']} · epoch {event['epoch']} · "
            f"{parts} · lr {event['lr']:.2e} · {event['images_per_s']:.1f} img/s · "
            f"ETA {format_duration(event.get('eta_s'))}"
        )
    if kind == "validation":
        m = event.get("metrics", {})
        shown = ", ".join(
            f"{k} {m[k]:.3f}"
            for k in VALIDATION_SHOWN
            if isinstance(m.get(k), float) and math.isfinite(m[k])
        )
        if event.get("baseline"):
            return f"before fine-tuning, the base model on the validation images: {shown}"
        return f"epoch {event['epoch']} validation: {shown}"
    if kind == "log":
        prefix = "warning: " if event.get("level") == "warning" else ""
        return prefix + str(event.get("message", ""))
    if kind == "dataset":
        s = event["summary"]
        return (
            f"dataset {s['root']}: {s['layout']}, {s['n_tampered']} tampered, "
            f"{s['n_authentic']} authentic, {s['n_unpaired']} unpaired"
        )
    if kind in ("checkpoint", "snapshot"):
        return f"{kind} at step {event.get('step')}: {event['path']}"
    if kind == "cancelled":
        folder = Path(event["checkpoint"]).parent
        return f"cancelled at step {event['step']}; resume with --resume {folder}"
    if kind == "comparison":
        text = format_comparison(event["rows"], event.get("floor_f1"), event.get("n_images"))
        if event.get("pictures"):
            text += f"\n  side by side: {Path(event['pictures'][0]).parent}"
        return text
    if kind == "finished":
        return f"finished: model written to {event['model_path']}"
    if kind == "failed":
        return f"failed: {event['message']}"
    return None


def comparison_rows(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per figure both measurements hold: ``{"metric", "label", "before", "after"}``."""
    rows = []
    for key, label in COMPARED:
        b, a = before.get(key), after.get(key)
        if _finite(b) and _finite(a):
            rows.append({"metric": key, "label": label, "before": float(b), "after": float(a)})
    return rows


def format_comparison(rows: list[dict[str, Any]], floor: float | None, n_images: int | None) -> str:
    """The table as text (the CLI prints it; the GUI shows the same rows in a table)."""
    where = f" on {n_images} validation image(s)" if n_images else " on the validation images"
    lines = [f"before and after fine-tuning{where}:"]
    width = max((len(r["label"]) for r in rows), default=10)
    lines.append(f"  {'':{width}}  {'before':>7}  {'after':>7}  {'change':>7}")
    for r in rows:
        change = r["after"] - r["before"]
        lines.append(
            f"  {r['label']:{width}}  {r['before']:7.3f}  {r['after']:7.3f}  {change:+7.3f}"
        )
    if _finite(floor):
        lines.append(f"  (marking every pixel scores F1 {floor:.3f}: the floor)")
    return "\n".join(lines)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
