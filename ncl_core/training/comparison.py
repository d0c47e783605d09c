"""What a fine-tune gained, shown on its held-out images: a before/after table and pictures.

At the end of a fine-tune the base model and the kept model are compared on the same held-out
images the run validated on: the table holds the validation figures of both (the base model's
were measured before the first step), and a few held-out images are drawn side by side —
image | ground truth | base model | fine-tuned model — into ``before_after/`` of the run folder.
The maps are the networks' raw probabilities, as validation measures them (no calibration).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ncl_core.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ncl_core.inference.render import heatmap_rgb, save_png
from ncl_core.network.model import NCLNet

PICTURES_DIR = "before_after"
PANEL = 256  # side of each panel of a picture, px
_HEADER = 22  # px of caption above the panels
_CAPTIONS = ("image", "ground truth", "before", "after")


def pick_items(dataset: Dataset, count: int) -> list[int]:
    """Indices of up to ``count`` held-out items to draw, spread over the set: manipulated ones
    first (where a gain shows), and one authentic item when the set has some (where a false
    alarm shows). At most ``4 * count`` items are read to decide."""
    n = len(dataset)
    if n == 0 or count <= 0:
        return []
    tries = min(n, 4 * count)
    order = sorted({int(i * n / tries) for i in range(tries)})
    tampered: list[int] = []
    authentic: list[int] = []
    for index in order:
        if bool(dataset[index]["mask"].any()):
            tampered.append(index)
        else:
            authentic.append(index)
        if len(tampered) >= count - 1 and authentic:
            break
    picked = tampered[: count - 1 if authentic else count] + authentic[:1]
    return sorted(picked)[:count]


@torch.inference_mode()
def draw_before_after(
    base: NCLNet,
    tuned: NCLNet,
    dataset: Dataset,
    out_dir: str | Path,
    count: int = 4,
    device: torch.device | str = "cpu",
) -> list[str]:
    """Draw ``count`` held-out items side by side (image | truth | before | after) into
    ``out_dir``; the paths written, in order."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for k, index in enumerate(pick_items(dataset, count)):
        item = dataset[index]
        image = item["image"][None].to(device)
        maps = []
        for model in (base, tuned):
            model.eval()
            maps.append(torch.sigmoid(model(image).float())[0, 0].cpu().numpy())
        picture = side_by_side(_to_rgb(item["image"]), item["mask"][0].numpy() > 0.5, *maps)
        name = Path(str(item.get("path", f"item{index}"))).stem[:40]
        path = out_dir / f"{k + 1:02d}-{_safe(name)}.png"
        save_png(path, picture, durable=False)
        written.append(str(path))
    return written


def side_by_side(
    image: np.ndarray, truth: np.ndarray, before: np.ndarray, after: np.ndarray
) -> np.ndarray:
    """One RGB picture: four panels of ``PANEL`` px, each under its caption."""
    panels = [
        image,
        np.repeat((truth.astype(np.uint8) * 255)[..., None], 3, axis=2),
        heatmap_rgb(before),
        heatmap_rgb(after),
    ]
    h, w = image.shape[:2]
    scale = PANEL / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    row = []
    for caption, panel in zip(_CAPTIONS, panels):
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST
        resized = cv2.resize(np.ascontiguousarray(panel), size, interpolation=interpolation)
        cell = np.full((_HEADER + size[1] + 4, size[0] + 4, 3), 255, np.uint8)
        cell[_HEADER + 2 : _HEADER + 2 + size[1], 2 : 2 + size[0]] = resized
        cv2.putText(
            cell, caption, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA
        )
        row.append(cell)
    return np.concatenate(row, axis=1)


def _to_rgb(tensor: torch.Tensor) -> np.ndarray:
    """An ImageNet-normalised 3 x H x W tensor back to RGB uint8."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    rgb = (tensor.float().cpu() * std + mean).clamp(0, 1).mul(255).round()
    return rgb.byte().permute(1, 2, 0).numpy()


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "item"
