"""The Training view: the settings form (``form``), the live monitor (``monitor``), the view."""

from app.training.form import TrainingForm
from app.training.monitor import TrainingMonitor
from app.training.view import TrainingView

__all__ = ["TrainingForm", "TrainingMonitor", "TrainingView"]
