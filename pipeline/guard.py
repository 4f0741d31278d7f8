"""Do no harm on frames unlike the training data: a per-frame check against held-out samples.

A net trained on synthetic streets can be worse than the classical fill it corrects on a real frame
(another sensor, another scene), and nothing at prediction time says so: there is no ground truth.
The measured samples are the one truth at hand. The guard holds out a seeded fraction of a frame's
samples, completes the frame from the rest twice (the net, and the fill the net corrects), and
compares their mean absolute error on the held-out samples. The frame keeps the net's output unless
its error exceeds the fill's by more than `margin` (a factor); then it gets the fill, computed from
every sample. A frame with fewer than `min_held` held-out samples gives no evidence: it keeps the net.

    held = holdout(sparse, guard)                     # bool (H, W)
    check = judge(sparse, held, net_depth, fill_depth, guard)
    dense = net_full if check.keep_net else fill_full

The cost is a second net pass and fill per frame (docs/predict-export.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mtdepth.pipeline.sparse import stable_rng

__all__ = ["Guard", "Verdict", "holdout", "judge"]


@dataclass(frozen=True)
class Guard:
    """How the check runs: the held-out fraction of samples, the error factor tolerated, the seed."""

    holdout: float = 0.2
    margin: float = 1.1
    min_held: int = 20
    seed: int = 0


@dataclass(frozen=True)
class Verdict:
    """One frame's check: the two mean absolute errors (metres) on `held` samples, and the choice."""

    net_mae: float
    fill_mae: float
    held: int
    keep_net: bool

    @property
    def choice(self) -> str:
        return "net" if self.keep_net else "fill"


def holdout(sparse: np.ndarray, guard: Guard, key: str = "") -> np.ndarray:
    """The samples held out of `sparse` (H, W) metres: a seeded fraction of its samples, as a bool map.
    The same frame (`key`) and seed give the same samples on every call."""
    draws = stable_rng(guard.seed, f"guard/{key}").random(sparse.shape, dtype=np.float32)
    return (sparse > 0) & (draws < guard.holdout)


def judge(sparse: np.ndarray, held: np.ndarray, net_depth: np.ndarray, fill_depth: np.ndarray, guard: Guard) -> Verdict:
    """Compare the net's and the fill's completions (made without the `held` samples) on those samples."""
    count = int(held.sum())
    if count < guard.min_held:
        return Verdict(float("nan"), float("nan"), count, keep_net=True)
    truth = sparse[held].astype(np.float64)
    net_mae = float(np.abs(net_depth[held] - truth).mean())
    fill_mae = float(np.abs(fill_depth[held] - truth).mean())
    return Verdict(net_mae, fill_mae, count, keep_net=net_mae <= guard.margin * fill_mae)
