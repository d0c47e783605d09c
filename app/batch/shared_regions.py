"""The Batch view's list of regions shared between its images (``ncl_core.views.case_match``).

When a batch ends, the analyzed files are compared with each other in a job: each pair of
images that shows the same region gets a line (both names and boxes, the matching keypoints),
and copies of one picture a line of their own. Features are kept by file (path, size and
modification time), so a batch that adds files computes only theirs.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.jobs import FeaturesFound, Job, JobContext, JobManager
from ncl_core.evidence.image import load_evidence
from ncl_core.report.shared import box_text, default_budget
from ncl_core.views.case_match import CaseMatch, ImageFeatures, image_features, match_features

COLUMNS = ("Image", "Region", "Same region in", "Region there", "Matches")
FEATURE_CACHE = 2000  # images whose features are kept (about 0.25 MB each)

_Key = tuple[str, int, int]


def _key(path: Path) -> _Key | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (str(path), st.st_size, st.st_mtime_ns)


class SharedRegionsPanel(QWidget):
    """A table of shared regions under the queue, with its status line and a button."""

    message = Signal(str, str)

    def __init__(self, jobs: JobManager, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.jobs = jobs
        self.result: CaseMatch | None = None
        self._paths: list[Path] = []
        self._job: Job | None = None
        self._generation = 0  # a result from before the last clear() is not shown
        self._features: OrderedDict[_Key, ImageFeatures | str] = OrderedDict()
        self.status = QLabel("Shared regions: compared when a batch ends.")
        self.status.setWordWrap(True)
        self.button = QPushButton("Find shared regions")
        self.button.setToolTip(
            "Compare the analyzed images with each other: regions copied from one into another"
        )
        self.button.clicked.connect(lambda: self.find(self._paths))
        self.button.setEnabled(False)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        for column in (0, 2):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch)
        self.table.setMaximumHeight(160)
        self.table.setVisible(False)
        top = QHBoxLayout()
        top.addWidget(self.status, 1)
        top.addWidget(self.button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.table)

    def is_busy(self) -> bool:
        return self._job is not None and self._job.is_running()

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()

    def clear(self) -> None:
        self.cancel()
        self._generation += 1
        self._paths = []
        self.result = None
        self.table.setRowCount(0)
        self.table.setVisible(False)
        self.button.setEnabled(False)
        self.status.setText("Shared regions: compared when a batch ends.")

    def find(self, paths: Iterable[Path]) -> Job | None:
        """Compare ``paths`` (the analyzed files) in a job; None when one is running."""
        self._paths = [Path(p) for p in paths]
        if self.is_busy():
            return None
        if len(self._paths) < 2:
            self.status.setText("Shared regions: fewer than two analyzed images to compare.")
            self.button.setEnabled(False)
            return None
        paths = list(self._paths)
        cache = self._features

        def work(ctx: JobContext) -> CaseMatch:
            return _compare(ctx, paths, cache)

        job = Job("shared regions", work)
        job.event.connect(self._on_event)
        generation = self._generation
        job.succeeded.connect(lambda result: self._show(result, generation))
        job.failed.connect(lambda text: self.message.emit(text, "error"))
        job.ended.connect(self._on_ended)
        self._job = job
        self.button.setEnabled(False)
        self.status.setText(f"Shared regions: comparing {len(paths)} images…")
        return self.jobs.start(job)

    @Slot(object)
    def _on_event(self, event: object) -> None:
        if isinstance(event, FeaturesFound):
            self.status.setText(
                f"Shared regions: features {event.done} / {event.total}, then matching…"
            )

    def _show(self, result: CaseMatch, generation: int) -> None:
        if generation != self._generation:
            return
        self.result = result
        rows = [
            (
                r["source"],
                box_text(r["source_box"]),
                r["target"],
                box_text(r["target_box"]),
                str(r["matches"]),
            )
            for r in result.shared_regions
        ]
        rows += [
            (
                d["a"],
                f"same picture ({d['relation']})",
                d["b"],
                "whole image",
                str(d["matches"] or "—"),
            )
            for d in result.duplicates
        ]
        self.table.setRowCount(len(rows))
        for row, values in enumerate(rows):
            for column, value in enumerate(values):
                text = Path(value).name if column in (0, 2) else value
                item = QTableWidgetItem(text)
                item.setToolTip(value)
                self.table.setItem(row, column, item)
        self.table.setVisible(bool(rows))
        found = len(result.shared_regions)
        text = (
            f"Shared regions: {found} pair(s) of images share a region"
            if found
            else "Shared regions: no region found in two images"
        )
        text += f" ({result.n_images} images compared in {result.seconds:.1f} s"
        if result.duplicates:
            text += f"; {len(result.duplicates)} copies of one picture"
        if result.skipped:
            text += f"; {len(result.skipped)} could not be read"
        text += ")."
        if not result.complete:
            text += f" Incomplete: {result.note}."
        self.status.setText(text)

    @Slot()
    def _on_ended(self) -> None:
        cancelled = self._job is not None and self._job.ctx.cancelled()
        self._job = None
        self.button.setEnabled(len(self._paths) >= 2)
        if cancelled:
            self.status.setText("Shared regions: cancelled.")


def _compare(
    ctx: JobContext, paths: list[Path], cache: OrderedDict[_Key, ImageFeatures | str]
) -> CaseMatch:
    """Features of the files not in ``cache`` (in threads), then ``match_features``."""
    t0 = time.monotonic()
    keys = [_key(p) for p in paths]
    todo = [(p, k) for p, k in zip(paths, keys) if k is not None and k not in cache]

    def extract(item: tuple[Path, _Key]) -> tuple[_Key, ImageFeatures | str]:
        path, key = item
        if ctx.cancelled():
            return key, "cancelled"
        try:
            evidence = load_evidence(path)
            return key, image_features(evidence.image, str(path), digest=evidence.sha256)
        except Exception as exc:  # noqa: BLE001 - one unreadable file never stops the rest
            return key, str(exc) or type(exc).__name__

    with ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1))) as pool:
        for done, (key, found) in enumerate(pool.map(extract, todo), start=1):
            if found != "cancelled":
                cache[key] = found
                cache.move_to_end(key)
            ctx.emit(FeaturesFound(done, len(todo)))
    while len(cache) > FEATURE_CACHE:
        cache.popitem(last=False)
    features = [cache[k] for k in keys if k is not None and isinstance(cache.get(k), ImageFeatures)]
    skipped = [
        {"name": str(p), "reason": cache.get(k, "not found")}
        for p, k in zip(paths, keys)
        if k is None or not isinstance(cache.get(k), ImageFeatures)
    ]
    result = match_features(
        features, time_budget_s=default_budget(len(paths)), cancel=ctx.cancelled
    )
    result.skipped = skipped
    result.n_images = len(paths)
    result.seconds = time.monotonic() - t0
    return result
