"""Cross-attention with the instance mask as query and depth features as key/value (section 3.3).

Q = Conv1x1(F_seg), K = Conv1x1(F_depth), V = Conv1x1(F_depth) (eq. 5) on a grid
downsampled to `size` (Algorithm 1, step 3: 16x32); A = softmax(Q K^T / sqrt(C_a)) (eq. 7),
O = A V (eq. 8) through torch's fused scaled_dot_product_attention; F_att =
ReLU(Conv1x1(O)) (eq. 9), upsampled bilinearly to F_depth's size.

The query input (`query`):
    mask       the paper as written: the 1-channel merged mask. Every query is then
               a * m + b for the pixel's mask value m, so the attention yields one context
               vector per distinct mask value (two, for a binary mask).
    mask_pos   the mask plus fixed 2-D sinusoidal position channels.
    mask_feat  Conv1x1(concat(mask, downsampled F_depth)): varies with content too.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mtdepth.params import Query, choices
from mtdepth.pipeline.models.unet import conv1x1

__all__ = ["QUERIES", "CrossAttention", "sinusoidal_positions"]

QUERIES = choices(Query)
POSITION_FREQUENCIES = 4  # per axis; sin and cos each: 4 * 2 * 2 = 16 channels


def sinusoidal_positions(height: int, width: int, frequencies: int = POSITION_FREQUENCIES) -> torch.Tensor:
    """Fixed 2-D sinusoidal position channels (4 * frequencies, height, width) in [-1, 1]."""
    ys = torch.linspace(0.0, 1.0, height).view(height, 1).expand(height, width)
    xs = torch.linspace(0.0, 1.0, width).view(1, width).expand(height, width)
    channels = []
    for k in range(frequencies):
        scale = math.pi * 2**k
        channels += [torch.sin(scale * ys), torch.cos(scale * ys), torch.sin(scale * xs), torch.cos(scale * xs)]
    return torch.stack(channels)


class CrossAttention(nn.Module):
    """Mask-queried attention over depth features on a coarse grid.

    Args:
        feature_channels: channels C_d of F_depth (and of F_att).
        dim: attention embedding dimension C_a (Table 2: 32).
        size: (height, width) of the attention grid (16, 32).
        query: what the query is computed from, one of QUERIES.
    """

    def __init__(self, feature_channels: int, dim: int = 32, size: tuple[int, int] = (16, 32), query: str = "mask"):
        super().__init__()
        if query not in QUERIES:
            raise ValueError(f"query must be one of {QUERIES}, got {query!r}")
        if dim <= 0 or min(size) <= 0:
            raise ValueError(f"dim and size must be positive, got dim={dim!r}, size={size!r}")
        self.dim, self.size, self.query = dim, tuple(size), query
        query_channels = {"mask": 1, "mask_pos": 1 + 4 * POSITION_FREQUENCIES, "mask_feat": 1 + feature_channels}[query]
        if query == "mask_pos":
            self.register_buffer("positions", sinusoidal_positions(*self.size), persistent=False)
        self.to_q = conv1x1(query_channels, dim)
        self.to_k = conv1x1(feature_channels, dim)
        self.to_v = conv1x1(feature_channels, dim)
        self.out = conv1x1(dim, feature_channels)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """F_att (B, C_d, H, W) from F_depth (B, C_d, H, W) and a mask (B, 1, H, W) in [0, 1]."""
        batch, _, height, width = features.shape
        grid_h, grid_w = self.size
        coarse = F.adaptive_avg_pool2d(features, self.size)  # (B, C_d, h, w)
        seg = F.adaptive_avg_pool2d(mask.detach().to(features.dtype), self.size)  # eq. 2, (B, 1, h, w)
        if self.query == "mask_pos":
            seg = torch.cat([seg, self.positions.to(seg.dtype).expand(batch, -1, -1, -1)], dim=1)
        elif self.query == "mask_feat":
            seg = torch.cat([seg, coarse], dim=1)
        # (B, 1 head, N = h * w, C_a)
        q, k, v = (
            proj(x).flatten(2).transpose(1, 2).unsqueeze(1)
            for proj, x in ((self.to_q, seg), (self.to_k, coarse), (self.to_v, coarse))
        )
        attended = F.scaled_dot_product_attention(q, k, v)  # softmax(QK^T / sqrt(C_a)) V
        attended = attended.squeeze(1).transpose(1, 2).reshape(batch, self.dim, grid_h, grid_w)
        context = F.relu(self.out(attended))  # eq. 9, (B, C_d, h, w)
        return F.interpolate(context, size=(height, width), mode="bilinear", align_corners=False)
