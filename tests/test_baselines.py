"""Nearest fill exact on toy maps; IP-Basic dense and within its input range."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtdepth.pipeline.baselines import IPBasicConfig, baseline, ip_basic, ip_basic_fill, nearest_fill


def test_nearest_fill_on_a_toy_map_by_hand():
    sparse = torch.zeros(1, 1, 4, 6)
    sparse[0, 0, 0, 0], sparse[0, 0, 1, 4], sparse[0, 0, 3, 5] = 1.0, 3.0, 2.0
    expected = torch.tensor(
        [
            [1, 1, 1, 3, 3, 3],
            [1, 1, 3, 3, 3, 3],
            [1, 1, 3, 3, 3, 2],  # (2, 5): squared distance 1 to the 2, 2 to the 3
            [1, 1, 3, 2, 2, 2],  # (3, 1): 10 to the 1, 13 to the 3; (3, 2): 8 to the 3, 9 to the 2
        ],
        dtype=torch.float32,
    )
    assert torch.equal(nearest_fill(sparse), expected.view(1, 1, 4, 6))


def test_nearest_fill_ties_take_the_leftmost_then_the_upper_sample():
    sparse = torch.zeros(1, 1, 3, 3)
    sparse[0, 0, 0, 0], sparse[0, 0, 0, 2], sparse[0, 0, 2, 0] = 1.0, 2.0, 3.0
    out = nearest_fill(sparse)[0, 0]
    assert out[0, 1] == 1.0  # (0, 0) and (0, 2) both at 1: leftmost
    assert out[1, 0] == 1.0  # (0, 0) and (2, 0) both at 1, same column: upper
    assert out[1, 1] == 1.0  # three at squared distance 2: leftmost, upper


def test_nearest_fill_matches_brute_force_and_keeps_samples():
    rng = np.random.default_rng(3)
    depth = rng.uniform(1, 80, (2, 1, 23, 37)).astype(np.float32)
    sparse = torch.from_numpy(np.where(rng.random(depth.shape) < 0.08, depth, 0).astype(np.float32))
    out = nearest_fill(sparse)
    for b in range(2):
        rows, cols = torch.nonzero(sparse[b, 0] > 0, as_tuple=True)
        yy, xx = torch.meshgrid(torch.arange(23), torch.arange(37), indexing="ij")
        squared = (yy[..., None] - rows) ** 2 + (xx[..., None] - cols) ** 2  # (H, W, samples)
        nearest = squared == squared.min(dim=-1, keepdim=True).values
        takes_a_nearest_value = (nearest & (sparse[b, 0, rows, cols] == out[b, 0, ..., None])).any(dim=-1)
        assert takes_a_nearest_value.all()
    assert torch.equal(out[sparse > 0], sparse[sparse > 0])


def test_frames_without_samples_come_out_as_zeros():
    empty = torch.zeros(2, 1, 8, 8)
    assert torch.equal(nearest_fill(empty), empty)
    assert np.array_equal(ip_basic_fill(np.zeros((8, 8), np.float32)), np.zeros((8, 8), np.float32))


def street(h: int = 64, w: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A ground plane getting farther towards the horizon, a near box, no depth above the horizon; 5% samples."""
    rows = np.arange(h, dtype=np.float32)[:, None]
    depth = np.where(rows > h // 4, 3.0 + 70.0 * (h - rows) / h, 0.0) * np.ones((1, w), np.float32)
    depth[h // 3 : h // 2 + 8, w // 2 : w // 2 + 24] = 8.0  # a near object
    rng = np.random.default_rng(seed)
    sparse = np.where(rng.random(depth.shape) < 0.05, depth, 0.0).astype(np.float32)
    return depth.astype(np.float32), sparse


@pytest.mark.parametrize("config", [IPBasicConfig(), IPBasicConfig(blur="bilateral"), IPBasicConfig(extrapolate=False)])
def test_ip_basic_is_dense_and_within_its_input_range(config):
    _, sparse = street()
    dense = ip_basic_fill(sparse, config)
    samples = sparse[sparse > 0]
    assert dense.shape == sparse.shape and dense.dtype == np.float32
    assert (dense > 0).all()
    assert samples.min() - 1e-4 <= dense.min() and dense.max() <= samples.max() + 1e-4


def test_batch_functions_keep_shape_and_device():
    _, sparse = street(32, 64)
    batch = torch.from_numpy(np.stack([sparse, sparse]))[:, None]
    for name in ("nearest", "ipbasic"):
        out = baseline(name, IPBasicConfig())(batch)
        assert out.shape == batch.shape and out.device == batch.device and out.dtype == torch.float32
    assert torch.equal(ip_basic(batch)[0, 0], torch.from_numpy(ip_basic_fill(sparse)))
    with pytest.raises(ValueError, match="unknown baseline 'linear'"):
        baseline("linear", IPBasicConfig())
