"""How the process shares a small CPU: torch's threads sleep when idle, helper threads yield to
the model, and the objects of start-up stay out of the garbage collector's way.

Measured on a 2-core CPU (docs/BENCHMARKS.md, "Batch report vs analysis"): by default the
OpenMP threads that torch computes with spin after each parallel region, which is about a
quarter of the analysis's CPU time and makes it no faster; a report's drawing thread that takes
a core from one of them stalls the other at the next barrier. With the threads sleeping and
the drawing at the lowest priority, the drawing runs in the time the model leaves idle.

Nothing here imports torch.
"""

from __future__ import annotations

import gc
import os
import sys

OMP_WAIT_POLICY = "OMP_WAIT_POLICY"


def prefer_sleeping_threads() -> bool:
    """Ask OpenMP to let its idle threads sleep (``OMP_WAIT_POLICY=PASSIVE``) rather than spin.

    For analysis and reports, not training: a training step measured 3 to 9 % slower with it.
    It must run before torch is imported (the OpenMP runtime reads it when it loads); a policy
    set in the environment is kept. Returns whether the threads will sleep.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault(OMP_WAIT_POLICY, "PASSIVE")
    return os.environ.get(OMP_WAIT_POLICY, "").upper() == "PASSIVE"


def yield_to_other_threads() -> bool:
    """Lower the calling thread to the lowest scheduling priority, so that it runs when the
    process's other threads (the model's) leave a core idle. Linux only (``SCHED_IDLE``, else
    nice 19); elsewhere nothing changes. Returns whether the priority was lowered.

    A thread cannot raise its priority again without privileges, and on a machine busy with
    other programs it may not run for a long time: give it only work that another thread can
    take over (``ncl_core.report.stream`` draws a row again rather than wait for it).
    """
    if not sys.platform.startswith("linux"):
        return False
    import threading

    tid = threading.get_native_id()
    try:
        os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
        return True
    except (AttributeError, OSError):
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, tid, 19)
        return True
    except OSError:
        return False


def set_aside_long_lived_objects() -> None:
    """Collect the young garbage, then move every object alive now out of the collector's
    sight (``gc.freeze``): a model, its modules and the libraries are hundreds of thousands of
    objects, which every full collection would otherwise walk again (a PDF report's many small
    objects trigger one every few pages). Reference counting still frees them."""
    gc.collect(1)
    gc.freeze()
