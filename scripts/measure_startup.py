"""Start-up time of the app: from launching the program to its window shown and usable.

    xvfb-run -s "-screen 0 1400x900x24" .venv/bin/python scripts/measure_startup.py \
        dist/ncl-forensics/ncl-forensics [--runs 5] [--model FILE]

The program runs with ``NCL_REPORT_STARTUP=1``, which makes it print "window shown at <time>"
once its event loop runs with the main window shown (app/gui.py); the time from the launch to
that line is the start-up time. Each run gets temporary user folders: "first run" ones without
settings (the app then opens the samples and the welcome pane), and "returning" ones with a
settings file. ``--model`` registers a model there (else the app starts without one). Results
are for a warm file cache: run it twice and keep the second, or say so. docs/BUNDLE.md has them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MARK = "window shown at "


def _user_dirs(root: Path, returning: bool, model: str | None) -> dict[str, str]:
    env = {var: str(root / sub) for var, sub in (
        ("XDG_DATA_HOME", "data"), ("XDG_CONFIG_HOME", "config"),
        ("XDG_CACHE_HOME", "cache"), ("XDG_STATE_HOME", "state"))}  # fmt: skip
    if returning:
        ini = root / "config" / "ncl-forensics" / "gui.ini"
        ini.parent.mkdir(parents=True, exist_ok=True)
        ini.write_text("[General]\n")
    if model:
        # Register in the same folders, in a child process so this one never imports torch.
        code = (
            "import sys; from ncl_core.models.modelfile import ModelRegistry as R; r = R(); "
            "r.set_default(r.import_model(sys.argv[1]).id)"
        )
        subprocess.run([sys.executable, "-c", code, model], env={**os.environ, **env}, check=True)
    return env


def launch(command: list[str], env: dict[str, str], timeout_s: float = 300) -> float:
    """Seconds from starting ``command`` to its "window shown" line; the program is then ended."""
    full_env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    full_env.update(env, NCL_REPORT_STARTUP="1")
    t0 = time.time()
    proc = subprocess.Popen(
        command, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    watchdog = threading.Timer(timeout_s, proc.kill)  # a hung start ends the line loop below
    watchdog.start()
    try:
        for line in proc.stderr:
            if line.startswith(MARK):
                return float(line[len(MARK) :]) - t0
        raise RuntimeError(f"{command[0]} never reported its window (exit code {proc.poll()})")
    finally:
        watchdog.cancel()
        proc.terminate()
        proc.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("program", nargs="+", help="the command that opens the app")
    parser.add_argument("--runs", type=int, default=5, help="runs per case")
    parser.add_argument("--model", help="model file to register as the default")
    args = parser.parse_args()
    if not os.environ.get("DISPLAY"):
        parser.error("no DISPLAY: run under xvfb-run (see the docstring)")
    for case, returning in (("first run", False), ("returning", True)):
        times = []
        for _ in range(args.runs):
            root = Path(tempfile.mkdtemp(prefix="ncl-startup-"))
            try:
                times.append(launch(args.program, _user_dirs(root, returning, args.model)))
            finally:
                shutil.rmtree(root, ignore_errors=True)
        shown = ", ".join(f"{t:.2f}" for t in times)
        print(f"{case}: median {statistics.median(times):.2f} s (runs: {shown})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
