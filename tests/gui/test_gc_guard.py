"""Garbage is collected on the GUI thread only while a window is open (app/gc_guard.py)."""

from __future__ import annotations

import gc
import threading

from app import gc_guard


def test_a_window_turns_automatic_collection_off_until_it_closes(qtbot, make_window):
    assert gc.isenabled()
    window = make_window(wait_for_model=False)
    assert not gc.isenabled()
    window.close()
    assert gc.isenabled()


def test_the_gui_thread_collects_cycles_that_a_worker_thread_leaves(qtbot):
    collector = gc_guard.GuiThreadCollector(interval_ms=10)
    collector.acquire()
    try:
        freed = threading.Event()

        class Cycle:
            def __init__(self):
                self.me = self

            def __del__(self):
                freed.set()

        kept = []
        seen = {}  # what the worker saw; asserted here (an assert in a thread fails nothing)

        def worker():
            Cycle()
            # Live allocations past the youngest generation's threshold: no collection here.
            kept.extend([] for _ in range(5 * gc.get_threshold()[0]))
            seen["freed in the worker"] = freed.is_set()

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        assert seen == {"freed in the worker": False}
        assert not freed.is_set()
        qtbot.waitUntil(freed.is_set, timeout=5_000)  # the timer on this thread collected it
    finally:
        collector.release()
    assert gc.isenabled()
