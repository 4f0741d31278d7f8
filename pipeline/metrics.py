"""Depth-completion metrics on valid pixels (0 < GT <= max_depth), as the KITTI benchmark scores.

Errors are accumulated as sums (so they add across batches and DDP ranks, never averages
of averages) and turned into metrics at the end:

    sums = error_sums(pred, gt, max_depth)     # tensor [squared error m^2, absolute error m, pixels]
    rmse_mae_mm(total_sums)                    # {"rmse_mm": ..., "mae_mm": ...}

The training loop needs RMSE and MAE alone; evaluation takes the full set (METRICS, below) per
frame and pixel group, and both averages of it.
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


# --- the full KITTI metric set, per group of pixels (regions, distance bins) ---------------------------
#
#   sums = metric_sums(pred, gt, groups, max_depth)   # (B, G, len(SUMS)) float64, per frame and group
#   pooled(all_sums), frame_mean(all_sums)            # (G, len(METRICS)): the two averages
#
# Inverse-depth metrics and ratios use the prediction clamped to MIN_PRED_M, so a zero
# prediction (a baseline with no sample in a frame) gives a large finite error, not inf.

METRICS = ("rmse_mm", "mae_mm", "irmse_per_km", "imae_per_km", "rel", "delta1", "delta2", "delta3")
SUMS = ("sq_m2", "abs_m", "inv_sq_per_m2", "inv_abs_per_m", "rel", "delta1", "delta2", "delta3", "pixels")
DELTA_BASE = 1.25
MIN_PRED_M = 1e-3
PER_KM_PER_M = 1000.0  # 1/m -> 1/km


def metric_sums(pred: torch.Tensor, gt: torch.Tensor, groups: torch.Tensor, max_depth: float) -> torch.Tensor:
    """Per frame and group, the sums of SUMS over the group's valid pixels.

    pred, gt: (B, 1, H, W) metres; groups: (B, G, H, W) bool. Returns (B, G, len(SUMS)) float64.
    """
    gt = gt.double()
    pred = pred.double()
    clamped = pred.clamp_min(MIN_PRED_M)
    safe_gt = torch.where(gt > 0, gt, torch.ones_like(gt))
    error = pred - gt
    inverse = 1.0 / clamped - 1.0 / safe_gt
    ratio = torch.maximum(clamped / safe_gt, safe_gt / clamped)
    per_pixel = torch.cat(
        [
            error.square(),
            error.abs(),
            inverse.square(),
            inverse.abs(),
            error.abs() / safe_gt,
            *[(ratio < DELTA_BASE**k).double() for k in (1, 2, 3)],
            torch.ones_like(gt),
        ],
        dim=1,
    )  # (B, S, H, W)
    weights = (groups & valid_pixels(gt, max_depth)).double()  # (B, G, H, W)
    return torch.einsum("bshw,bghw->bgs", per_pixel, weights)


def metrics_from_sums(sums: torch.Tensor) -> torch.Tensor:
    """METRICS from sums (..., len(SUMS)); NaN where no pixel was counted."""
    sums = sums.double()
    count = sums[..., -1]
    mean = sums[..., :-1] / count.unsqueeze(-1)  # NaN (0/0) where empty
    metres = torch.stack(
        [
            MM_PER_M * mean[..., 0].sqrt(),
            MM_PER_M * mean[..., 1],
            PER_KM_PER_M * mean[..., 2].sqrt(),
            PER_KM_PER_M * mean[..., 3],
            *mean[..., 4:].unbind(-1),
        ],
        dim=-1,
    )
    return torch.where(count.unsqueeze(-1) > 0, metres, torch.full_like(metres, math.nan))


def pooled(sums: torch.Tensor) -> torch.Tensor:
    """(F, G, len(SUMS)) per-frame sums -> (G, len(METRICS)) over all pixels of all frames."""
    return metrics_from_sums(sums.sum(dim=0))


def frame_mean(sums: torch.Tensor) -> torch.Tensor:
    """(F, G, len(SUMS)) -> (G, len(METRICS)): each frame's metrics, then their mean over frames that
    have a pixel in the group (KITTI's average); NaN for a group no frame has."""
    return metrics_from_sums(sums).nanmean(dim=0)
