"""Multi-process training with ``torch.distributed``: the environment torchrun sets, the
process group, and the few collectives the ``Trainer`` needs.

One process per GPU (NCCL) or per CPU worker (gloo). torchrun sets ``RANK``, ``WORLD_SIZE``
and ``LOCAL_RANK``; without them (or with ``WORLD_SIZE=1``) training is a single process and
nothing here does anything.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

# How long a collective may wait for the other processes (a barrier while rank 0 validates
# included) before the run fails. torch's default for gloo; NCCL's own is shorter.
TIMEOUT_ENV = "NCL_DIST_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands in a run: rank 0 of 1 when not distributed."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> DistEnv:
        environ = os.environ if environ is None else environ
        try:
            world_size = int(environ.get("WORLD_SIZE", "1"))
            rank = int(environ.get("RANK", "0"))
            local_rank = int(environ.get("LOCAL_RANK", str(rank)))
        except ValueError as exc:
            raise ValueError(f"malformed torch.distributed environment: {exc}") from None
        if world_size <= 1:
            return cls()
        if not 0 <= rank < world_size:
            raise ValueError(f"RANK {rank} outside WORLD_SIZE {world_size}")
        return cls(rank, world_size, local_rank)


def timeout() -> timedelta:
    return timedelta(seconds=float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT_S)))


def init_process_group(env: DistEnv, device: torch.device) -> bool:
    """Join the run's process group (NCCL on CUDA, gloo otherwise); True when this call
    created it, so that the caller also destroys it."""
    if not env.active or dist.is_initialized():
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    kwargs = {"device_id": device} if device.type == "cuda" else {}
    dist.init_process_group(backend, timeout=timeout(), **kwargs)
    return True


def destroy_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    if env.active:
        dist.barrier()


def all_reduce_sum(env: DistEnv, values: torch.Tensor) -> torch.Tensor:
    """The sum of ``values`` over all processes (in place); ``values`` as is in one process."""
    if env.active:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def is_peer_failure(exc: BaseException) -> bool:
    """An error a collective raised because another process of the run went away."""
    if isinstance(exc, getattr(dist, "DistError", ())):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(
        marker in text
        for marker in ("Connection closed by peer", "Connection reset by peer", "gloo", "NCCL")
    )
