"""Jobs report typed events: the receiver gets the emitter's event objects, in order."""

from __future__ import annotations

import dataclasses

import pytest


def test_a_job_delivers_its_typed_events_in_order_on_the_gui_thread(qtbot):
    from PySide6.QtCore import QThread

    from app.jobs import Job, JobManager, Progress, Stage, Warned

    received: list = []
    threads: list = []

    def work(ctx):
        ctx.emit(Stage("Reading…"))
        for fraction in (0.5, 1.0):
            ctx.emit(Progress(fraction))
        ctx.emit(Warned("odd file"))
        ctx.emit({"type": "row", "index": 1})  # an ncl_core event, passed on as it came
        return 42

    jobs = JobManager()
    job = Job("typed", work)
    job.event.connect(
        lambda event: (received.append(event), threads.append(QThread.currentThread()))
    )
    results: list = []
    job.succeeded.connect(results.append)
    with qtbot.waitSignal(job.ended, timeout=10_000):
        jobs.start(job)
    assert received == [
        Stage("Reading…"),
        Progress(0.5),
        Progress(1.0),
        Warned("odd file"),
        {"type": "row", "index": 1},
    ]
    assert results == [42]
    assert all(thread is QThread.currentThread() for thread in threads)


def test_events_are_frozen():
    from app.jobs import Stage

    with pytest.raises(dataclasses.FrozenInstanceError):
        Stage("a").text = "b"  # type: ignore[misc]
