"""The main window's menus and their keyboard shortcuts, and the Help menu's texts.

Every entry calls a public method of the window or of one of its views.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMessageBox

from ncl_core import __version__
from ncl_core.settings import DEVICES

if TYPE_CHECKING:
    from app.main_window import MainWindow

SHORTCUTS_HELP = """\
<table cellpadding=3>
<tr><td><b>Ctrl+O</b></td><td>Open an image</td></tr>
<tr><td><b>Ctrl+Shift+O</b></td><td>Add a folder to the batch</td></tr>
<tr><td><b>Ctrl+1 … Ctrl+4</b></td><td>Analysis, Batch, Training, Models</td></tr>
<tr><td><b>F5</b></td><td>Analyze the image again</td></tr>
<tr><td><b>Esc</b></td><td>Cancel the running analysis / batch</td></tr>
<tr><td><b>Space</b></td><td>Overlay on / off (original vs. result)</td></tr>
<tr><td><b>Wheel, Ctrl++ / Ctrl+−</b></td><td>Zoom in / out (log steps)</td></tr>
<tr><td><b>Ctrl+0, double-click</b></td><td>Fit / 100 %</td></tr>
<tr><td><b>+ − 0 1</b> (in the viewer)</td><td>Zoom in, out, fit, 100 %</td></tr>
<tr><td><b>Ctrl+S</b></td><td>Save the overlay</td></tr>
<tr><td><b>Ctrl+Q</b></td><td>Quit</td></tr>
</table>"""


class WindowMenus:
    """File, View, Analysis, Settings and Help, built on ``window``'s menu bar."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.save_actions: list[QAction] = []
        self._build()

    def _action(self, menu, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self.window)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build(self) -> None:
        w = self.window
        bar = w.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(
            file_menu,
            "&Open image…",
            w.open_dialog,
            QKeySequence.StandardKey.Open,
            "Open an image and analyze it",
        )
        self.recent = file_menu.addMenu("Open &recent")
        self._action(
            file_menu,
            "Add &folder to batch…",
            w.add_folder_to_batch,
            "Ctrl+Shift+O",
            "Analyze every file under a folder",
        )
        self._action(
            file_menu, "Open &samples", w.open_samples, None, "Open the bundled sample images"
        )
        file_menu.addSeparator()
        for kind, text, shortcut in (
            ("overlay", "Save &overlay…", QKeySequence.StandardKey.Save),
            ("mask", "Save &mask…", None),
            ("heatmap", "Save &heatmap…", None),
            ("json", "Save analysis as &JSON…", None),
        ):
            self.save_actions.append(
                self._action(
                    file_menu,
                    text,
                    lambda _=False, k=kind: w.analysis.save_dialog(k),
                    shortcut,
                    f"Save the {kind} of the current analysis",
                )
            )
        self._action(
            file_menu,
            "&Export batch report…",
            w.batch.export_dialog,
            "Ctrl+E",
            "Write the forensic report of the batch queue",
        )
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", w.close, QKeySequence.StandardKey.Quit)

        view_menu = bar.addMenu("&View")
        for index, name in enumerate(("&Analysis", "&Batch", "&Training", "&Models")):
            self._action(
                view_menu,
                name,
                lambda _=False, i=index: w.tabs.setCurrentIndex(i),
                f"Ctrl+{index + 1}",
            )
        view_menu.addSeparator()
        analysis = w.analysis
        self._action(view_menu, "Zoom &in", analysis.zoom_in, QKeySequence.StandardKey.ZoomIn)
        self._action(view_menu, "Zoom &out", analysis.zoom_out, QKeySequence.StandardKey.ZoomOut)
        self._action(view_menu, "&Fit to window", analysis.fit, "Ctrl+0")
        self._action(view_menu, "Actual size (100 %)\t1", analysis.actual_size)
        self._action(view_menu, "Toggle &overlay\tSpace", analysis.toggle_overlay)
        side = QAction("&Side by side", w, checkable=True)
        side.setChecked(analysis.side_by_side())
        side.toggled.connect(analysis.set_side_by_side)
        analysis.side_by_side_changed.connect(side.setChecked)
        view_menu.addAction(side)

        analysis_menu = bar.addMenu("&Analysis")
        self._action(
            analysis_menu,
            "&Analyze again",
            w.analysis.reanalyze,
            "F5",
            "Run the model on the current image again",
        )
        self._action(analysis_menu, "&Cancel\tEsc", w.cancel_current)
        self._action(
            analysis_menu,
            "Load &ground-truth mask…",
            w.analysis.choose_ground_truth,
            None,
            "Use a known mask for the contour-patch view",
        )

        settings_menu = bar.addMenu("&Settings")
        device_menu = settings_menu.addMenu("&Device")
        group = QActionGroup(w)
        for name in DEVICES:
            action = QAction(name, w, checkable=True)
            action.setChecked(name == w.models.device)
            action.triggered.connect(lambda _=False, n=name: w.set_device(n))
            group.addAction(action)
            device_menu.addAction(action)

        help_menu = bar.addMenu("&Help")
        self.welcome = self._action(
            help_menu,
            "&Welcome",
            w.welcome.show,
            None,
            "What the overlay means; where files live",
        )
        self._action(help_menu, "&Keyboard shortcuts", self._show_shortcuts, "F1")
        self._action(help_menu, "&About NCL Forensics", self._show_about)
        self.fill_recent(w.settings.recent_files())

    def fill_recent(self, recent: list[str]) -> None:
        """File ▸ Open recent: ``recent``, newest first."""
        self.recent.clear()
        for path in recent:
            action = self.recent.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.window.open_paths([p]))
        self.recent.setEnabled(bool(recent))

    def set_savable(self, savable: bool) -> None:
        """The Save entries work only while the shown result belongs to the shown image."""
        for action in self.save_actions:
            action.setEnabled(savable)

    def _show_shortcuts(self) -> None:
        QMessageBox.information(self.window, "Keyboard shortcuts", SHORTCUTS_HELP)

    def _show_about(self) -> None:
        QMessageBox.about(
            self.window,
            "About NCL Forensics",
            f"<b>NCL Forensics {__version__}</b><p>Image manipulation localization with NCL "
            "(Zhou et al., ICCV 2023), trained without pre-training. Runs locally; inputs are "
            "opened read-only and hashed.</p>",
        )
