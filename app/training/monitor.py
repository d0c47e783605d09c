"""The Training view's live monitor: loss curves, validation metrics, learning rate, the log.

Curves are updated with ``setData`` on existing pyqtgraph items, at most every
``PLOT_INTERVAL_MS``, so a fast run cannot flood the GUI thread.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QLabel,
    QPlainTextEdit,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.training.comparison import BeforeAfterPanel
from ncl_core.training.events import MAIN_LOSSES

PLOT_INTERVAL_MS = 150
SMOOTHING = 0.9  # EMA weight of the smoothed loss curves (as TensorBoard's slider)
# Known loss parts get fixed colours; any other part a model returns gets the next one.
LOSS_COLORS = {"total": (240, 240, 240), "ncl": (255, 150, 40), "pc": (80, 170, 255)}
EXTRA_COLORS = [(180, 120, 255), (120, 220, 120), (255, 110, 160), (200, 200, 90)]
VAL_LABELS = {"f1": "F1 at 0.5", "auc": "pixel AUC", "floor_f1": "floor (all manipulated)"}
IDLE_TEXT = "No training yet."


class _Series:
    """One loss part: raw values per step and their bias-corrected EMA."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.raw: list[float] = []
        self.smooth: list[float] = []
        self._ema = 0.0
        self._n = 0

    def add(self, step: int, value: float) -> None:
        self.steps.append(step)
        self.raw.append(value)
        if math.isfinite(value):
            self._n += 1
            self._ema = SMOOTHING * self._ema + (1 - SMOOTHING) * value
        self.smooth.append(self._ema / (1 - SMOOTHING**self._n) if self._n else float("nan"))


class TrainingMonitor(QWidget):
    """Loss curves (raw + smoothed) per step, validation F1/AUC and the all-manipulated floor,
    lr, speed, log. The legends sit in rows of their own, above their plots, never over the
    curves."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        pg.setConfigOptions(antialias=True)
        self.plots = pg.GraphicsLayoutWidget()
        self.loss_legend = pg.LegendItem(colCount=6)
        self.plots.addItem(self.loss_legend, row=0, col=0, colspan=2)
        self.loss_plot = self.plots.addPlot(row=1, col=0, colspan=2, title="Loss per step")
        self.loss_plot.showGrid(x=True, y=True, alpha=0.2)
        self.loss_plot.setLabel("bottom", "step")
        self.val_legend = pg.LegendItem(colCount=3)
        self.plots.addItem(self.val_legend, row=2, col=0)
        self.val_plot = self.plots.addPlot(row=3, col=0, title="Validation (held-out images)")
        self.val_plot.showGrid(x=True, y=True, alpha=0.2)
        self.val_plot.setLabel("bottom", "step")
        self.val_plot.setYRange(0, 1)
        self.lr_plot = self.plots.addPlot(row=3, col=1, title="Learning rate")
        self.lr_plot.showGrid(x=True, y=True, alpha=0.2)
        self.lr_plot.setLabel("bottom", "step")
        self.plots.ci.layout.setRowStretchFactor(1, 3)
        self.plots.ci.layout.setRowStretchFactor(3, 2)
        self.lr_curve = self.lr_plot.plot(pen=pg.mkPen((200, 200, 120), width=2))
        self.val_curves = {
            "f1": self.val_plot.plot(
                pen=pg.mkPen((90, 200, 120), width=2), symbol="o", symbolSize=7
            ),
            "auc": self.val_plot.plot(
                pen=pg.mkPen((200, 120, 255), width=2), symbol="s", symbolSize=7
            ),
            # Marking every pixel manipulated scores this F1: a model at or below it has not
            # learned to localise (README, "Judging a model").
            "floor_f1": self.val_plot.plot(
                pen=pg.mkPen((170, 170, 170), width=2, style=Qt.PenStyle.DashLine)
            ),
        }
        for key, label in VAL_LABELS.items():
            self.val_legend.addItem(self.val_curves[key], label)
        self.raw_curves: dict[str, pg.PlotDataItem] = {}
        self.smooth_curves: dict[str, pg.PlotDataItem] = {}

        self.stats = QLabel(IDLE_TEXT)
        self.stats.setWordWrap(True)
        self.stats.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log.setFont(QFont("monospace", 9))
        self.splitter = splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.plots)
        # The log, and at the end of a fine-tune what it gained, share the lower pane.
        self.comparison = BeforeAfterPanel()
        self.lower = QTabWidget()
        self.lower.addTab(self.log, "Log")
        self.lower.addTab(self.comparison, "Before / after")
        splitter.addWidget(self.lower)
        splitter.setSizes([600, 160])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stats)
        layout.addWidget(splitter, 1)

        self._timer = QTimer(self)
        self._timer.setInterval(PLOT_INTERVAL_MS)
        self._timer.timeout.connect(self.redraw)
        self.reset()

    def reset(self) -> None:
        self.series: dict[str, _Series] = {}
        self.lr_steps: list[int] = []
        self.lr_values: list[float] = []
        self.val_steps: list[int] = []
        self.val_values: dict[str, list[float]] = {key: [] for key in VAL_LABELS}
        self.log.clear()
        self.comparison.clear()
        self.lower.setCurrentWidget(self.log)
        self._dirty = True
        self.redraw()

    def _curves_for(self, name: str) -> None:
        if name in self.raw_curves:
            return
        color = LOSS_COLORS.get(name) or EXTRA_COLORS[len(self.raw_curves) % len(EXTRA_COLORS)]
        faded = pg.mkColor(color)
        faded.setAlpha(70)
        raw = self.loss_plot.plot(pen=pg.mkPen(faded, width=1))
        smooth = self.loss_plot.plot(pen=pg.mkPen(color, width=2))
        self.loss_legend.addItem(smooth, name)
        # Clicking a legend entry hides the smoothed curve; its raw curve follows.
        smooth.visibleChanged.connect(lambda: raw.setVisible(smooth.isVisible()))
        # The parts the status line names are shown at first; the others (per-term,
        # per-stage) start hidden: click their legend entry.
        if name not in MAIN_LOSSES:
            smooth.setVisible(False)
        self.raw_curves[name], self.smooth_curves[name] = raw, smooth

    def add_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "step":
            for name, value in event.get("losses", {}).items():
                self.series.setdefault(name, _Series()).add(int(event["step"]), float(value))
            self.lr_steps.append(int(event["step"]))
            self.lr_values.append(float(event.get("lr", float("nan"))))
            self._dirty = True
        elif kind == "validation":
            metrics = event.get("metrics", {})
            self.val_steps.append(int(event.get("step", 0)))
            for key in self.val_values:
                self.val_values[key].append(float(metrics.get(key, float("nan"))))
            self._dirty = True
        elif kind == "comparison":
            self.comparison.show_comparison(event)
            self.lower.setCurrentWidget(self.comparison)
            total = sum(self.splitter.sizes())
            if self.splitter.sizes()[1] < 0.4 * total:  # room for the pictures
                self.splitter.setSizes([int(0.58 * total), total - int(0.58 * total)])
        if not self._timer.isActive():
            self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        self.redraw()

    @Slot()
    def redraw(self) -> None:
        """Push the collected points into the existing curves (setData, no new items)."""
        if not self._dirty:
            return
        self._dirty = False
        for name, series in self.series.items():
            self._curves_for(name)
            steps = np.asarray(series.steps, dtype=float)
            self.raw_curves[name].setData(steps, np.asarray(series.raw, dtype=float))
            self.smooth_curves[name].setData(steps, np.asarray(series.smooth, dtype=float))
        for name in self.raw_curves:
            if name not in self.series:
                self.raw_curves[name].setData([], [])
                self.smooth_curves[name].setData([], [])
        self.lr_curve.setData(np.asarray(self.lr_steps, float), np.asarray(self.lr_values, float))
        steps = np.asarray(self.val_steps, dtype=float)
        for key, curve in self.val_curves.items():
            curve.setData(steps, np.asarray(self.val_values[key], dtype=float))

    def point_counts(self) -> dict[str, int]:
        """How many points each loss curve shows (tests read it)."""
        counts = {}
        for name, curve in self.smooth_curves.items():
            xs = curve.getData()[0]
            counts[name] = 0 if xs is None else len(xs)
        return counts

    def append_log(self, text: str) -> None:
        self.log.appendPlainText(text)

    def starting(self, title: str) -> None:
        """A run was asked for: said at once, before the data is read and the first step."""
        self.reset()
        self.append_log(title)
        self.show_status(f"{title}: starting (reading the data, building the model)…", {})

    def started(self, event: dict[str, Any]) -> None:
        """The trainer's ``start`` event: what runs, until the first step reports."""
        self.show_status(
            f"Training on {event.get('device', '?')}: {event.get('n_train', '?')} training / "
            f"{event.get('n_val', '?')} validation items, {event.get('total_steps', '?')} steps; "
            "waiting for the first step…",
            {},
        )

    def show_status(self, text: str, losses: dict[str, float]) -> None:
        """The status line above the plots; every loss part in its tooltip."""
        self.stats.setToolTip("\n".join(f"{k}: {v:.5f}" for k, v in losses.items()))
        self.stats.setText(text)
