"""Device choice: CUDA if present, else MPS, else CPU; overridable by name."""

from __future__ import annotations

import torch

from ncl_core.errors import DeviceError


def pick_device(name: str | None = None) -> torch.device:
    """``None``/``"auto"`` picks the best available; otherwise the named device, checked."""
    if name in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise DeviceError(f"unknown device {name!r}: use auto, cpu, cuda, cuda:N or mps") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            f"device {name!r} requested but no CUDA GPU is available: use --device cpu"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"device {name!r} requested but MPS is not available: use --device cpu")
    return device


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed-precision dtype for ``device``: bf16 where supported, else fp16 on CUDA; None on CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def describe(device: torch.device) -> str:
    """Human-readable device, e.g. ``cuda:0 (NVIDIA H100)`` or ``cpu``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return device.type
