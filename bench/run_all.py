"""Run every CPU benchmark in turn (`make bench`) and print their Markdown tables.

Each benchmark is its own script with its own options (see its docstring); this runs them with
settings that finish in tens of minutes on a 2-core CPU. Figures: docs/BENCHMARKS.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RUNS = [
    ["bench_model.py", "--repeats", "3"],
    ["bench_train.py", "--size", "256", "--batch-size", "2", "--steps", "2"],
    ["bench_infer.py", "many", "--count", "20"],
    ["bench_infer.py", "tiled", "--sizes", "1", "12", "48"],
    ["bench_dataload.py"],
    ["bench_batch.py", "--n", "200", "--size", "1024"],
    ["bench_gui_responsiveness.py"],
]


def main() -> int:
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    failed = 0
    for args in RUNS:
        print(f"\n## {' '.join(args)}\n", flush=True)
        result = subprocess.run([sys.executable, str(BENCH / args[0]), *args[1:]], env=env)
        failed += result.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
