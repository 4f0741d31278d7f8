"""Depth-completion metrics on valid pixels (0 < GT <= max_depth), as the KITTI benchmark scores.

Errors are accumulated as sums (so they add across batches and DDP ranks, never averages
of averages) and turned into metrics at the end:

    sums = error_sums(pred, gt, max_depth)     # tensor [squared error m^2, absolute error m, pixels]
    rmse_mae_mm(total_sums)                    # {"rmse_mm": ..., "mae_mm": ...}
"""

from __future__ import annotations

import math

import torch

MM_PER_M = 1000.0


def valid_pixels(gt: torch.Tensor, max_depth: float) -> torch.Tensor:
    """Boolean map of the pixels that are scored: 0 < GT <= max_depth."""
    return (gt > 0) & (gt <= max_depth)


def error_sums(pred: torch.Tensor, gt: torch.Tensor, max_depth: float) -> torch.Tensor:
    """float64 [sum of squared error (m^2), sum of absolute error (m), valid pixel count] over valid pixels."""
    valid = valid_pixels(gt, max_depth)
    error = (pred.double() - gt.double())[valid]
    return torch.stack([error.square().sum(), error.abs().sum(), valid.sum().double()])


def rmse_mae_mm(sums: torch.Tensor) -> dict[str, float]:
    """Pooled RMSE and MAE in millimetres from summed errors (NaN when no pixel was valid)."""
    squared, absolute, count = (float(v) for v in sums)
    if count == 0:
        return {"rmse_mm": math.nan, "mae_mm": math.nan}
    return {"rmse_mm": MM_PER_M * math.sqrt(squared / count), "mae_mm": MM_PER_M * absolute / count}
