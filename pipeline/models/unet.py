"""The depth branch: a U-Net over concat(RGB, sparse depth, validity) (MT-Depth section 3.2).

Ronneberger et al., "U-Net", MICCAI 2015, as the paper modifies it: five levels with
channels (8, 16, 32, 64, 128), max-pooling down, transposed convolutions up, skip
connections; F_depth is the last decoder map at full resolution and
D_init = Conv1x1(F_depth) (eq. 4).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConvBlock", "UNet", "conv1x1", "conv3x3"]

INPUT_CHANNELS = 5  # RGB (3) + sparse depth (1) + validity (1), eq. 3


def conv3x3(in_channels: int, out_channels: int, bias: bool = False) -> nn.Conv2d:
    """3x3 convolution with padding 1."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=bias)


def conv1x1(in_channels: int, out_channels: int, bias: bool = True) -> nn.Conv2d:
    """1x1 convolution."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=bias)


class ConvBlock(nn.Sequential):
    """(conv3x3 -> BN -> ReLU) twice."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(
            conv3x3(in_channels, out_channels),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            conv3x3(out_channels, out_channels),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """U-Net depth branch; returns (F_depth, raw D_init) at the input's own size.

    Args:
        channels: channels per level, shallow to deep (Table 2: 8, 16, 32, 64, 128).
        in_channels: input channels (5: RGB, sparse depth, validity).

    Any input size works: the input is zero-padded at the bottom and right to a multiple
    of 2**(levels - 1) and the outputs are cropped back.
    """

    def __init__(self, channels: Sequence[int] = (8, 16, 32, 64, 128), in_channels: int = INPUT_CHANNELS):
        super().__init__()
        if len(channels) < 2 or any(c <= 0 for c in channels):
            raise ValueError(f"channels must be two or more positive ints, got {channels!r}")
        self.channels = tuple(channels)
        self.multiple = 2 ** (len(channels) - 1)
        self.down = nn.ModuleList()
        previous = in_channels
        for c in channels:
            self.down.append(ConvBlock(previous, c))
            previous = c
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for deep, shallow in zip(channels[::-1], channels[-2::-1]):
            self.up.append(nn.ConvTranspose2d(deep, shallow, kernel_size=2, stride=2))
            self.merge.append(ConvBlock(2 * shallow, shallow))
        self.depth_out = conv1x1(channels[0], 1)

    @property
    def feature_channels(self) -> int:
        """Channels of F_depth."""
        return self.channels[0]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = x.shape[-2:]
        x = F.pad(x, (0, -width % self.multiple, 0, -height % self.multiple))
        skips = []
        for level, block in enumerate(self.down):
            if level:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)  # (B, c_level, H / 2**level, W / 2**level)
        for up, merge, skip in zip(self.up, self.merge, skips[-2::-1]):
            x = merge(torch.cat([up(x), skip], dim=1))
        features = x[..., :height, :width]  # F_depth (B, channels[0], H, W)
        return features, self.depth_out(features)
