"""The attention-guided prediction head (section 3.4) and the light mask head.

Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018: z = GAP(F_fused),
s = sigmoid(W2 ReLU(W1 z)) (eq. 10), F = s * F_fused (eq. 11); then
D_final = Conv3x3(ReLU(BN(Conv3x3(F)))) (eq. 12). The mask head (Conv1x1 on F_fused)
predicts the instance foreground for the loss's consistency term.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mtdepth.pipeline.models.unet import conv1x1, conv3x3

__all__ = ["DepthHead", "MaskHead", "SqueezeExcitation", "log_scale_conv"]

INIT_RELATIVE_ERROR = 0.05  # confidence: what an untrained net expects, a fraction of its depth


def log_scale_conv(channels: int) -> nn.Conv2d:
    """The confidence's 1x1 output conv (the log of the expected error relative to the depth): zero weights,
    bias log INIT_RELATIVE_ERROR (an untrained net expects that fraction of its depth everywhere). Built
    without drawing from torch's generator, so that the rest of a net seeded alike initialises exactly as
    it does without confidence."""
    with torch.random.fork_rng(devices=[]):
        conv = conv1x1(channels, 1)
    nn.init.zeros_(conv.weight)
    nn.init.constant_(conv.bias, math.log(INIT_RELATIVE_ERROR))
    return conv


class SqueezeExcitation(nn.Module):
    """Channel attention: reweights channels by a gate computed from their global means.

    Args:
        channels: input (and output) channels C.
        reduction: the MLP's reduction ratio r (hidden size max(1, C // r)).
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        if reduction < 1:
            raise ValueError(f"reduction must be >= 1, got {reduction!r}")
        hidden = max(1, channels // reduction)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            conv1x1(channels, hidden),
            nn.ReLU(inplace=True),
            conv1x1(hidden, channels),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)  # (B, C, H, W) * (B, C, 1, 1)


class DepthHead(nn.Module):
    """SE -> conv3x3 -> BN -> ReLU -> conv3x3: raw D_final (B, 1, H, W), and with `confidence` a raw
    log-scale (B, 1, H, W) from a 1x1 conv on the same features (docs/confidence.md).

    Args:
        channels: fused channels (128).
        mid_channels: the first conv's output (64).
        reduction: SE reduction ratio.
        confidence: add the log-scale output.
    """

    def __init__(self, channels: int = 128, mid_channels: int = 64, reduction: int = 16, confidence: bool = False):
        super().__init__()
        self.se = SqueezeExcitation(channels, reduction)
        self.body = nn.Sequential(conv3x3(channels, mid_channels), nn.BatchNorm2d(mid_channels), nn.ReLU(inplace=True))
        self.depth_out = conv3x3(mid_channels, 1, bias=True)
        self.log_scale_out = log_scale_conv(mid_channels) if confidence else None

    def forward(self, fused: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(raw depth, raw log-scale or None)."""
        features = self.body(self.se(fused))
        log_scale = self.log_scale_out(features) if self.log_scale_out is not None else None
        return self.depth_out(features), log_scale


class MaskHead(nn.Module):
    """Foreground logits (B, 1, H, W) from the fused features: one 1x1 convolution."""

    def __init__(self, channels: int = 128):
        super().__init__()
        self.logits = conv1x1(channels, 1)

    def forward(self, fused: torch.Tensor) -> torch.Tensor:
        return self.logits(fused)
