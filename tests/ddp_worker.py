"""One training process of the multi-process tests, started by torchrun (not a test itself).

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/ddp_worker.py \
        CONFIG_JSON [CANCEL_AT_STEP]
    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/ddp_worker.py \
        --resume RUN_DIR

Trains ``TrainConfig`` read from CONFIG_JSON, or resumes RUN_DIR; with CANCEL_AT_STEP, the
trainer's event listener cancels once that step is reported. Only rank 0 reports events, so
only rank 0 is cancelled: the others must learn it from rank 0.

Dropout is switched off (``no_dropout``), here and in the one-process run the tests compare
with: its draws depend on the shape of the batch each process holds.
"""

import sys
from pathlib import Path

import torch

from ncl_core.training import TrainConfig, Trainer


def no_dropout(self, x):
    return x


def main() -> int:
    torch.set_num_threads(1)
    torch.nn.Dropout.forward = no_dropout
    if sys.argv[1] == "--resume":
        trainer = Trainer.resume(sys.argv[2])
    else:
        config = TrainConfig.from_json(Path(sys.argv[1]).read_text(encoding="utf-8"))
        trainer = Trainer(config)
    if len(sys.argv) > 2 and sys.argv[1] != "--resume":
        cancel_at = int(sys.argv[2])

        def on_event(event):
            if event["type"] == "step" and event["step"] == cancel_at:
                trainer.cancel()

        trainer.on_event = on_event
    trainer.fit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
