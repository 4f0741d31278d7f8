"""Feature fusion (Algorithm 1, step 4): concat(F_att, F_depth) -> Conv1x1 -> BN -> ReLU."""

from __future__ import annotations

import torch
from torch import nn

from mtdepth.pipeline.models.unet import conv1x1

__all__ = ["Fusion"]


class Fusion(nn.Module):
    """F_fused (B, out_channels, H, W) from F_att and F_depth.

    Args:
        feature_channels: channels of each input (F_att and F_depth have the same).
        out_channels: fused channels C' (Table 2: 128).
    """

    def __init__(self, feature_channels: int, out_channels: int = 128):
        super().__init__()
        self.block = nn.Sequential(
            conv1x1(2 * feature_channels, out_channels, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)
        )

    def forward(self, attended: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return self.block(torch.cat([attended, features], dim=1))
