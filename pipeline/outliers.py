"""See-through outliers of a real LiDAR: a sample more than `margin` metres deeper than the nearest sample
in its `window` x `window` neighbourhood lies behind a foreground edge (the sensor sits apart from the
camera and sees past it) and is dropped. The common rule of KBNet, ScaffNet and Marigold-DC: 7x7, 1.5 m.

    kept, dropped = drop_see_through(sparse, window=7, margin=1.5)   # numpy (H, W) or torch (..., H, W)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F


def see_through(sparse: torch.Tensor, window: int, margin: float) -> torch.Tensor:
    """Bool mask (same shape as `sparse`, (..., H, W) metres, 0 = no sample) of the see-through samples."""
    shape = sparse.shape
    flat = sparse.reshape(-1, 1, *shape[-2:]).float()
    present = flat > 0
    far = torch.where(present, flat, torch.full_like(flat, float("inf")))
    nearest = -F.max_pool2d(-far, kernel_size=window, stride=1, padding=window // 2)
    return (present & (flat > nearest + margin)).reshape(shape)


def drop_see_through(sparse, window: int, margin: float):
    """(`sparse` with its see-through samples set to 0, how many were dropped); numpy or torch in, the same out."""
    if isinstance(sparse, np.ndarray):
        outliers = see_through(torch.from_numpy(np.ascontiguousarray(sparse)), window, margin).numpy()
        return np.where(outliers, np.zeros_like(sparse), sparse), int(outliers.sum())
    outliers = see_through(sparse, window, margin)
    return torch.where(outliers, torch.zeros_like(sparse), sparse), int(outliers.sum())


def filtered(predict: Callable[[dict], dict], window: int, margin: float, counts: dict) -> Callable[[dict], dict]:
    """`predict` on batches whose sparse input (and its `valid` map) lost the see-through samples first.

    `counts` accumulates 'samples' (before) and 'dropped'; the batch is changed in place, so panels show
    the filtered input.
    """

    def run(batch: dict) -> dict:
        counts["samples"] = counts.get("samples", 0) + int((batch["sparse"] > 0).sum())
        batch["sparse"], dropped = drop_see_through(batch["sparse"], window, margin)
        counts["dropped"] = counts.get("dropped", 0) + dropped
        if "valid" in batch:
            batch["valid"] = (batch["sparse"] > 0).to(batch["valid"].dtype)
        return predict(batch)

    return run
