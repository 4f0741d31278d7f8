"""Classical depth completion without learning: nearest fill and IP-Basic's fast fill.

    dense = nearest_fill(sparse)                  # (B, 1, H, W) metres, torch, any device
    dense = nearest_fill_frame(sparse_hw)         # (H, W) float32 metres, numpy + OpenCV, ~1 ms at 128x256
    dense = ip_basic_fill(sparse_hw, IPBasicConfig())   # (H, W) float32 metres, numpy + OpenCV
    fill = BASELINES[name](config)                # batch (B, 1, H, W) -> (B, 1, H, W), same device

0 in a sparse map means no sample. A frame with no sample at all comes out as zeros.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from mtdepth.params import Baseline, choices

BASELINES = choices(Baseline)
NEAREST_WINDOW = 16  # nearest fill searches this many columns each side before all of them
NEAREST_CHUNK = 4096  # pixels per step of that full search: (4096, W) floats
EMPTY = 0.1  # IP-Basic: an inverted value below this is an empty pixel


def _nearest_in_column(has: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each pixel of a (H, W) bool sample map: the row of the nearest sample in its column
    (the upper one on a tie) and the squared distance to it (inf for a column without samples)."""
    h = has.shape[0]
    rows = torch.arange(h, device=has.device).unsqueeze(1).expand_as(has)
    above = torch.where(has, rows, torch.full_like(rows, -1)).cummax(dim=0).values
    below = torch.where(has, rows, torch.full_like(rows, 2 * h)).flip(0).cummin(dim=0).values.flip(0)
    take_below = (above < 0) | ((below - rows) < (rows - above))
    nearest = torch.where(take_below, below, above)
    missing = (above < 0) & (below >= h)
    squared = (nearest - rows).float().square()
    return nearest.clamp(0, h - 1), torch.where(missing, torch.full_like(squared, torch.inf), squared)


def _nearest_source_column(column_sq: torch.Tensor) -> torch.Tensor:
    """(H, W) squared distances to each column's nearest sample -> (H, W) column of the nearest sample.

    Searches NEAREST_WINDOW columns each side first; a pixel whose best cost there is below
    (NEAREST_WINDOW + 1)^2, which any farther column exceeds, is settled, the rest are searched over
    every column. Either way the result is the full argmin (the leftmost column on a tie).
    """
    h, w = column_sq.shape
    k = NEAREST_WINDOW
    columns = torch.arange(w, device=column_sq.device)
    offsets = torch.arange(-k, k + 1, device=column_sq.device, dtype=torch.float32).square()
    windows = F.pad(column_sq, (k, k), value=torch.inf).unfold(1, 2 * k + 1, 1)  # (H, W, 2k + 1)
    best, where = (windows + offsets).min(dim=2)  # first (leftmost) on a tie
    source = where + columns - k
    rows, cols = torch.nonzero(~(best < (k + 1) ** 2), as_tuple=True)
    for start in range(0, rows.numel(), NEAREST_CHUNK):
        r, c = rows[start : start + NEAREST_CHUNK], cols[start : start + NEAREST_CHUNK]
        cost = (c.unsqueeze(1) - columns.unsqueeze(0)).float().square() + column_sq[r]  # (pixels, W)
        source[r, c] = cost.argmin(dim=1)
    return source


def _nearest_fill_frame(sparse: torch.Tensor) -> torch.Tensor:
    """(H, W) -> (H, W): exact Euclidean nearest sample, in two passes (column, then row)."""
    has = sparse > 0
    if not has.any():
        return torch.zeros_like(sparse)
    row_of, column_sq = _nearest_in_column(has)  # (H, W) each
    source_col = _nearest_source_column(column_sq)
    return sparse[torch.gather(row_of, 1, source_col), source_col]


def nearest_fill(sparse: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) metres -> every pixel takes the depth of its nearest sample (exact Euclidean distance)."""
    return torch.stack([_nearest_fill_frame(frame[0]) for frame in sparse]).unsqueeze(1)


def nearest_fill_frame(sparse: np.ndarray) -> np.ndarray:
    """(H, W) float32 metres -> every pixel takes the depth of a nearest sample (exact Euclidean distance).

    OpenCV's Voronoi labelling (distanceTransformWithLabels) picks a sample per pixel in ~1 ms at
    128x256, but its distances are approximate: on 0.02-0.8% of pixels (sparser maps: more) it picks
    one up to a pixel farther than the nearest. Those pixels are found against OpenCV's exact
    distance transform (DIST_MASK_PRECISE) and searched exactly, so every pixel's sample is at the
    exact nearest distance. Ties may pick another sample than `nearest_fill` (whose rule is fixed).
    """
    depth = np.asarray(sparse, dtype=np.float32)
    has = depth > 0
    if not has.any():
        return np.zeros_like(depth)
    empty = (~has).astype(np.uint8)
    _, labels = cv2.distanceTransformWithLabels(empty, cv2.DIST_L2, cv2.DIST_MASK_5, labelType=cv2.DIST_LABEL_PIXEL)
    rows, cols = np.nonzero(has)
    size = int(labels.max()) + 1
    label_row, label_col = np.zeros(size, np.int64), np.zeros(size, np.int64)
    label_row[labels[has]], label_col[labels[has]] = rows, cols
    src_row, src_col = label_row[labels], label_col[labels]
    height, width = depth.shape
    yy, xx = np.mgrid[:height, :width]
    chosen = (src_row - yy) ** 2 + (src_col - xx) ** 2
    exact = np.rint(np.square(cv2.distanceTransform(empty, cv2.DIST_L2, cv2.DIST_MASK_PRECISE).astype(np.float64)))
    wrong_r, wrong_c = np.nonzero(chosen > exact)
    if wrong_r.size:
        row_of, column_sq = _nearest_in_column(torch.from_numpy(has))
        cost = (wrong_c[:, None] - np.arange(width)[None, :]) ** 2 + column_sq.numpy()[wrong_r]  # (pixels, W)
        best_col = cost.argmin(axis=1)
        src_row[wrong_r, wrong_c], src_col[wrong_r, wrong_c] = row_of.numpy()[wrong_r, best_col], best_col
    return depth[src_row, src_col]


def _diamond(size: int) -> np.ndarray:
    """A size x size uint8 diamond structuring element (|dy| + |dx| <= size // 2)."""
    r = size // 2
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    return (np.abs(dy) + np.abs(dx) <= r).astype(np.uint8)


def _full(size: int) -> np.ndarray:
    return np.ones((size, size), np.uint8)


@dataclass(frozen=True)
class IPBasicConfig:
    """IP-Basic fast fill (Ku, Harakeh, Waslander, CRV 2018); defaults are the paper's fast variant."""

    max_depth: float = 100.0  # inversion offset, metres (the paper's 100 m)
    extrapolate: bool = True  # extend the top samples to the top row, then a 31x31 fill
    blur: str = "gaussian"  # gaussian (lower RMSE) or bilateral


def ip_basic_fill(sparse: np.ndarray, config: IPBasicConfig = IPBasicConfig()) -> np.ndarray:
    """(H, W) float32 metres -> dense (H, W) float32, following the paper's fast fill step by step.

    Depths are inverted (max_depth - d) so that dilation, which keeps the largest value, keeps the
    nearest surface. Pixels still empty at the end take their nearest filled value, and the result
    is clipped to the samples' range: without extrapolation the Gaussian blur mixes empty (0) pixels
    into its neighbours, which would invert to depths beyond every sample (with it, on the demo
    store, nothing is empty by then and the clip only undoes float32 rounding, under 5 micrometres).
    """
    depth = np.asarray(sparse, dtype=np.float32)
    has = depth > EMPTY
    if not has.any():
        return np.zeros_like(depth)
    inverted = np.where(has, np.float32(config.max_depth) - depth, np.float32(0))
    # 1. dilate with a 5x5 diamond, 2. close small holes with a full 5x5
    inverted = cv2.dilate(inverted, _diamond(5))
    inverted = cv2.morphologyEx(inverted, cv2.MORPH_CLOSE, _full(5))
    # 3. fill remaining small holes from a 7x7 dilation
    inverted = _fill_empty(inverted, _full(7))
    if config.extrapolate:
        # 4. extend each column's highest value to the top row, then fill large holes (31x31)
        top = np.argmax(inverted > EMPTY, axis=0)  # first filled row per column (0 when none)
        column_top = inverted[top, np.arange(inverted.shape[1])]
        above_top = np.arange(inverted.shape[0])[:, None] < top[None, :]
        inverted = np.where(above_top, column_top[None, :], inverted).astype(np.float32)
        inverted = _fill_empty(inverted, _full(31))
    # 5. median blur against outliers, then Gaussian (on filled pixels) or bilateral blur
    inverted = cv2.medianBlur(inverted, 5)
    if config.blur == "gaussian":
        blurred = cv2.GaussianBlur(inverted, (5, 5), 0)
        inverted = np.where(inverted > EMPTY, blurred, inverted)
    else:
        inverted = cv2.bilateralFilter(inverted, 5, 1.5, 2.0)
    # 6. invert back
    filled = inverted > EMPTY
    dense = np.where(filled, np.float32(config.max_depth) - inverted, np.float32(0))
    if not filled.all():
        dense = nearest_fill_frame(dense)
    samples = depth[has]
    return np.clip(dense, samples.min(), samples.max()).astype(np.float32)


def _fill_empty(inverted: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Empty pixels take the value of a dilation with `kernel`; filled pixels keep theirs."""
    return np.where(inverted > EMPTY, inverted, cv2.dilate(inverted, kernel))


def ip_basic(sparse: torch.Tensor, config: IPBasicConfig = IPBasicConfig()) -> torch.Tensor:
    """(B, 1, H, W) metres -> IP-Basic fast fill of each frame (on the CPU), back on sparse's device."""
    frames = [ip_basic_fill(frame[0].cpu().numpy(), config) for frame in sparse]
    return torch.from_numpy(np.stack(frames)).unsqueeze(1).to(sparse.device)


def baseline(name: str, ip_config: IPBasicConfig) -> Callable[[torch.Tensor], torch.Tensor]:
    """The batch function of baseline `name` ('nearest' or 'ipbasic')."""
    if name == "nearest":
        return nearest_fill
    if name == "ipbasic":
        return lambda sparse: ip_basic(sparse, ip_config)
    raise ValueError(f"unknown baseline {name!r} (known: {', '.join(BASELINES)})")
