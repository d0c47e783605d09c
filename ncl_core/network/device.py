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


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 in hardware (AVX512-BF16 or AMX-BF16, Linux flags).

    Elsewhere bf16 is emulated and slower than fp32, so training stays in fp32 there.
    """
    import platform
    from pathlib import Path

    if platform.system() != "Linux":
        return False
    try:
        flags = next(
            line.split(":", 1)[1].split()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("flags")
        )
    except (OSError, StopIteration):
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def amp_dtype(device: torch.device, training: bool = False) -> torch.dtype | None:
    """Mixed-precision dtype for ``device``: bf16 where supported, else fp16 on CUDA.

    On the CPU, None (fp32) for inference; for training, bf16 when the CPU has bf16 units
    (measured at about twice the fp32 step rate, see docs/BENCHMARKS.md), else None.
    """
    if device.type == "cpu":
        return torch.bfloat16 if training and cpu_has_native_bf16() else None
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def describe(device: torch.device) -> str:
    """Human-readable device, e.g. ``cuda:0 (NVIDIA H100)`` or ``cpu``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return device.type
