"""A large frame completed in overlapping tiles, so that the net's memory is bounded at any frame size.

The frame is cut into cores of `tile` x `tile` pixels; each is completed inside a window that adds
`margin` pixels of context on every side (clipped at the frame's border), and only the core is
kept, so every output pixel comes from exactly one window. Cores and margins are multiples of 16,
so each window starts on the U-Net's pooling grid and its convolutions see what they see in the
whole frame; pixels closer to a core's edge than the net's receptive field differ slightly.

MT-Depth's cross-attention is global (the features are pooled over the whole frame onto a fixed
grid), so a torch model is run twice: a first pass over every window accumulates the pooled
features and mask of the whole frame from the cores, the attention runs once on that grid, and
the second pass feeds every window the whole frame's attention output (bilinearly sampled at the
window's pixels, as the untiled net upsamples it) through a hook on the attention module.
Peak memory is then that of one window plus a few full-size maps (inputs and output).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

ALIGN = 16  # the U-Net pads to and pools by multiples of 2 ** (levels - 1); 16 for up to five levels


@dataclass(frozen=True)
class Tiling:
    """Core side and context margin of the tiles, in pixels (multiples of ALIGN)."""

    tile: int
    margin: int

    def __post_init__(self):
        if self.tile <= 0 or self.tile % ALIGN or self.margin < 0 or self.margin % ALIGN:
            raise ValueError(
                f"tile ({self.tile}) must be a positive multiple of {ALIGN}, margin ({self.margin}) "
                f"a multiple of {ALIGN} >= 0"
            )

    def needed(self, height: int, width: int) -> bool:
        """Whether a frame of this size is larger than one window."""
        return max(height, width) > self.tile + 2 * self.margin


def spans(size: int, tiling: Tiling) -> list[tuple[slice, slice]]:
    """(core, window) along one axis: cores cover 0..size once, windows add the margin, clipped."""
    if size <= tiling.tile + 2 * tiling.margin:
        return [(slice(0, size), slice(0, size))]
    return [
        (
            slice(start, min(start + tiling.tile, size)),
            slice(max(0, start - tiling.margin), min(size, start + tiling.tile + tiling.margin)),
        )
        for start in range(0, size, tiling.tile)
    ]


def windows(height: int, width: int, tiling: Tiling) -> list[tuple[tuple[slice, slice], tuple[slice, slice]]]:
    """((core rows, core cols), (window rows, window cols)) of every tile of a frame."""
    return [((ry, rx), (wy, wx)) for ry, wy in spans(height, tiling) for rx, wx in spans(width, tiling)]


def _inner(core: slice, window: slice) -> slice:
    """The core's place inside its window."""
    return slice(core.start - window.start, core.stop - window.start)


def tiled(
    forward: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    inputs: dict[str, torch.Tensor],
    tiling: Tiling,
    attention: torch.nn.Module | None = None,
) -> torch.Tensor:
    """The maps (N, K, H, W) of `forward` (inputs dict (N, C, H, W) -> (N, K, h, w): D_final, and with a
    confidence net its expected error) completed window by window.

    `attention`: the model's global attention module (MT-Depth), given the whole frame's context.
    """
    height, width = next(iter(inputs.values())).shape[-2:]
    tiles = windows(height, width, tiling)
    context = _frame_context(forward, inputs, tiles, attention) if attention is not None else None
    result = None
    for (ry, rx), (wy, wx) in tiles:
        crop = {key: value[..., wy, wx] for key, value in inputs.items()}
        hook = None
        if context is not None:
            grid = _sampling_grid(wy, wx, height, width, context)
            hook = attention.register_forward_hook(
                lambda module, args, output: F.grid_sample(
                    context,
                    grid.expand(output.shape[0], -1, -1, -1),
                    mode="bilinear",
                    padding_mode="border",
                    align_corners=False,
                ).to(output.dtype)
            )
        try:
            depth = forward(crop)
        finally:
            if hook is not None:
                hook.remove()
        if result is None:
            result = depth.new_zeros((depth.shape[0], depth.shape[1], height, width))
        result[..., ry, rx] = depth[..., _inner(ry, wy), _inner(rx, wx)]
    return result


class _Pooled(Exception):
    """Stops a first-pass forward once the attention's inputs are seen."""


def _frame_context(forward, inputs: dict[str, torch.Tensor], tiles, attention: torch.nn.Module) -> torch.Tensor:
    """The attention module's coarse output (N, C, h, w) for the whole frame, from its inputs pooled over the cores."""
    height, width = next(iter(inputs.values())).shape[-2:]
    grid_h, grid_w = attention.size
    rows, cols = _bins(height, grid_h), _bins(width, grid_w)  # (h, H), (w, W) 0/1: which pixels each cell averages
    sums: list[torch.Tensor | None] = [None, None]  # features, mask
    for (ry, rx), (wy, wx) in tiles:

        def pool(module, args, ry=ry, rx=rx, wy=wy, wx=wx):
            for k, value in enumerate(args[:2]):
                core = value[..., _inner(ry, wy), _inner(rx, wx)].float()
                part = torch.einsum("ih,nchw,jw->ncij", rows[:, ry].to(core), core, cols[:, rx].to(core))
                sums[k] = part if sums[k] is None else sums[k] + part
            raise _Pooled

        hook = attention.register_forward_pre_hook(pool)
        try:
            forward({key: value[..., wy, wx] for key, value in inputs.items()})
        except _Pooled:
            pass
        finally:
            hook.remove()
    area = rows.sum(1)[:, None] * cols.sum(1)[None, :]
    features, mask = (s / area.to(s) for s in sums)
    with torch.inference_mode():  # the module pools a grid onto itself (the identity) and attends
        return attention(features.to(next(attention.parameters()).dtype), mask).float()


def _bins(size: int, cells: int) -> torch.Tensor:
    """(cells, size) 0/1: the pixels adaptive_avg_pool2d averages into each cell (floor/ceil bounds)."""
    index = torch.arange(size)
    starts = torch.tensor([(i * size) // cells for i in range(cells)])
    ends = torch.tensor([-((-(i + 1) * size) // cells) for i in range(cells)])
    return ((index[None] >= starts[:, None]) & (index[None] < ends[:, None])).float()


def _sampling_grid(wy: slice, wx: slice, height: int, width: int, context: torch.Tensor) -> torch.Tensor:
    """grid_sample coordinates of a window's pixels in the whole frame (align_corners=False, as F.interpolate)."""
    ys = (torch.arange(wy.start, wy.stop, dtype=torch.float32) + 0.5) / height * 2 - 1
    xs = (torch.arange(wx.start, wx.stop, dtype=torch.float32) + 0.5) / width * 2 - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (h, w, 2) as (x, y)
    return grid[None].to(context.device)
