"""Process-group handling for multi-GPU (or multi-process CPU) training.

Launched by ``torchrun --nproc_per_node N -m hwgen.cli train ...`` (or the
``hwgen`` script), each process reads ``RANK``, ``LOCAL_RANK`` and
``WORLD_SIZE`` from the environment. Backend: NCCL on CUDA, gloo on CPU.
Without those variables training runs as a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from hwgen.errors import ConfigError


@dataclass(frozen=True)
class DistContext:
    """Who this process is: ``rank`` of ``world_size``, and the device it trains on."""

    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N``; ConfigError when CUDA is asked for but absent."""
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name} was requested but PyTorch sees no CUDA device")
        return torch.device(name if ":" in name else f"cuda:{local_rank}")
    raise ConfigError(f"device must be cpu, cuda or cuda:N, not {name!r}")


def init_distributed(device_name: str) -> DistContext:
    """Join the process group when launched by torchrun; otherwise a 1-process context."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_name, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank=rank, world_size=world_size, device=device)


def all_reduce_sum(values: list[float], ctx: DistContext) -> list[float]:
    """Element-wise sum of ``values`` over all processes (identity on one process)."""
    if not ctx.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def barrier(ctx: DistContext) -> None:
    """Wait until every process gets here (nothing on one process). Called once training is done, before
    :func:`shutdown`, so that no rank tears the group down while another still saves or evaluates (gloo
    then aborts the late rank at exit: "terminate called without an active exception")."""
    if ctx.distributed and dist.is_initialized():
        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    """Leave the process group (nothing on one process)."""
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()
