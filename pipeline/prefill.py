"""The classical fills a network completes on top of (`model.prefill`), computed per frame on the CPU.

    fill = prefill_frame("ipbasic", sparse_hw)               # (H, W) float32 metres
    fill = prefill_frame("ipbasic_masked", sparse_hw, mask)  # mask-aware: never crosses a mask edge

Choices:
    none            no fill (the paper as written): the net sees RGB, sparse and validity only
    nearest         exact Euclidean nearest sample (baselines.nearest_fill_frame, OpenCV, ~1-3 ms)
    ipbasic         IP-Basic's fast fill with the paper's settings (baselines.ip_basic_fill)
    nearest_masked  the instance prior: each connected region of the 0/1 object mask is filled from
                    its own samples, the background from background samples only, so no fill value
                    crosses a mask edge (a region without samples of its own falls back to every
                    object sample, then to every sample)
    ipbasic_masked  the same split, each part filled by IP-Basic instead of nearest

The fill depends on nothing but the frame's sparse map (and mask), so the store stays
pattern-agnostic: the dataset computes it on the fly (cache/dataset.py), and predict computes it
before calling the net or its ONNX export (docs/results.md gives the cost per frame).
"""

from __future__ import annotations

import cv2
import numpy as np

from mtdepth.params import Prefill, choices
from mtdepth.pipeline.baselines import IPBasicConfig, ip_basic_fill, nearest_fill_frame

PREFILLS = choices(Prefill)
MASK_AWARE = ("nearest_masked", "ipbasic_masked")
PREFILL_IPBASIC = IPBasicConfig()  # the paper's fast fill, as `mtdepth evaluate --baseline ipbasic` by default


def check_prefill(kind: str) -> None:
    if kind not in PREFILLS:
        raise ValueError(f"prefill must be one of {', '.join(PREFILLS)}, got {kind!r}")


def _ipbasic(sparse: np.ndarray) -> np.ndarray:
    return ip_basic_fill(sparse, PREFILL_IPBASIC)


FILLS = {"nearest": nearest_fill_frame, "ipbasic": _ipbasic}


def masked_fill(sparse: np.ndarray, mask: np.ndarray, fill=nearest_fill_frame) -> np.ndarray:
    """(H, W) metres and a 0/1 object mask -> `fill` that takes object pixels only from samples of
    their own mask region (8-connected) and background pixels only from background samples."""
    depth = np.asarray(sparse, dtype=np.float32)
    objects = np.asarray(mask) > 0.5
    has = depth > 0
    if not objects.any() or not has.any():
        return fill(depth)

    def fill_from(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
        return fill(np.where(keep, values, np.float32(0)))

    background = ~objects
    out = fill_from(depth, background) if (has & background).any() else fill(depth)
    object_fill = None  # from every object sample, for regions without samples of their own
    count, regions, stats, _ = cv2.connectedComponentsWithStats(objects.astype(np.uint8), connectivity=8)
    for region in range(1, count):
        left, top, width, height = stats[region, :4]
        box = (slice(top, top + height), slice(left, left + width))
        inside = regions[box] == region
        own = has[box] & inside
        if own.any():
            filled = fill_from(depth[box], own)
        else:
            if object_fill is None:
                object_fill = fill_from(depth, objects) if (has & objects).any() else fill(depth)
            filled = object_fill[box]
        out[box] = np.where(inside, filled, out[box])
    return out


def prefill_frame(kind: str, sparse: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """The fill `kind` of one (H, W) float32 sparse map in metres (zeros for "none" or a frame without samples)."""
    check_prefill(kind)
    sparse = np.asarray(sparse, dtype=np.float32)
    if kind == "none":
        return np.zeros_like(sparse)
    if kind in FILLS:
        return FILLS[kind](sparse)
    return masked_fill(sparse, np.zeros_like(sparse) if mask is None else mask, FILLS[kind.removesuffix("_masked")])
