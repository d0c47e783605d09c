"""The Training view: the settings form (``form``), the live monitor (``monitor``), the view."""

from app.training.form import DEVICES, TrainingForm
from app.training.monitor import TrainingMonitor
from app.training.view import TrainingView

__all__ = ["DEVICES", "TrainingForm", "TrainingMonitor", "TrainingView"]
