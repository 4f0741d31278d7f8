"""Which sparse pattern a frame gets (uniform, keypoints, lidar or a seeded mix) and the params that decide it.

`uniform` keeps pixels of the resized depth at random (pipeline/sparse.py). `keypoints` keeps the depth
at ORB corners of the full-size image (a structure-from-motion-like pattern, as OMNI-DC's mix uses),
`lidar` simulates a spinning LiDAR at the full size (pipeline/lidar.py); both are then downscaled
keeping samples. `mixed` draws one of the three per frame with `sparse.mixed` weights. Every draw
comes from (seed, frame key), so a frame's pattern is the same in any process and order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mtdepth.errors import MtDepthError
from mtdepth.pipeline.lidar import LidarSpec, scan
from mtdepth.pipeline.sparse import downscale_samples, sparsify, stable_rng

if TYPE_CHECKING:  # the `sparse` params section; any object with its fields will do
    from mtdepth.params import SparseParams

SINGLE_PATTERNS = ("uniform", "keypoints", "lidar")  # the order of sparse.mixed's weights


def lidar_spec(sparse: SparseParams) -> LidarSpec:
    """The simulated sensor `sparse.lidar_*` describes."""
    top, bottom = sparse.lidar_elevation
    return LidarSpec(
        beams=sparse.lidar_beams,
        top=top,
        bottom=bottom,
        azimuth_step=sparse.lidar_azimuth_step,
        offset=sparse.lidar_offset,
        noise=sparse.lidar_noise,
        fill_gap=sparse.lidar_fill_gap,
    )


def pattern_keys(sparse: SparseParams, seed: int) -> dict:
    """Exactly the params that decide the `sparse` array (beyond the depth it samples)."""
    keys: dict = {"pattern": sparse.pattern, "seed": seed}
    used = set(SINGLE_PATTERNS) if sparse.pattern == "mixed" else {sparse.pattern}
    if sparse.pattern == "mixed":
        keys["mixed"] = list(sparse.mixed)
    if "uniform" in used:
        keys["keep_prob"] = sparse.keep_prob
    if "keypoints" in used:
        keys["keypoints"] = sparse.keypoints
    if "lidar" in used:
        keys["lidar"] = {
            "beams": sparse.lidar_beams,
            "elevation": list(sparse.lidar_elevation),
            "azimuth_step": sparse.lidar_azimuth_step,
            "offset": list(sparse.lidar_offset),
            "noise": sparse.lidar_noise,
            "lines": list(sparse.lidar_lines),
            "fill_gap": sparse.lidar_fill_gap,
        }
    return keys


def needs_source(sparse: SparseParams) -> bool:
    """Whether the pattern samples the full-size frame (keypoints, lidar) rather than the resized depth."""
    return sparse.pattern != "uniform"


def frame_pattern(sparse: SparseParams, seed: int, key: str) -> str:
    """The pattern frame `key` gets: `sparse.pattern`, or for `mixed` a seeded draw."""
    if sparse.pattern != "mixed":
        return sparse.pattern
    weights = np.asarray(sparse.mixed, dtype=np.float64)
    draw = stable_rng(seed, f"{key}\0pattern").random()
    return SINGLE_PATTERNS[int(np.searchsorted(np.cumsum(weights / weights.sum()), draw, side="right"))]


def sample_frame(
    sparse: SparseParams,
    seed: int,
    key: str,
    depth: np.ndarray,
    source_depth: np.ndarray | None = None,
    source_rgb: np.ndarray | None = None,
    intrinsics: tuple[float, float, float, float] | None = None,
) -> np.ndarray:
    """float32 sparse metres at `depth`'s size for frame `key`; keypoints and lidar read the full-size frame."""
    pattern = frame_pattern(sparse, seed, key)
    if pattern == "uniform":
        return sparsify(depth, sparse.keep_prob, seed, key)
    if source_depth is None:
        raise ValueError(f"pattern {pattern!r} needs the full-size depth")
    if pattern == "keypoints":
        full = keypoint_samples(source_rgb, source_depth, sparse.keypoints)
    else:
        if intrinsics is None:
            raise MtDepthError(
                f"frame {key}: sparse.pattern {sparse.pattern!r} simulates a LiDAR and needs the "
                "camera intrinsics (intrinsic.txt), none found"
            )
        rng = stable_rng(seed, f"{key}\0lidar")
        lines = int(sparse.lidar_lines[rng.integers(len(sparse.lidar_lines))])
        full = scan(source_depth, intrinsics, lidar_spec(sparse), lines, rng)
    return np.where(depth > 0, downscale_samples(full, *depth.shape), np.float32(0))  # like uniform: on valid depth


def keypoint_samples(rgb: np.ndarray, depth: np.ndarray, count: int) -> np.ndarray:
    """The depth at up to `count` ORB corners of `rgb` (deterministic), 0 elsewhere."""
    import cv2

    gray = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    points = cv2.ORB_create(nfeatures=count).detect(gray, None)
    sparse = np.zeros(depth.shape, dtype=np.float32)
    if points:
        xy = np.array([p.pt for p in points])
        u = np.clip(np.round(xy[:, 0]).astype(int), 0, depth.shape[1] - 1)
        v = np.clip(np.round(xy[:, 1]).astype(int), 0, depth.shape[0] - 1)
        sparse[v, u] = depth[v, u]
    return sparse
