"""Does an encoder see manipulation? A linear probe on its features, fitted on one labeled set
and read on another.

    .venv/bin/python bench/bench_encoder_probe.py --train YARD/nist16-A --test YARD/nist16-B \
        --encoders ENCODER.safetensors MODEL.safetensors random [--size 256]

Each image is resized to ``--size`` (as resize-mode inference does). The encoder's ASPP output
(stride 16) and its ``layer1`` features averaged to the same grid give one feature vector per
16 px cell. A cell is manipulated when at least half of its pixels are, authentic when none
is; cells in between are left out. A logistic regression (standardised features, classes
weighed equally, L2, fitted with L-BFGS) learns on the ``--train`` cells and scores the
``--test`` cells: the AUC over all test cells, and the median per-image AUC over the test
images that have both kinds of cell, with a 95 % bootstrap interval (over test images) of its
difference from the first encoder listed. Nothing in the encoders is trained here.

``--encoders`` takes encoder files (``ncl-forensics pretrain``), model files (their encoder is
used) and ``random``: an untrained network (ResNet-18, output stride 16, seed 0), the floor
an encoder's features must rise above (``random-noise-stem``: the same with the noise stem).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ncl_core.data.datasets import scan_dataset  # noqa: E402
from ncl_core.data.transforms import to_tensor  # noqa: E402
from ncl_core.evaluation.evaluate import read_pair  # noqa: E402
from ncl_core.evaluation.metrics import pixel_metrics  # noqa: E402
from ncl_core.network.model import NCLNet  # noqa: E402
from ncl_core.network.net_config import ModelConfig  # noqa: E402

CELL = 16


def load_encoder(spec: str) -> NCLNet:
    if spec in ("random", "random-noise-stem"):
        torch.manual_seed(0)
        noise = spec == "random-noise-stem"
        return NCLNet(ModelConfig(backbone="resnet18", output_stride=16, noise_stem=noise))
    from ncl_core.models.modelfile import ENCODER_FORMAT, load_model, safetensors_metadata

    if safetensors_metadata(spec).get("format") == ENCODER_FORMAT:
        from ncl_core.training.pretrain import network_from_encoder

        return network_from_encoder(spec, ModelConfig(backbone="resnet18", output_stride=16), 0)
    return load_model(spec)[0]


@torch.no_grad()
def cells(net: NCLNet, root: str, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per image: features ``[cells, C]`` and labels (1, 0, or -1 for mixed cells)."""
    net.eval().float()
    out = []
    for sample in scan_dataset(root).samples:
        image, truth = read_pair(sample)
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        truth = cv2.resize(truth.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
        low, aspp = net.encode(to_tensor(image)[None])
        grid = aspp.shape[-2:]
        low = torch.nn.functional.adaptive_avg_pool2d(low, grid)
        feats = torch.cat([low, aspp], dim=1)[0].flatten(1).T.numpy()
        share = cv2.resize(truth, grid[::-1], interpolation=cv2.INTER_AREA).reshape(-1)
        labels = np.where(share >= 0.5, 1, np.where(share <= 0.0, 0, -1))
        out.append((feats, labels))
    return out


def fit_probe(x: np.ndarray, y: np.ndarray, l2: float = 1e-3) -> tuple[np.ndarray, ...]:
    mean, std = x.mean(0), x.std(0) + 1e-6
    xt = torch.as_tensor((x - mean) / std, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.float32)
    weight = torch.where(yt > 0, 0.5 / yt.mean(), 0.5 / (1 - yt.mean()))
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logits = xt @ w + b
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, yt, weight=weight)
        loss = loss + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return mean, std, w.detach().numpy(), b.detach().numpy()


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """The project's exact AUC (ties averaged); NaN without both kinds of cell."""
    return pixel_metrics(scores, labels).auc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--encoders", nargs="+", required=True)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--json", help="write the per-image AUCs here")
    args = parser.parse_args()
    print(
        "| encoder | cells (train / test) | test AUC, all cells | median per-image AUC (images) "
        "| mean per-image AUC, against the first [95 %] |"
    )
    print("|---|---|---:|---|---|")
    found: dict[str, list[float]] = {}
    for spec in args.encoders:
        start = time.time()
        net = load_encoder(spec)
        train, test = cells(net, args.train, args.size), cells(net, args.test, args.size)
        x = np.concatenate([f for f, _ in train])
        y = np.concatenate([lab for _, lab in train])
        keep = y >= 0
        mean, std, w, b = fit_probe(x[keep], y[keep])
        scored = [(((f - mean) / std) @ w + b, lab) for f, lab in test]
        s_all = np.concatenate([s[lab >= 0] for s, lab in scored])
        y_all = np.concatenate([lab[lab >= 0] for _, lab in scored])
        per_image = [auc(s[lab >= 0], lab[lab >= 0]) for s, lab in scored]
        found[spec] = per_image  # NaN where an image lacks one kind of cell
        valid = [a for a in per_image if a == a]
        print(
            f"| {_label(spec)} | {int(keep.sum())} / {len(y_all)} | {auc(s_all, y_all):.3f} "
            f"| {statistics.median(valid):.3f} ({len(valid)}) | {_against(found, spec)} |",
            flush=True,
        )
        print(f"  ({time.time() - start:.0f} s)", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(found), encoding="utf-8")


def _label(spec: str) -> str:
    """``random``, or a file with its folder (encoders are often all ``encoder.safetensors``)."""
    path = Path(spec)
    return spec if spec.startswith("random") else f"{path.parent.name}/{path.name}"


def _against(found: dict[str, list[float]], spec: str, rounds: int = 2000) -> str:
    """Mean per-image AUC, and its difference from the first encoder's with a paired
    bootstrap interval over the images both score."""
    first = next(iter(found))
    ours = np.array(found[spec])
    both = ~np.isnan(ours) & ~np.isnan(np.array(found[first]))
    mean = float(np.nanmean(ours))
    if spec == first:
        return f"{mean:.3f}"
    diff = ours[both] - np.array(found[first])[both]
    rng = np.random.default_rng(0)
    draws = rng.integers(0, len(diff), (rounds, len(diff)))
    low, high = np.percentile(diff[draws].mean(axis=1), [2.5, 97.5])
    return f"{mean:.3f}, {diff.mean():+.3f} [{low:+.3f}, {high:+.3f}]"


if __name__ == "__main__":
    main()
