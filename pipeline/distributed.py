"""torchrun, one code path: a process alone is rank 0 of 1; under torchrun each rank joins the group.

ranks, device = start_distributed("auto")   # cuda:LOCAL_RANK when present, else cpu
total = all_reduce(tensor, ranks)           # a sum over ranks (the tensor itself when alone)
stop_distributed(ranks)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from mtdepth.pipeline.device import torch_device


@dataclass(frozen=True)
class Ranks:
    """Where this process stands in a torchrun job (rank 0 of 1 when run alone)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def start_distributed(device: str) -> tuple[Ranks, torch.device]:
    """Join the torchrun process group when launched by torchrun; pick this rank's device (`train.device`)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    ranks = Ranks(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))
    chosen = torch_device(device, "train.device", ranks.local_rank)
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo")
    return ranks, chosen


def stop_distributed(ranks: Ranks) -> None:
    """Leave the process group (nothing to do when alone)."""
    if ranks.world > 1 and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce(value: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    """The sum of `value` over ranks, in place."""
    if ranks.world > 1:
        dist.all_reduce(value)
    return value


def broadcast_flag(flag: bool) -> bool:
    """Rank 0's `flag`, on every rank."""
    decision = [flag]
    dist.broadcast_object_list(decision, src=0)
    return decision[0]
