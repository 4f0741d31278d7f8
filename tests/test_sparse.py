"""Sparse depth simulation: rate, validity, and per-frame reproducibility."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from mtdepth.pipeline.sparse import stable_rng, sparsify

HEIGHT, WIDTH = 256, 512
KEEP_PROB = 0.05
KEY = "Scene01/clone/Camera_0/00012"


@pytest.fixture
def depth() -> np.ndarray:
    """A realistic-size depth map with an invalid (0) sky band and far region."""
    rng = np.random.default_rng(1)
    metres = rng.uniform(2.0, 80.0, (HEIGHT, WIDTH)).astype(np.float32)
    metres[: HEIGHT // 3] = 0.0
    metres[:, : WIDTH // 8] = 0.0
    return metres


def test_keeps_about_keep_prob_of_valid_pixels_with_their_depth(depth):
    sparse = sparsify(depth, KEEP_PROB, seed=0, key=KEY)
    assert sparse.dtype == np.float32 and sparse.shape == depth.shape
    rate = (sparse > 0).sum() / (depth > 0).sum()
    assert 0.04 <= rate <= 0.06
    kept = sparse > 0
    np.testing.assert_array_equal(sparse[kept], depth[kept])


def test_never_samples_an_invalid_pixel(depth):
    for seed in range(5):
        sparse = sparsify(depth, 1.0 if seed == 0 else KEEP_PROB, seed=seed, key=KEY)
        assert not np.any(sparse[depth <= 0])
    np.testing.assert_array_equal(sparsify(depth, 1.0, 0, KEY), depth)  # keep_prob 1 keeps every valid pixel


def test_same_seed_and_key_give_identical_maps_in_any_order(depth):
    keys = [f"Scene01/clone/Camera_0/{i:05d}" for i in range(4)]
    forward = {k: sparsify(depth, KEEP_PROB, 3, k) for k in keys}
    backward = {k: sparsify(depth, KEEP_PROB, 3, k) for k in reversed(keys)}
    for k in keys:
        np.testing.assert_array_equal(forward[k], backward[k])


def test_different_key_or_seed_give_different_maps(depth):
    base = sparsify(depth, KEEP_PROB, 0, KEY)
    assert not np.array_equal(base, sparsify(depth, KEEP_PROB, 0, "Scene01/clone/Camera_0/00013"))
    assert not np.array_equal(base, sparsify(depth, KEEP_PROB, 1, KEY))


def test_seed_is_stable_across_processes_and_hash_seeds():
    code = "from mtdepth.pipeline.sparse import stable_rng; print(stable_rng(7, 'Scene02/fog/Camera_0/00001').integers(1 << 62))"
    here = stable_rng(7, "Scene02/fog/Camera_0/00001").integers(1 << 62)
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
        assert int(other.stdout) == here


def test_stricter_validity_only_removes_samples(depth):
    loose = sparsify(depth, KEEP_PROB, 0, KEY)
    strict_depth = np.where(depth > 40.0, 0, depth).astype(np.float32)
    strict = sparsify(strict_depth, KEEP_PROB, 0, KEY)
    np.testing.assert_array_equal(strict, np.where(strict_depth > 0, loose, 0))


@pytest.mark.parametrize("keep_prob", [0.0, -0.1, 1.5])
def test_rejects_keep_prob_outside_unit_interval(depth, keep_prob):
    with pytest.raises(ValueError, match="keep_prob"):
        sparsify(depth, keep_prob, 0, KEY)
