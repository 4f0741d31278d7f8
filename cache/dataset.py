"""The torch Dataset of stage two: frames read from the store alone (no images decoded, no YOLO).

    dataset = CachedDepthDataset(url, split="train", mask_source="yolo", required={"sparse": provenance, ...})
    loader = make_loader(dataset, batch_size=4, shuffle=True, workers=2, seed=0)

Each item is a dict of float32 tensors (H, W from the store):
    rgb      (3, H, W)  in [0, 1]
    sparse   (1, H, W)  metres, 0 = no sample
    valid    (1, H, W)  1 where sparse > 0
    mask     (1, H, W)  0/1 foreground from mask/<mask_source>; zeros for mask_source "none"
    depth    (1, H, W)  ground-truth metres, 0 = invalid
    gt_mask  (1, H, W)  0/1 from mask/gt; zeros when the store has no mask/gt
    fill     (1, H, W)  metres, the classical fill `prefill` names (pipeline/prefill.py), computed here
                        from sparse (and mask) per frame; absent for prefill "none"
    index    int        the frame's row in the store (frames/* give its origin)

The store is opened lazily, once per process: __init__ reads what it needs and keeps only
the URL and the rows of the split, so DataLoader workers (forked or spawned) each open
their own handles. A memory:// store is visible to forked workers only.

`ShardGroupedSampler` orders an epoch shard by shard (shard order and order inside a
shard shuffled). The dataset reads a whole shard's run of frames per array in one call
and keeps the last few decoded shards per process: zarr's per-call cost (~2 ms) is paid
once per shard instead of once per frame.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from mtdepth.cache.schema import SPLIT_CODES, mask_array
from mtdepth.cache.store import CORE_ARRAYS, StoreReader, open_store, read_frames, shard_bounds, whole_shard_codecs
from mtdepth.errors import MtDepthError
from mtdepth.params import Split, choices
from mtdepth.pipeline.prefill import PREFILLS, prefill_frame

SPLITS = choices(Split)  # train, val (SPLIT_CODES) and all
NO_MASK = "none"
GT_MASK_SOURCE = "gt"
RGB_MAX = 255.0
CACHED_SHARDS = 2  # decoded shards kept per process: a batch may straddle two


def check_mask_source(reader: StoreReader, mask_source: str) -> None:
    """Refuse a store without a committed mask/<mask_source> (nothing to check for "none")."""
    if mask_source == NO_MASK:
        return
    name = mask_array(mask_source)
    if name not in reader.arrays():
        raise MtDepthError(
            f"store {reader.url}: has no mask source {mask_source!r} "
            f"(it has: {', '.join(reader.mask_sources()) or 'no masks'}; or use '{NO_MASK}')"
        )
    reader.array(name)  # refuses an incomplete one


class CachedDepthDataset(Dataset):
    """Frames of one split of a store, as float32 tensors (see the module docstring)."""

    def __init__(
        self,
        url: str | os.PathLike,
        split: str = "train",
        mask_source: str = "yolo",
        required: dict[str, dict] | None = None,
        prefill: str = "none",
    ):
        if split not in SPLITS:
            raise MtDepthError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        if prefill not in PREFILLS:
            raise MtDepthError(f"prefill must be one of {', '.join(PREFILLS)}, got {prefill!r}")
        self.prefill = prefill
        self.url = os.fspath(url)
        self.split = split
        self.mask_source = mask_source
        reader = open_store(self.url)
        for name in CORE_ARRAYS:
            reader.array(name)
        for name, provenance in (required or {}).items():
            reader.require(name, provenance)
        check_mask_source(reader, self.mask_source)
        self.has_gt_mask = mask_array(GT_MASK_SOURCE) in reader.arrays()
        if self.has_gt_mask:
            reader.array(mask_array(GT_MASK_SOURCE))  # refuses an incomplete one
        self.height, self.width, self.shard_frames = reader.height, reader.width, reader.shard_frames
        self.depth_scale, self.sparse_scale = reader.scale("depth"), reader.scale("sparse")
        codes = reader.split_column()
        self.n_frames = codes.size
        self.rows = np.arange(codes.size) if split == "all" else np.flatnonzero(codes == SPLIT_CODES[split])
        self._arrays: dict | None = None  # opened lazily, per process
        self._opened_in: int | None = None
        self._shards: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()

    def __len__(self) -> int:
        return len(self.rows)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_arrays"], state["_opened_in"], state["_shards"] = None, None, OrderedDict()
        return state

    def _open(self) -> dict:
        """The zarr arrays this dataset reads, opened once in the calling process."""
        if self._opened_in != os.getpid():
            reader = open_store(self.url)
            names = [*CORE_ARRAYS]
            if self.mask_source != NO_MASK:
                names.append(mask_array(self.mask_source))
            if self.has_gt_mask:
                names.append(mask_array(GT_MASK_SOURCE))
            self._arrays = {name: reader.array(name) for name in dict.fromkeys(names)}
            self._opened_in = os.getpid()
            self._shards.clear()
        return self._arrays

    def _shard(self, shard: int) -> dict[str, np.ndarray]:
        """Every array's frames of store shard `shard`, read in one call each and cached."""
        arrays = self._open()
        if shard in self._shards:
            self._shards.move_to_end(shard)
            return self._shards[shard]
        start, stop = shard_bounds(shard, self.n_frames, self.shard_frames)
        with whole_shard_codecs(stop - start):
            self._shards[shard] = {
                name: read_frames(self.url, name, array, start, stop) for name, array in arrays.items()
            }
        if len(self._shards) > CACHED_SHARDS:
            self._shards.popitem(last=False)
        return self._shards[shard]

    def shard_of_positions(self) -> np.ndarray:
        """Store shard of each dataset position (for ShardGroupedSampler)."""
        return self.rows // self.shard_frames

    def __getitem__(self, position: int) -> dict:
        return self.__getitems__([position])[0]

    def __getitems__(self, positions: Sequence[int]) -> list[dict]:
        """Items of several positions, reading each array once for all of them (sorted rows)."""
        rows = self.rows[np.asarray(positions, dtype=np.int64)]
        unique, where = np.unique(rows, return_inverse=True)
        shards = [self._shard(int(row) // self.shard_frames) for row in unique]
        raw = {
            name: np.stack([shard[name][int(row) % self.shard_frames] for shard, row in zip(shards, unique)])
            for name in self._open()
        }
        zeros = torch.zeros((len(unique), 1, self.height, self.width))
        sparse = _metres(raw["sparse"], self.sparse_scale)
        batch = {
            "rgb": torch.from_numpy(raw["rgb"]).permute(0, 3, 1, 2).float().div_(RGB_MAX),
            "sparse": sparse,
            "valid": (sparse > 0).float(),
            "mask": _unit_map(raw[mask_array(self.mask_source)]) if self.mask_source != NO_MASK else zeros,
            "depth": _metres(raw["depth"], self.depth_scale),
            "gt_mask": _unit_map(raw[mask_array(GT_MASK_SOURCE)]) if self.has_gt_mask else zeros,
        }
        if self.prefill != "none":
            batch["fill"] = torch.from_numpy(
                np.stack(
                    [
                        prefill_frame(self.prefill, batch["sparse"][j, 0].numpy(), batch["mask"][j, 0].numpy())
                        for j in range(len(unique))
                    ]
                )
            ).unsqueeze(1)
        return [
            {**{key: value[j] for key, value in batch.items()}, "index": int(row)}
            for j, row in zip(where.tolist(), rows.tolist())
        ]


def _metres(units: np.ndarray, scale: float) -> torch.Tensor:
    """uint16 depth units (n, H, W) as float32 metres (n, 1, H, W)."""
    return torch.from_numpy(units.astype(np.float32)).mul_(np.float32(scale)).unsqueeze(1)


def _unit_map(mask: np.ndarray) -> torch.Tensor:
    """uint8 0/1 maps (n, H, W) as float32 (n, 1, H, W)."""
    return torch.from_numpy(mask).float().unsqueeze(1)


class ShardGroupedSampler(Sampler[int]):
    """Dataset positions grouped by store shard; with shuffle, shard order and order within shards vary per epoch.

    The order of epoch e depends only on (seed, e); each iteration advances e by one, and
    `set_epoch` sets it (to resume a run at a given epoch).
    """

    def __init__(self, shards: Sequence[int] | np.ndarray, shuffle: bool, seed: int):
        self.shards = np.asarray(shards, dtype=np.int64)
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.shards)

    def __iter__(self) -> Iterator[int]:
        order = np.argsort(self.shards, kind="stable")
        if self.shuffle:
            rng = np.random.default_rng((self.seed, self.epoch))
            groups = np.split(order, np.flatnonzero(np.diff(self.shards[order])) + 1)
            order = np.concatenate([rng.permutation(groups[g]) for g in rng.permutation(len(groups))])
        self.epoch += 1
        return iter(order.tolist())


def make_loader(dataset: CachedDepthDataset, batch_size: int, shuffle: bool, workers: int, seed: int) -> DataLoader:
    """A DataLoader reading shard-aligned runs; workers open the store themselves."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=ShardGroupedSampler(dataset.shard_of_positions(), shuffle=shuffle, seed=seed),
        num_workers=workers,
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(seed),
    )
