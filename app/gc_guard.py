"""Python's garbage collection on the GUI thread only, while a window is open.

Python collects reference cycles in whichever thread happens to cross an allocation threshold.
When that is a worker thread and the garbage holds Qt objects (a closed dialog, a menu),
Shiboken hands their C++ deletion to the GUI thread. The GUI thread then deletes them while
holding the GIL and waits for a Qt lock that the worker holds in the middle of emitting a
signal, while the worker waits for the GIL: both stop for good. So, with a window open,
automatic collection is off and a timer on the GUI thread collects instead, by the same
thresholds; closing the last window collects once more and switches automatic collection back on.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer


class GuiThreadCollector(QObject):
    """Runs ``gc.collect`` from the GUI thread's event loop, generation by generation."""

    def __init__(self, interval_ms: int = 250, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thresholds = gc.get_threshold()
        self._users = 0
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.collect_due)

    def acquire(self) -> None:
        self._users += 1
        if self._users == 1:
            gc.disable()
            self._timer.start()

    def release(self) -> None:
        self._users = max(0, self._users - 1)
        if self._users == 0:
            self._timer.stop()
            gc.collect()  # the window's own garbage, here on the GUI thread
            gc.enable()

    def collect_due(self) -> None:
        """What automatic collection would have done by now (the youngest generation first)."""
        counts = gc.get_count()
        generation = -1
        for index, (count, threshold) in enumerate(zip(counts, self._thresholds)):
            if count <= threshold:
                break
            generation = index
        if generation >= 0:
            gc.collect(generation)


_collector: GuiThreadCollector | None = None


def collector() -> GuiThreadCollector:
    """The process's one collector (created on the GUI thread by the first window)."""
    global _collector
    if _collector is None:
        _collector = GuiThreadCollector()
    return _collector
