"""The Analysis view, in parts: ``state`` (overlay settings, the shown image and result, the
analysis job), ``panel`` (the side panel), ``layers`` (the overlay layers, drawn off the GUI
thread), ``saving`` (the Save actions) and ``view`` (the widget that composes them)."""

from app.analysis.state import AnalysisState
from app.analysis.view import AnalysisView

__all__ = ["AnalysisState", "AnalysisView"]
