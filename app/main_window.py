"""The main window: four views in tabs, status bar, drops, messages, clean close.

The menus are ``app.menus``. The window talks to its views through their public methods and
signals only.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, Slot
from PySide6.QtGui import (
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
)
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import gc_guard
from app.analysis import AnalysisView
from app.batch import BatchView
from app.display import load_overlay_settings
from app.jobs import Job, JobManager
from app.menus import WindowMenus
from app.model_state import ModelState
from app.models_view import ModelsView
from app.resources import sample_images, sample_mask_for
from app.session import Session
from app.settings import Settings
from app.training import TrainingView
from app.welcome import WELCOME_WIDTH, WelcomePane
from app.widgets import MessageBar
from ncl_core.models.modelfile import ModelInfo
from ncl_core.network.device import DeviceError, describe, pick_device

IMAGE_FILTER = (
    "Images (*.jpg *.jpeg *.png *.tif *.tiff *.bmp *.webp *.gif *.heic *.heif *.avif "
    "*.JPG *.JPEG *.PNG *.TIF *.HEIC *.HEIF *.AVIF);;"
    "All files (*)"
)
TAB_ANALYSIS, TAB_BATCH, TAB_TRAINING, TAB_MODELS = range(4)
ANALYSIS_SPLITTER = "window/analysis_splitter"  # the settings key of its saved state


class MainWindow(QMainWindow):
    """Analysis, Batch, Training and Models views over one job manager and one model state."""

    def __init__(self, settings: Settings | None = None) -> None:
        super().__init__()
        # Garbage is collected on this thread only while the window lives (app/gc_guard.py).
        gc_guard.collector().acquire()
        self._gc_released = False
        self.settings = settings or Settings()
        self.setWindowTitle("NCL Forensics")
        self.jobs = JobManager(self)
        self.models = ModelState(self.jobs, self.settings.get("device"), self)
        self._closing = False

        self.message_bar = MessageBar()
        # One session for the window: the display settings, what is shown, the case's evidence.
        self.session = Session(load_overlay_settings(self.settings))
        self.analysis = AnalysisView(self.jobs, self.models, self.settings, session=self.session)
        self.batch = BatchView(self.jobs, self.models, self.settings, self.session)
        self.training = TrainingView(self.jobs, self.settings, self.models)
        self.models_view = ModelsView(self.jobs, self.models, self.session)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        for view, title, tip in (
            (self.analysis, "Analysis", "One image: live overlay, contour patches (Ctrl+1)"),
            (self.batch, "Batch", "Many files and folders, and the batch report (Ctrl+2)"),
            (self.training, "Training", "Fine-tune on your labeled images (Ctrl+3)"),
            (self.models_view, "Models", "The model registry (Ctrl+4)"),
        ):
            index = self.tabs.addTab(view, title)
            self.tabs.setTabToolTip(index, tip)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.message_bar)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self.setAcceptDrops(True)
        self.welcome = WelcomePane(self)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.welcome)
        self.resizeDocks([self.welcome], [WELCOME_WIDTH], Qt.Orientation.Horizontal)
        self.welcome.setVisible(self.settings.first_run)

        self._build_status_bar()
        self.menus = WindowMenus(self)
        self.save_actions = self.menus.save_actions
        self.welcome_action = self.menus.welcome
        self._connect()
        self._restore_window()
        self._update_device_label()
        self.resolve_model()

    # -- construction -------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.pixel_label = QLabel()
        self.pixel_label.setToolTip(
            "Pixel under the cursor: position, colour, tampering probability"
        )
        self.jobs_label = QLabel()
        self.model_label = QLabel("model: loading…")
        self.device_label = QLabel()
        self.device_label.setToolTip("Where the model runs (Settings ▸ Device)")
        for widget in (self.pixel_label, self.jobs_label, self.model_label, self.device_label):
            bar.addPermanentWidget(widget)

    def _connect(self) -> None:
        for view in (self.analysis, self.batch, self.training, self.models_view):
            source = type(view).__name__
            view.message.connect(
                lambda text, level, source=source: self.show_message(text, level, source)
            )
        self.analysis.pixel_info.connect(self.pixel_label.setText)
        self.analysis.savable_changed.connect(self._update_save_actions)
        self._update_save_actions(self.analysis.is_savable())
        self.analysis.opened.connect(self._on_opened)
        self.batch.open_requested.connect(self._open_from_batch)
        self.training.activate_requested.connect(self.models_view.activate)
        self.models_view.activated.connect(self._on_activated)
        self.models_view.removed.connect(self.resolve_model)
        self.models.changed.connect(self._on_models_changed)
        self.models.resolved.connect(self._on_model_resolved)
        self.jobs.changed.connect(self._update_jobs_label)

    def _restore_window(self) -> None:
        geometry = self.settings.raw("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:  # the first run: 1360 x 860, or the screen's room where it has less
            room = self.screen().availableGeometry()
            self.resize(min(1360, room.width()), min(860, room.height()))
        state = self.settings.raw(ANALYSIS_SPLITTER)
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.analysis.restore_splitter_state(state)

    # -- model and device ---------------------------------------------------------------------
    def resolve_model(self) -> Job:
        """Find the active model (the registry's default) and list the registry, in a job."""
        return self.models.resolve()

    @Slot()
    def _on_model_resolved(self) -> None:
        if self.models.info is None and self.models.error:
            self.show_message(
                f"No model: {self.models.error}. Images still open; import or train a model "
                "in the Models / Training views.",
                "warning",
            )

    @Slot(object)
    def _on_activated(self, info: ModelInfo) -> None:
        """A model was made active in the Models view (``ModelState`` already holds it)."""
        self.show_message(f"Active model: {info.name} ({info.id}).", "success")
        self.analysis.reanalyze()

    def set_device(self, name: str) -> None:
        try:
            pick_device(name)
        except DeviceError as exc:
            self.show_message(str(exc), "error")
            return
        self.settings.set("device", name)
        self.models.set_device(name)
        self._update_device_label()

    def _update_device_label(self) -> None:
        device = self.models.loaded_device
        if device is None:
            try:
                device = describe(pick_device(self.models.device))
            except DeviceError as exc:
                device = f"unavailable ({exc})"
        self.device_label.setText(f"device: {device}")

    @Slot()
    def _on_models_changed(self) -> None:
        if self.models.info is not None:
            self.model_label.setText(f"model: {self.models.info.name}")
            self.model_label.setToolTip(f"SHA-256 {self.models.info.sha256}")
        elif not self.models.loading:
            self.model_label.setText("<span style='color:#e07070'>no model</span>")
            self.model_label.setToolTip(self.models.error or "")
        self._update_device_label()

    @Slot()
    def _update_jobs_label(self) -> None:
        names = sorted({job.name for job in self.jobs.running() if job.visible})
        self.jobs_label.setText(("working: " + ", ".join(names)) if names else "")

    # -- opening ------------------------------------------------------------------------------
    def open_folder(self) -> str:
        """Where the Open dialog starts: the folder an image was last opened from through
        it, else the home folder (never the bundled samples' folder nor the working folder)."""
        last = self.settings.get("dirs/open")
        if last and Path(last).is_dir():
            return last
        return str(Path.home())

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open an image", self.open_folder(), IMAGE_FILTER
        )
        if path:
            self.settings.set("dirs/open", str(Path(path).parent))
            self.open_paths([path])

    def open_paths(self, paths: list[str | Path], to_batch: bool = False) -> None:
        """One file opens in the Analysis view; several, or any folder, go to the batch."""
        paths = [Path(p) for p in paths]
        if not paths:
            return
        if len(paths) == 1 and not paths[0].is_dir() and not to_batch:
            self.analysis.open_image(paths[0], ground_truth=sample_mask_for(paths[0]))
            self.tabs.setCurrentIndex(TAB_ANALYSIS)
            return
        self.batch.add_paths(paths)
        self.tabs.setCurrentIndex(TAB_BATCH)

    def add_folder_to_batch(self) -> None:
        """File ▸ Add folder to batch: choose a folder, queue it, show the Batch view."""
        if self.batch.choose_folder():
            self.tabs.setCurrentIndex(TAB_BATCH)

    def open_startup(self, paths: list[str], samples: bool = False) -> None:
        """Command line: the first image in the Analysis view, all of them in the batch.

        With nothing named, ``samples`` (``--samples``, as ``make run`` starts) and the first
        run show the first bundled sample in the Analysis view. The samples are queued in
        the Batch view only when the analyst adds them (File ▸ Open samples,
        ``open_samples``), never on their own, and never go into a report.
        """
        if not paths and (samples or self.settings.first_run):
            found = sample_images()
            if not found:
                self.show_message("No bundled samples found under resources/samples.", "warning")
                return
            self.open_paths([found[0]])
            return
        self._open_named(paths)

    def _open_named(self, paths: list[str | Path]) -> None:
        """The first file in the Analysis view; several, or a folder, in the batch too."""
        if not paths:
            return
        files = [Path(p) for p in paths]
        first = next((p for p in files if p.is_file()), None)
        if len(files) > 1 or first is None:
            self.batch.add_paths(files)
        if first is not None:
            self.open_paths([first])
        else:
            self.tabs.setCurrentIndex(TAB_BATCH)

    def open_samples(self) -> None:
        """File ▸ Open samples: all of them in the Batch view, the first in the Analysis view."""
        found = sample_images()
        if not found:
            self.show_message("No bundled samples found under resources/samples.", "warning")
            return
        self._open_named(found)

    @Slot(str, object)
    def _open_from_batch(self, path: str, analysis) -> None:
        self.analysis.open_image(path, analysis, ground_truth=sample_mask_for(Path(path)))
        self.tabs.setCurrentIndex(TAB_ANALYSIS)

    @Slot(bool)
    def _update_save_actions(self, savable: bool) -> None:
        self.menus.set_savable(savable)

    @Slot(str)
    def _on_opened(self, path: str) -> None:
        self.menus.fill_recent(self.settings.add_recent_file(path))
        self.setWindowTitle(f"{Path(path).name} — NCL Forensics")

    def cancel_current(self) -> None:
        if self.tabs.currentIndex() == TAB_BATCH:
            self.batch.cancel()
        elif self.tabs.currentIndex() == TAB_TRAINING:
            self.training.cancel()
        else:
            self.analysis.cancel()

    # -- drops --------------------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if urls and all(url.isLocalFile() for url in urls):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        event.acceptProposedAction()
        self.open_paths(paths, to_batch=self.tabs.currentIndex() == TAB_BATCH)

    # -- messages -----------------------------------------------------------------------------
    def show_message(self, text: str, level: str = "info", source: str = "window") -> None:
        """Info goes to the status bar; warnings and errors also to the bar atop the window.

        ``success`` is an info saying that something ``source`` had failed at now worked: it
        replaces that source's warning or error in the bar, which would be stale otherwise.
        """
        bar = self.message_bar
        if level == "success":
            if bar.isVisible() and bar.level in ("warning", "error") and bar.source == source:
                bar.show_message(text, "info", source)
        elif level != "info":
            bar.show_message(text, level, source)
        self.statusBar().showMessage(text.split("\n")[0], 10_000)

    # -- closing ------------------------------------------------------------------------------
    def confirm(self, text: str) -> bool:
        """Ask a yes/no question (tests replace this)."""
        answer = QMessageBox.question(self, "NCL Forensics", text)
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QCloseEvent) -> None:
        if self._closing:
            event.accept()
            return
        running = [job for job in self.jobs.running() if job.visible]
        if running:
            names = ", ".join(sorted({job.name for job in running}))
            if not self.confirm(f"Still working ({names}). Cancel the work and quit?"):
                event.ignore()
                return
        self._closing = True
        self.jobs.shutting_down = True
        self.jobs.cancel_all()
        self.show_message("Stopping the running work…", "info")
        self._wait_for_jobs()
        self._save_window()
        if not self._gc_released:  # no worker runs now: collection may go back to any thread
            self._gc_released = True
            gc_guard.collector().release()
        event.accept()

    def _wait_for_jobs(self) -> None:
        """Wait for every worker thread, keeping the window painted meanwhile."""
        while self.jobs.running():
            for job in self.jobs.running():
                job.wait(0.05)
            QApplication.processEvents()
            time.sleep(0.001)

    def _save_window(self) -> None:
        self.analysis.store_settings()
        self.settings.set_raw("window/geometry", self.saveGeometry())
        self.settings.set_raw(ANALYSIS_SPLITTER, self.analysis.splitter_state())
        self.settings.sync()
