"""The Batch view, in parts: ``table`` (the queue's rows), ``report`` (the export dialog and
the report job) and ``view`` (the widget)."""

from app.batch.view import BatchView

__all__ = ["BatchView"]
