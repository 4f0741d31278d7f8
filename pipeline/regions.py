"""The pixel groups evaluation scores separately: regions around instances and distance bins.

    labels: (B, 1, H, W) integer instance map, 0 = background (the store's merged GT
            foreground is the special case of labels 0/1)
    object      labels > 0
    boundary    a band of k pixels on both sides of every instance edge (an edge lies between two
                4-neighbours with different labels): k columns left and k right of a vertical edge
    background  neither object nor boundary
    bins        lo < GT <= hi metres, for consecutive edges of `distance_edges`

`group_masks` stacks them, with "all" first, into one (B, G, H, W) bool tensor. The region names
live here alone (torch is imported by the functions, so `mtdepth report` can read the names
without it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

REGIONS = ("object", "boundary", "background")
REGION_CODES = ("background", "object", "boundary")  # the panels' region map, by code


def instance_edges(labels: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) bool: pixels with a 4-neighbour of another label (both sides of each edge)."""
    import torch

    edges = torch.zeros(labels.shape, dtype=torch.bool, device=labels.device)
    vertical = labels[..., 1:, :] != labels[..., :-1, :]
    horizontal = labels[..., :, 1:] != labels[..., :, :-1]
    edges[..., 1:, :] |= vertical
    edges[..., :-1, :] |= vertical
    edges[..., :, 1:] |= horizontal
    edges[..., :, :-1] |= horizontal
    return edges


def boundary_band(labels: torch.Tensor, k: int) -> torch.Tensor:
    """(B, 1, H, W) bool: pixels within k pixels (chessboard) of an instance edge, on either side."""
    if k < 1:
        raise ValueError(f"boundary band width must be >= 1 pixel, got {k}")
    import torch.nn.functional as F

    edges = instance_edges(labels).float()
    return F.max_pool2d(edges, kernel_size=2 * k - 1, stride=1, padding=k - 1) > 0


def region_masks(labels: torch.Tensor, k: int) -> dict[str, torch.Tensor]:
    """{"object", "boundary", "background"} -> (B, 1, H, W) bool (object and boundary overlap on the rim)."""
    obj = labels > 0
    band = boundary_band(labels, k)
    return {"object": obj, "boundary": band, "background": ~obj & ~band}


def bin_names(distance_edges: Sequence[float]) -> list[str]:
    """'d0-20', 'd20-40', ... for consecutive edges (metres)."""
    return [f"d{lo:g}-{hi:g}" for lo, hi in zip(distance_edges[:-1], distance_edges[1:])]


def group_names(distance_edges: Sequence[float]) -> list[str]:
    """Names of the groups `group_masks` stacks, in order."""
    return ["all", *REGIONS, *bin_names(distance_edges)]


def group_masks(gt: torch.Tensor, labels: torch.Tensor, k: int, distance_edges: Sequence[float]) -> torch.Tensor:
    """(B, G, H, W) bool: all pixels, each region, each distance bin of GT (validity is applied by the metrics)."""
    import torch

    regions = region_masks(labels, k)
    bins = [(gt > lo) & (gt <= hi) for lo, hi in zip(distance_edges[:-1], distance_edges[1:])]
    everything = torch.ones_like(gt, dtype=torch.bool)
    return torch.cat([everything, *(regions[name] for name in REGIONS), *bins], dim=1)
