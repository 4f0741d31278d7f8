"""The torch Dataset over the store: item values, splits, mask sources, workers, shard-aligned sampling."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from mtdepth.cache.dataset import CachedDepthDataset, ShardGroupedSampler, make_loader
from mtdepth.cache.store import FrameTable, open_for_write
from mtdepth.errors import MtDepthError

N, H, W, SHARD = 11, 32, 64, 4  # shards of 4, 4, 3 frames
SCALE = 0.01
SPLIT = (0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1)
SPARSE_PROVENANCE = {"keep_prob": 0.05, "seed": 0}


def make_store(url, mask_sources=("yolo", "gt"), seed=0) -> dict[str, np.ndarray]:
    """A committed store of random content; returns what was written."""
    rng = np.random.default_rng(seed)
    depth = rng.integers(0, 9000, (N, H, W), dtype=np.uint16)
    data = {
        "rgb": rng.integers(0, 256, (N, H, W, 3), dtype=np.uint8),
        "depth": depth,
        "sparse": np.where(rng.random((N, H, W)) < 0.05, depth, 0).astype(np.uint16),
        **{f"mask/{s}": (rng.random((N, H, W)) < 0.3).astype(np.uint8) for s in mask_sources},
    }
    frames = FrameTable(("Scene01",) * N, ("clone",) * N, ("Camera_0",) * N, tuple(range(100, 100 + N)), SPLIT)
    writer = open_for_write(url, frames, H, W, SHARD)
    for name, values in data.items():
        for shard in writer.pending(name, SPARSE_PROVENANCE if name == "sparse" else {"array": name}):
            start, stop = writer.shard_bounds(shard)
            writer.write_shard(name, shard, values[start:stop])
        writer.commit(name)
    return data


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    url = tmp_path_factory.mktemp("dataset") / "s.zarr"
    return url, make_store(url)


def test_items_hold_what_was_written_in_metres_and_unit_maps(store):
    url, data = store
    dataset = CachedDepthDataset(url, split="all", mask_source="yolo", required={"sparse": SPARSE_PROVENANCE})
    assert len(dataset) == N
    for row in (0, 5, N - 1):
        item = dataset[row]
        assert set(item) == {"rgb", "sparse", "valid", "mask", "depth", "gt_mask", "index"}
        assert item["index"] == row
        shapes = {key: tuple(value.shape) for key, value in item.items() if key != "index"}
        assert shapes == {"rgb": (3, H, W), **{k: (1, H, W) for k in ("sparse", "valid", "mask", "depth", "gt_mask")}}
        assert all(value.dtype == torch.float32 for key, value in item.items() if key != "index")
        expected_rgb = torch.from_numpy(data["rgb"][row]).permute(2, 0, 1).float() / 255
        assert torch.allclose(item["rgb"], expected_rgb) and item["rgb"].max() <= 1
        sparse_m = data["sparse"][row].astype(np.float32) * np.float32(SCALE)
        assert np.array_equal(item["sparse"][0].numpy(), sparse_m)
        assert np.array_equal(item["valid"][0].numpy(), (data["sparse"][row] > 0).astype(np.float32))
        assert np.array_equal(item["depth"][0].numpy(), data["depth"][row].astype(np.float32) * np.float32(SCALE))
        assert np.array_equal(item["mask"][0].numpy(), data["mask/yolo"][row].astype(np.float32))
        assert np.array_equal(item["gt_mask"][0].numpy(), data["mask/gt"][row].astype(np.float32))


def test_split_filtering(store):
    url, _ = store
    train = CachedDepthDataset(url, split="train")
    val = CachedDepthDataset(url, split="val")
    assert [train[i]["index"] for i in range(len(train))] == [i for i in range(N) if SPLIT[i] == 0]
    assert [val[i]["index"] for i in range(len(val))] == [2, 6, 10]
    with pytest.raises(MtDepthError, match="split must be one of train, val, all"):
        CachedDepthDataset(url, split="test")


def test_mask_sources_none_gt_and_missing(store, tmp_path):
    url, data = store
    none = CachedDepthDataset(url, split="all", mask_source="none")[4]
    assert torch.count_nonzero(none["mask"]) == 0
    assert np.array_equal(none["gt_mask"][0].numpy(), data["mask/gt"][4].astype(np.float32))
    gt = CachedDepthDataset(url, split="all", mask_source="gt")[4]
    assert np.array_equal(gt["mask"][0].numpy(), data["mask/gt"][4].astype(np.float32))

    only_yolo = tmp_path / "yolo-only.zarr"
    make_store(only_yolo, mask_sources=("yolo",))
    with pytest.raises(MtDepthError, match=r"has no mask source 'gt' \(it has: yolo; or use 'none'\)"):
        CachedDepthDataset(only_yolo, mask_source="gt")
    item = CachedDepthDataset(only_yolo, split="all", mask_source="yolo")[0]
    assert torch.count_nonzero(item["gt_mask"]) == 0


def test_required_provenance_mismatch_and_incomplete_arrays_are_refused(store, tmp_path):
    url, _ = store
    with pytest.raises(MtDepthError, match="keep_prob=0.05, params say 0.1"):
        CachedDepthDataset(url, required={"sparse": {**SPARSE_PROVENANCE, "keep_prob": 0.1}})
    partial = tmp_path / "partial.zarr"
    make_store(partial, mask_sources=())
    frames = FrameTable(("Scene01",) * N, ("clone",) * N, ("Camera_0",) * N, tuple(range(100, 100 + N)), SPLIT)
    writer = open_for_write(partial, frames, H, W, SHARD)
    writer.pending("mask/yolo", {"array": "mask/yolo"})
    writer.write_shard("mask/yolo", 0, np.zeros((SHARD, H, W), np.uint8))
    with pytest.raises(MtDepthError, match="array 'mask/yolo' is incomplete"):
        CachedDepthDataset(partial, mask_source="yolo")


def test_batched_read_handles_unsorted_and_repeated_positions(store):
    url, data = store
    dataset = CachedDepthDataset(url, split="all")
    items = dataset.__getitems__([9, 2, 9, 0])
    assert [item["index"] for item in items] == [9, 2, 9, 0]
    for item in items:
        assert np.array_equal(
            item["depth"][0].numpy(), data["depth"][item["index"]].astype(np.float32) * np.float32(SCALE)
        )


def test_dataset_keeps_no_store_handles_and_pickles(store):
    url, _ = store
    dataset = CachedDepthDataset(url, split="train")
    assert dataset._arrays is None
    dataset[0]
    assert dataset._arrays is not None
    clone = pickle.loads(pickle.dumps(dataset))
    assert clone._arrays is None and len(clone) == len(dataset)
    assert torch.equal(clone[1]["rgb"], dataset[1]["rgb"])


def test_loader_with_two_workers_reads_every_frame_once(store):
    url, data = store
    dataset = CachedDepthDataset(url, split="train", mask_source="yolo")
    loader = make_loader(dataset, batch_size=3, shuffle=True, workers=2, seed=7)
    for _ in range(2):
        seen = []
        for batch in loader:
            assert batch["rgb"].shape[1:] == (3, H, W) and batch["mask"].dtype == torch.float32
            for j, row in enumerate(batch["index"].tolist()):
                assert np.array_equal(batch["mask"][j, 0].numpy(), data["mask/yolo"][row].astype(np.float32))
            seen += batch["index"].tolist()
        assert sorted(seen) == [i for i in range(N) if SPLIT[i] == 0]
    assert dataset._arrays is None  # only the workers opened the store


def test_sampler_visits_shard_runs_once_each_and_reshuffles_per_epoch():
    shards = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 3])[::-1]  # any order of positions
    sampler = ShardGroupedSampler(shards, shuffle=True, seed=3)
    epochs = [list(sampler) for _ in range(3)]
    for order in epochs:
        assert sorted(order) == list(range(len(shards)))
        runs = [shards[p] for i, p in enumerate(order) if i == 0 or shards[order[i - 1]] != shards[p]]
        assert sorted(runs) == [0, 1, 2, 3]  # each shard is one contiguous run
    assert epochs[0] != epochs[1]
    sampler.set_epoch(1)
    assert list(sampler) == epochs[1]
    assert list(ShardGroupedSampler(shards, shuffle=True, seed=3)) == epochs[0]
    assert list(ShardGroupedSampler(shards, shuffle=False, seed=3)) == list(np.argsort(shards, kind="stable"))
