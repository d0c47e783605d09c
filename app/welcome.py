"""The welcome pane of the first run: what the overlay means, batches, fine-tuning, and where
models, runs, reports and settings are kept. Closed with its ✕, reopened from Help ▸ Welcome."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QTextBrowser, QWidget

from app.settings import settings_path
from ncl_core.paths import models_dir, runs_dir, user_log_dir

WELCOME_WIDTH = 360  # px: wide enough for the text, narrow enough to leave the image its room


def _path(path) -> str:
    """A folder on a line of its own, so that it does not break where the pane wraps."""
    return f"<br><code>&nbsp;&nbsp;{escape(str(path))}</code>"


def welcome_html() -> str:
    """The pane's text, with this machine's real folders."""
    return f"""
<h3>Welcome to NCL Forensics</h3>
<p>The first run shows one of the bundled sample images; <i>File ▸ Open samples</i> lists all
four in the Batch view: three made-up forgeries, with their true masks, and one untouched photo.
Samples are demo files: they never go into a report. Every image is opened read-only and
hashed.</p>

<h4>Reading the overlay</h4>
<p>The colours are a <b>probability map</b>: for each pixel, how strongly the model thinks it
was manipulated (dark: low, bright: high). Pixels at or above the <b>threshold</b> form the
mask and the tampered area; the <b>score</b> summarises the whole image.</p>
<p><b>Scores are indications for review, not proof.</b> A high score asks for a closer look at
the marked region; a low score does not clear an image. The model knows only the kinds of
manipulation it was trained on, and recompression or resizing can hide traces.</p>
<p><b>Combined evidence</b>, under the model's finding, weighs the model's map with classic cues
(error levels, double JPEG compression, texture, copied regions): it finds far more real
forgeries than the model alone, and calls about one authentic photo in ten manipulated. Its map
is under <i>Forensic views ▸ Show</i>.</p>

<h4>Many files</h4>
<p>Drop a folder or several files on the window, or use <i>File ▸ Add folder to batch</i>
(Ctrl+Shift+O). The <b>Batch</b> view analyzes everything; <i>File ▸ Export batch report</i>
(Ctrl+E) writes HTML, CSV, JSONL and PDF with every file's SHA-256.</p>

<h4>Your own images</h4>
<p>The <b>Training</b> view fine-tunes the active model on labeled images (e.g. folders
<code>images/</code> + <code>masks/</code>, white = tampered) and plots the losses as it learns;
the <b>Models</b> view lists every model with its provenance and metrics, and activates one.</p>

<h4>Where things are kept</h4>
<p>Your models: {_path(models_dir())}<br>
Training runs: {_path(runs_dir())}<br>
Reports: the folder you choose when exporting (never inside an evidence folder)<br>
Settings: {_path(settings_path())}<br>
Log: {_path(user_log_dir())}</p>

<p><i>Close this pane with ✕; <b>Help ▸ Welcome</b> opens it again.</i></p>
"""


class WelcomePane(QDockWidget):
    """A closable dock holding the welcome text."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Welcome", parent)
        self.setObjectName("welcome_pane")
        self.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.setAllowedAreas(Qt.DockWidgetArea.LeftDockWidgetArea)
        self.text = QTextBrowser()
        self.text.setOpenLinks(False)
        self.text.document().setDocumentMargin(10)
        self.text.setHtml(welcome_html())
        self.setWidget(self.text)
        self.setMinimumWidth(260)
