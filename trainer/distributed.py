"""The trainer's distributed environment: torchrun's variables in, a process group out.

Queue gathering itself lives in ``cots_core.distributed``; this module only starts and ends the
process group and says who may write files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from cots_core.devices import select_device


@dataclass
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup_distributed(device: str = "auto") -> DistEnv:
    """Join the process group when started by torchrun (WORLD_SIZE > 1): NCCL on CUDA, gloo on CPU."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    # training keeps off Apple's MPS unless asked for by name
    target = select_device(device, local_rank, allow_mps=False)
    if target.type == "cuda":
        torch.cuda.set_device(target)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if target.type == "cuda" else "gloo")
    return DistEnv(rank, world_size, local_rank, target)


def rank_seed(seed: int, rank: int) -> int:
    """The seed of one rank's random streams (word and patch masks, dropout): distinct per rank, and apart
    from ``seed`` itself, which builds the model (identical initial weights on every rank)."""
    return int(np.random.SeedSequence([seed, rank]).generate_state(1, dtype=np.uint64)[0] >> 1)


def gather_objects(env: DistEnv, value: Any) -> list[Any]:
    """``value`` of every rank, in rank order, on every rank (``[value]`` in a single process)."""
    if not env.distributed:
        return [value]
    gathered: list[Any] = [None] * env.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def barrier(env: DistEnv) -> None:
    if env.distributed and dist.is_initialized():
        dist.barrier()


def any_rank(env: DistEnv, flag: bool) -> bool:
    """True on every rank if it is true on any (so all ranks stop at the same step)."""
    if not env.distributed:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=env.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def cleanup(env: DistEnv) -> None:
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()
