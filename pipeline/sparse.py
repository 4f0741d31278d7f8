"""Simulated sparse depth: each valid pixel kept independently, seeded per frame.

The random field of a frame depends only on (seed, frame key), through a stable hash, so any
frame's sparse map is reproducible alone, in any process or worker and in any order.
"""

from __future__ import annotations

import hashlib

import numpy as np

SEED_BYTES = 16  # 128 bits of the SHA-256 digest seed the generator


def stable_rng(seed: int, key: str) -> np.random.Generator:
    """A generator seeded from (seed, key) by SHA-256, identical in every process and order."""
    digest = hashlib.sha256(f"{seed}\0{key}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:SEED_BYTES], "little"))


def sparsify(depth_m: np.ndarray, keep_prob: float, seed: int, key: str) -> np.ndarray:
    """float32 copy of `depth_m` keeping each valid pixel (depth > 0) with probability `keep_prob`, else 0.

    One uniform draw per pixel decides, so a stricter validity (a smaller max depth)
    only removes samples, never moves the others.
    """
    if not 0 < keep_prob <= 1:
        raise ValueError(f"keep_prob must be in (0, 1], got {keep_prob}")
    depth = np.asarray(depth_m, dtype=np.float32)
    draws = stable_rng(seed, key).random(depth.shape, dtype=np.float32)
    keep = (draws < keep_prob) & (depth > 0)
    return np.where(keep, depth, np.float32(0))


def downscale_samples(sparse_m: np.ndarray, height: int, width: int) -> np.ndarray:
    """Sparse depth resized to (height, width) keeping samples: each target pixel takes the source sample
    nearest its centre among those falling in it (no averaging across depths), else 0."""
    sparse = np.asarray(sparse_m, dtype=np.float32)
    src_h, src_w = sparse.shape
    if (src_h, src_w) == (height, width):
        return sparse.copy()
    v, u = np.nonzero(sparse > 0)
    ty = np.minimum((v * height) // src_h, height - 1)
    tx = np.minimum((u * width) // src_w, width - 1)
    dy = (v + 0.5) - (ty + 0.5) * src_h / height
    dx = (u + 0.5) - (tx + 0.5) * src_w / width
    cell = ty * width + tx
    order = np.lexsort((u, v, dy * dy + dx * dx, cell))  # per target pixel, nearest its centre first
    first = np.ones(len(order), dtype=bool)
    first[1:] = cell[order][1:] != cell[order][:-1]
    out = np.zeros(height * width, dtype=np.float32)
    out[cell[order[first]]] = sparse[v[order[first]], u[order[first]]]
    return out.reshape(height, width)
