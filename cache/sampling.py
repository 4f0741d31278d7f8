"""Which frames each process reads: shard-grouped training order split across ranks, validation in blocks.

Single process (world 1) these reduce to `ShardGroupedSampler` and plain order. Under
torchrun, epoch e's shard-grouped order (the same on every rank: it depends only on seed
and e) is cut into global batches of batch * world positions, and rank r takes slice r of
each, so one DDP step sees exactly the frames one process with `accumulate = world`
would; the order is padded by wrapping to whole global batches (DistributedSampler's
semantics: every rank takes the same number of steps). Validation splits the frames in
contiguous blocks without padding (metrics are reduced as sums, so uneven blocks are exact).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from mtdepth.cache.dataset import CachedDepthDataset, ShardGroupedSampler

PREFETCH_BATCHES = 4  # per worker: enough to ride over a worker's whole-shard decode


class RankTrainSampler(Sampler[int]):
    """This rank's positions of a shard-grouped, shuffled epoch (see the module docstring)."""

    def __init__(self, shards: np.ndarray, seed: int, batch: int, rank: int = 0, world: int = 1):
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} out of range for world size {world}")
        self.base = ShardGroupedSampler(shards, shuffle=True, seed=seed)
        self.batch, self.rank, self.world = batch, rank, world

    def set_epoch(self, epoch: int) -> None:
        self.base.set_epoch(epoch)

    def _global_batches(self) -> int:
        return -(-len(self.base) // (self.batch * self.world))

    def __len__(self) -> int:
        if self.world == 1:
            return len(self.base)
        return self._global_batches() * self.batch

    def __iter__(self) -> Iterator[int]:
        order = list(self.base)
        if self.world == 1:
            return iter(order)
        span = self.batch * self.world
        padded = np.resize(np.asarray(order), self._global_batches() * span)  # wraps around
        mine = padded.reshape(-1, self.world, self.batch)[:, self.rank]
        return iter(mine.reshape(-1).tolist())


class BlockSampler(Sampler[int]):
    """Rank `rank`'s contiguous block of positions 0..n-1, in order (no padding)."""

    def __init__(self, n: int, rank: int = 0, world: int = 1):
        self.start, self.stop = n * rank // world, n * (rank + 1) // world

    def __len__(self) -> int:
        return self.stop - self.start

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.stop))


def rank_loaders(
    train: CachedDepthDataset,
    val: CachedDepthDataset,
    batch: int,
    workers: int,
    seed: int,
    rank: int = 0,
    world: int = 1,
    pin_memory: bool = False,
) -> tuple[DataLoader, DataLoader]:
    """(training loader, validation loader) of this rank; workers open the store themselves."""
    common = {
        "batch_size": batch,
        "num_workers": workers,
        "persistent_workers": workers > 0,
        "pin_memory": pin_memory,
        "generator": torch.Generator().manual_seed(seed),
        **({"prefetch_factor": PREFETCH_BATCHES} if workers > 0 else {}),
    }
    train_sampler = RankTrainSampler(train.shard_of_positions(), seed, batch, rank, world)
    return (
        DataLoader(train, sampler=train_sampler, **common),
        DataLoader(val, sampler=BlockSampler(len(val), rank, world), **common),
    )
