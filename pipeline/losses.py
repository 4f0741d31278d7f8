"""The multi-task loss of MT-Depth: depth on D_final and D_init, object weighting, mask consistency,
and the confidence's Laplace likelihood.

With Omega the valid ground-truth pixels (0 < D_gt <= max_depth), M_gt the GT instance
foreground, rho the per-pixel depth error (`depth_error`: l1 |e|, l2 e^2, l1_l2 |e| + e^2 as
LRRU and CompletionFormer train, smooth_l1 Huber with a 1 m knee; e in metres) and sigma(z) the predicted mask:

    L_depth(D) = sum_{p in Omega} (1 + w_obj * M_gt(p)) * rho(D(p) - D_gt(p)) / |Omega|
    L_seg      = mean_p BCE(sigma(z(p)), M_gt(p))                (over every pixel)
    L_conf     = sum_{p in Omega} (|e(p)| / exp(s(p)) + s(p)) / |Omega|, e = D_final - D_gt detached
    L          = L_depth(D_final) + w_init * L_depth(D_init) + w_seg * L_seg [+ w_conf * L_conf]

L_conf is the negative log-likelihood (less log 2) of the error under a Laplace of scale b = exp(s)
(OMNI-DC's, s clamped by the net), minimised per pixel at s = log|e|; it counts only for a net with a
confidence output (`log_scale`). The error is detached, so the likelihood never moves the depth, and it
is not object-weighted: exp(s) is to be the plain expected error of every pixel (docs/confidence.md).

The U-Net baseline has one output (D_final is D_init) and no mask head: its loss is
(1 + w_init) * L_depth(D_init), which the optimiser sees as L_depth with a scaled rate.
A batch with no valid pixel contributes zero depth loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mtdepth.params import DepthError, choices
from mtdepth.pipeline.metrics import valid_pixels

DEPTH_ERRORS = choices(DepthError)
HUBER_KNEE_M = 1.0


def pixel_error(pred: torch.Tensor, gt: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-pixel depth error rho(pred - gt) in metres (or m^2), same shape as the inputs."""
    if kind == "l1":
        return (pred - gt).abs()
    if kind == "l2":
        return (pred - gt).square()
    if kind == "l1_l2":
        error = pred - gt
        return error.abs() + error.square()
    if kind == "smooth_l1":
        return F.smooth_l1_loss(pred, gt, reduction="none", beta=HUBER_KNEE_M)
    raise ValueError(f"depth_error must be one of {DEPTH_ERRORS}, got {kind!r}")


def depth_loss(
    pred: torch.Tensor, gt: torch.Tensor, object_mask: torch.Tensor, w_obj: float, max_depth: float, kind: str
) -> torch.Tensor:
    """L_depth: object-weighted mean error over valid GT pixels (0 when none is valid)."""
    valid = valid_pixels(gt, max_depth)
    weight = (1.0 + w_obj * object_mask) * valid
    total = (weight * pixel_error(pred.float(), gt, kind)).sum()
    return total / valid.sum().clamp(min=1)


def laplace_nll(pred: torch.Tensor, gt: torch.Tensor, log_scale: torch.Tensor, max_depth: float) -> torch.Tensor:
    """L_conf: mean over valid GT pixels of |e| / exp(s) + s, e = pred - gt detached (0 when none is valid)."""
    valid = valid_pixels(gt, max_depth)
    error = (pred.detach().float() - gt).abs()
    log_scale = log_scale.float()
    total = (valid * (error * torch.exp(-log_scale) + log_scale)).sum()
    return total / valid.sum().clamp(min=1)


def mask_loss(logits: torch.Tensor, gt_mask: torch.Tensor) -> torch.Tensor:
    """L_seg: binary cross-entropy of predicted foreground logits against the GT foreground."""
    return F.binary_cross_entropy_with_logits(logits.float(), gt_mask)


@dataclass(frozen=True)
class MultiTaskLoss:
    """L = L_depth(D_final) + w_init * L_depth(D_init) + w_seg * L_seg (Table 2: 0.5 / 3.0 / 1.0)
    [+ w_conf * L_conf for a net with a confidence output]."""

    w_init: float = 0.5
    w_obj: float = 3.0
    w_seg: float = 1.0
    max_depth: float = 80.0
    depth_error: str = "l2"
    w_conf: float = 1.0

    def __post_init__(self) -> None:
        if self.depth_error not in DEPTH_ERRORS:
            raise ValueError(f"depth_error must be one of {DEPTH_ERRORS}, got {self.depth_error!r}")

    def __call__(self, outputs: dict, depth: torch.Tensor, gt_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """{"loss": total, "final", "init", "seg", "conf": its terms (unweighted; conf 0 without a
        confidence output)} for a batch."""
        terms = {"final": depth_loss(outputs["final"], depth, gt_mask, self.w_obj, self.max_depth, self.depth_error)}
        if outputs["init"] is outputs["final"]:
            terms["init"] = terms["final"]
        else:
            terms["init"] = depth_loss(outputs["init"], depth, gt_mask, self.w_obj, self.max_depth, self.depth_error)
        logits = outputs.get("mask_logits")
        terms["seg"] = mask_loss(logits, gt_mask) if logits is not None else torch.zeros((), device=depth.device)
        terms["loss"] = terms["final"] + self.w_init * terms["init"] + self.w_seg * terms["seg"]
        log_scale = outputs.get("log_scale")
        if log_scale is not None:
            terms["conf"] = laplace_nll(outputs["final"], depth, log_scale, self.max_depth)
            terms["loss"] = terms["loss"] + self.w_conf * terms["conf"]
        else:
            terms["conf"] = torch.zeros((), device=depth.device)
        return terms
