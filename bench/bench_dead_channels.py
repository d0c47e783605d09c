"""Dead decoder channels of models, on real images: how much of the narrow stages still works.

    .venv/bin/python bench/bench_dead_channels.py --images DIR [DIR ...] --models M1 [M2 ...]
        [--n 16] [--size 256]

For each model: per narrow stage (ncl_core/training/revive.py), the channels that never fire on
the images (resized to SIZE, as resize mode sees them), and how many of the ``stage4``
channels that the final head weighs positively still fire. With none, the final logit cannot
rise above the head's bias: the map saturates there, and so does the image score.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ncl_core.data.datasets import scan_dataset  # noqa: E402
from ncl_core.data.io import read_image  # noqa: E402
from ncl_core.data.transforms import resize_image, to_tensor  # noqa: E402
from ncl_core.models.modelfile import load_model  # noqa: E402
from ncl_core.training.revive import DEAD_FRACTION, active_fractions  # noqa: E402


def probe(folders: list[str], n: int, size: int) -> torch.Tensor:
    """``n`` images spread evenly over the folders' images, resized to ``size``."""
    paths = [s.image for folder in folders for s in scan_dataset(folder).samples]
    if not paths:
        raise SystemExit("no images found in " + ", ".join(folders))
    step = max(1, len(paths) // n)
    chosen = paths[::step][:n]
    return torch.stack([to_tensor(resize_image(read_image(p)[0], size, size)) for p in chosen])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", nargs="+", required=True)
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(1)
    images = probe(args.images, args.n, args.size)
    print(f"{len(images)} images at {args.size} px; dead: active on at most {DEAD_FRACTION:.1%}")
    for path in args.models:
        model, _ = load_model(path, "cpu")
        model.eval()
        active = active_fractions(model, images)
        dead = {name: int((frac <= DEAD_FRACTION).sum()) for name, frac in active.items()}
        weights = model.head4.weight[0, :, 0, 0].detach()
        positive = weights > 0
        alive_positive = int((positive & (active["stage4"] > DEAD_FRACTION)).sum())
        stages = ", ".join(f"{name} {d}/{len(active[name])}" for name, d in dead.items())
        print(
            f"{path}: dead {stages}; stage4 channels weighed positively by the head "
            f"that fire: {alive_positive} of {int(positive.sum())}; head bias "
            f"{float(model.head4.bias.detach()):+.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
