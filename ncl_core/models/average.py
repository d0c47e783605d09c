"""One model from several: the weighted average of their weights (a "model soup").

Models fine-tuned from one model stay in that model's basin, and the average of their weights
is often better than each of them, at no cost at analysis time (Wortsman et al., "Model soups",
ICML 2022). Models trained apart, from different starts, are not: their average is noise. So
every model averaged must have the same architecture, and the result says what it was made of.

Every floating-point tensor is averaged, batch-norm statistics included; integer buffers (the
batch-norm step counters) come from the first model. The average keeps no calibration: the
pixel threshold and logit shift of one ingredient would not fit it, so it is calibrated again
(``ncl-forensics calibrate``) before use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ncl_core.errors import ModelFileError
from ncl_core.models.modelfile import ModelInfo, read_model_info

if TYPE_CHECKING:
    from ncl_core.network.model import NCLNet

__all__ = ["average_models", "check_ingredients", "ingredient_weights", "save_average"]


def ingredient_weights(n: int, weights: Sequence[float] | None) -> list[float]:
    """The weights of ``n`` models, summing to 1 (equal when None); a ValueError says what is
    wrong with given ones."""
    if n < 2:
        raise ValueError(f"averaging needs two models or more, got {n}")
    if weights is None:
        return [1.0 / n] * n
    if len(weights) != n:
        raise ValueError(f"{len(weights)} weights for {n} models: give one weight per model")
    if any(not math.isfinite(w) or w < 0 for w in weights):
        raise ValueError("weights must be finite and not negative")
    total = float(sum(weights))
    if total <= 0:
        raise ValueError("the weights must not all be zero")
    return [float(w) / total for w in weights]


def check_ingredients(paths: Sequence[str | Path]) -> list[ModelInfo]:
    """The model files' headers (no torch), refused unless every one has the first one's
    architecture: a ``ModelFileError`` names the file and the settings that differ."""
    infos = [read_model_info(path) for path in paths]
    first = infos[0]
    reference = asdict(first.config)
    for info in infos[1:]:
        differ = sorted(k for k, v in asdict(info.config).items() if reference.get(k) != v)
        if differ:
            raise ModelFileError(
                f"{info.path}: another architecture than {first.path} ({', '.join(differ)} "
                "differ); only models fine-tuned from one model can be averaged"
            )
    return infos


def average_models(
    paths: Sequence[str | Path], weights: Sequence[float] | None = None
) -> tuple[NCLNet, list[ModelInfo], list[float]]:
    """The network whose weights are the weighted average of the models in ``paths`` (float32,
    eval mode), their ``ModelInfo`` and the weights used (summing to 1). The weights and the
    architectures are checked before torch loads."""
    shares = ingredient_weights(len(paths), weights)
    infos = check_ingredients(paths)

    import torch

    from ncl_core.models.modelfile import load_model

    first, _ = load_model(infos[0].path, "cpu")
    summed = {
        key: value.double() * shares[0] if value.is_floating_point() else value.clone()
        for key, value in first.state_dict().items()
    }
    for info, share in zip(infos[1:], shares[1:]):
        model, _ = load_model(info.path, "cpu")
        for key, value in model.state_dict().items():
            if value.is_floating_point():
                summed[key] += value.double() * share
    state = first.state_dict()
    with torch.no_grad():
        first.load_state_dict(
            {key: value.to(state[key].dtype) for key, value in summed.items()}, strict=True
        )
    return first.eval(), infos, shares


def save_average(
    out: str | Path,
    paths: Sequence[str | Path],
    weights: Sequence[float] | None = None,
    *,
    name: str | None = None,
    half: bool = False,
) -> Path:
    """Average the models in ``paths`` and write the result to ``out``: uncalibrated, its
    parent the first model, and ``trained_on["average_of"]`` naming every ingredient (name,
    SHA-256, weight, what it was trained on)."""
    from ncl_core.models.modelfile import save_model

    model, infos, shares = average_models(paths, weights)
    first = infos[0]
    ingredients: list[dict[str, Any]] = [
        {"name": info.name, "sha256": info.sha256, "weight": round(share, 6)}
        | ({"trained_on": info.trained_on} if info.trained_on else {})
        for info, share in zip(infos, shares)
    ]
    return save_model(
        out,
        model,
        name=name or Path(out).stem,
        trained_on={"average_of": ingredients},
        metrics={},
        parent=first.sha256,
        train_config=first.train_config,
        half=half,
    )
