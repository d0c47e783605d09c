"""``python -m ncl_core.training [train|finetune] FLAGS``: the flags of ``ncl-forensics train``
(or ``finetune``), for torchrun to start once per process::

    torchrun --nproc-per-node 4 -m ncl_core.training --data DIR --batch-size 8

(``ncl-forensics train --nproc N`` starts it so on one machine: README, "Training on several
GPUs or machines".)
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from ncl_core.cli import main as cli_main

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = [a for a in argv if a == "--debug"]
    rest = [a for a in argv if a != "--debug"]
    if not rest or rest[0] not in ("train", "finetune"):
        rest = ["train", *rest]
    return cli_main([*debug, *rest])


if __name__ == "__main__":
    sys.exit(main())
