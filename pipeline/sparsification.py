"""How well an uncertainty map ranks a depth map's errors: sparsification curves, AUSE / AURG, calibration.

    tracker = SparsificationTracker(SparsificationSettings(max_depth=80, spread_window=21, ...))
    tracker.add(pred, gt, sparse, log_scale)   # per batch, (B, 1, H, W) tensors; log_scale None without one
    result = tracker.result()                  # Sparsification: curves, areas, calibration

numpy and OpenCV on the CPU, frame by frame (the same numbers whatever device predicted).

Uncertainty maps ("methods"), each ranking the valid pixels (0 < GT <= max_depth) of the scored output:
    learned   exp(log_scale): a model's predicted expected absolute error, metres (when it has one)
    distance  Euclidean distance in pixels to the nearest sparse sample (OpenCV's exact transform);
              a frame without a sample: +inf everywhere
    spread    population standard deviation of the sparse depths in the k x k window centred on the
              pixel (k = `spread_window`, zero padding: samples outside the frame do not exist);
              +inf where the window holds fewer than 2 samples (an unsupported pixel is the least certain)

Sparsification (mattpoggi/mono-uncertainty, evaluate.py, whose conventions these are): STEPS = 50
fractions f = 0, 0.02, ..., 0.98; at each, the fraction f of the pixels with the highest uncertainty is
removed and RMSE and MAE of what is left are measured. The oracle removes by the true |error|; the
random order's expected curve is the full set's error at every f (a constant). Areas use the trapezoid
rule over f = 0, 0.02, ..., 1 with the curve's value 0 appended at f = 1:
    AUSE = area(curve) - area(oracle)       (0 for a perfect ranking; lower is better)
    AURG = error(all pixels) - area(curve)  (gain over random; higher is better)
so a random (or constant) uncertainty has AURG ~ error / (2 STEPS), 1% of the error, as in mono-uncertainty.
One difference: mono-uncertainty removes by percentile threshold, keeping every pixel tied with the
threshold, so a map with many equal values (a distance transform, the +inf above) removes nothing
inside a tie. Here exactly floor(f N) pixels are removed, ties in a seeded random order (each frame draws
one random permutation of its pixels that breaks ties in every map alike).

Two averages, as the metrics: per frame then the mean over frames (mono-uncertainty's; areas are
linear in the curve, so the mean AUSE is the AUSE of the mean curves) and pooled over all frames'
pixels, on a seeded random subsample of at most `pooled_pixels` valid pixels per frame (memory:
frames x pooled_pixels x (1 + maps) float32).

Calibration (learned only): per bin [lo, hi) of predicted expected error (metres), the pixel count, the
mean predicted error, the measured MAE and RMSE and the ratio MAE / predicted (1 when calibrated);
over every valid pixel of every frame. Pixels predicted beyond the last edge fall in no bin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from mtdepth.pipeline.metrics import MM_PER_M, valid_pixels

STEPS = 50  # mono-uncertainty's intervals
FRACTIONS = tuple(i / STEPS for i in range(STEPS))
METHODS = ("learned", "distance", "spread")
ERRORS = ("rmse", "mae")
MIN_SPREAD_SAMPLES = 2  # a standard deviation needs two samples
RANK_MASK = 0xFFFFFFFF  # the low 32 bits of a sort key: the pixel's tie rank


@dataclass(frozen=True)
class SparsificationSettings:
    max_depth: float  # valid pixels: 0 < GT <= max_depth
    spread_window: int  # k, odd
    calibration_edges: tuple[float, ...]  # metres, increasing; the last may be inf
    pooled_pixels: int  # per frame, for the pooled curves
    seed: int


def distance_map(sparse: np.ndarray) -> np.ndarray:
    """(H, W) metres (0 = no sample) -> float32 pixels to the nearest sample (+inf everywhere without one)."""
    present = sparse > 0
    if not present.any():
        return np.full(sparse.shape, np.inf, np.float32)
    exact = cv2.distanceTransform((~present).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    # its float32 roots differ in the last bit from call to call: the squares are integers, root them here
    return np.sqrt(np.rint(np.square(exact.astype(np.float64)))).astype(np.float32)


def spread_map(sparse: np.ndarray, window: int) -> np.ndarray:
    """(H, W) metres -> float32 population std (metres) of the samples in the window; +inf under 2 samples."""
    depth = sparse.astype(np.float64)
    count, total, squares = (
        cv2.boxFilter(x, cv2.CV_64F, (window, window), normalize=False, borderType=cv2.BORDER_CONSTANT)
        for x in ((depth > 0).astype(np.float64), depth, depth * depth)
    )
    count = np.rint(count)
    safe = np.maximum(count, 1)
    variance = np.maximum(squares / safe - (total / safe) ** 2, 0)
    return np.where(count >= MIN_SPREAD_SAMPLES, np.sqrt(variance), np.inf).astype(np.float32)


def curves(error: np.ndarray, uncertainties: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """(N,) float32 errors (m) and one (N,) uncertainty >= 0 per method -> (1 + methods, 2, STEPS) RMSE and MAE
    (m) of the pixels left at each fraction, the oracle (|error|) first. Ties are removed in a random order."""
    n = error.size
    removed = (np.arange(STEPS) * n) // STEPS  # floor(f n): at least n / STEPS stay
    left = (n - removed).astype(np.float64)
    absolute = np.abs(error.astype(np.float64))
    shuffled = rng.permutation(n)  # the pixel of tie rank r is shuffled[r], in every map alike
    by_rank = absolute[shuffled]
    ranks = np.arange(n, dtype=np.int64)
    orders = [np.sort(absolute)[::-1]]  # the oracle: largest error first
    for uncertainty in uncertainties:
        bits = np.abs(uncertainty[shuffled].astype(np.float32)).view(np.int32).astype(np.int64)  # monotone, >= 0
        keys = np.sort((bits << 32) | ranks)[::-1]  # most uncertain first, ties by rank
        orders.append(by_rank[keys & RANK_MASK])
    rows = []
    for ordered in orders:
        sums = [np.concatenate([[0.0], np.cumsum(x)]) for x in (np.square(ordered), ordered)]
        sq, ab = ((total[-1] - total[removed]) / left for total in sums)  # means over the pixels left
        rows.append(np.stack([np.sqrt(sq), ab]))
    return np.stack(rows)


def area(curve: np.ndarray) -> np.ndarray:
    """Trapezoid area of (..., STEPS) curves over f = 0 .. 1, the value 0 appended at f = 1."""
    closed = np.concatenate([curve, np.zeros_like(curve[..., :1])], axis=-1)
    return np.trapezoid(closed, dx=1.0 / STEPS, axis=-1)


@dataclass
class Sparsification:
    """The mean per-frame curves, the pooled curves, both in metres, and the calibration sums."""

    methods: tuple[str, ...]  # those present, in METHODS order
    frames: int
    frame_mean: np.ndarray  # (1 + methods, 2, STEPS): oracle, then each method; RMSE, MAE
    frame_full: np.ndarray  # (2,): mean over frames of each frame's full RMSE and MAE (the random curve)
    pooled: np.ndarray  # same layout, over the pooled subsample
    pooled_full: np.ndarray  # (2,)
    calibration_edges: tuple[float, ...]
    calibration: np.ndarray | None  # (bins, 4): pixels, sum predicted, sum |e|, sum e^2; None without learned

    def _average(self, average: str) -> tuple[np.ndarray, np.ndarray]:
        return (self.frame_mean, self.frame_full) if average == "frame_mean" else (self.pooled, self.pooled_full)

    def areas(self, average: str) -> dict:
        """{method: {ause_rmse_mm, aurg_rmse_mm, ause_mae_mm, aurg_mae_mm}} for 'frame_mean' or 'pooled'."""
        curve, full = self._average(average)
        areas = area(curve)  # (1 + methods, 2)
        return {
            method: {
                key: MM_PER_M * float(value)
                for e, name in enumerate(ERRORS)
                for key, value in (
                    (f"ause_{name}_mm", areas[m, e] - areas[0, e]),
                    (f"aurg_{name}_mm", full[e] - areas[m, e]),
                )
            }
            for m, method in enumerate(self.methods, start=1)
        }

    def curve_rows(self, average: str) -> list[dict]:
        """One row per fraction: fraction, then <name>_rmse_mm and <name>_mae_mm for oracle, each method, random."""
        curve, full = self._average(average)
        rows = []
        for i, fraction in enumerate(FRACTIONS):
            row = {"fraction": fraction}
            for c, name in enumerate(("oracle", *self.methods)):
                row.update({f"{name}_{e}_mm": MM_PER_M * float(curve[c, k, i]) for k, e in enumerate(ERRORS)})
            row.update({f"random_{e}_mm": MM_PER_M * float(full[k]) for k, e in enumerate(ERRORS)})
            rows.append(row)
        return rows

    def calibration_rows(self) -> list[dict]:
        """One row per bin: lo_m, hi_m, pixels, predicted_m, mae_m, rmse_m, ratio = mae / predicted; [] without learned."""
        if self.calibration is None:
            return []
        rows = []
        bounds = zip(self.calibration_edges, self.calibration_edges[1:])
        for (lo, hi), (pixels, predicted, absolute, squared) in zip(bounds, self.calibration.tolist()):
            filled = pixels > 0
            rows.append(
                {
                    "lo_m": lo,
                    "hi_m": hi,
                    "pixels": int(pixels),
                    "predicted_m": predicted / pixels if filled else None,
                    "mae_m": absolute / pixels if filled else None,
                    "rmse_m": math.sqrt(squared / pixels) if filled else None,
                    "ratio": absolute / predicted if filled and predicted > 0 else None,
                }
            )
        return rows

    def worst_calibration_factor(self) -> float | None:
        """The largest max(ratio, 1 / ratio) over the bins with pixels: 1 when every bin is calibrated."""
        ratios = [row["ratio"] for row in self.calibration_rows() if row["ratio"]]
        return max(max(r, 1 / r) for r in ratios) if ratios else None


class SparsificationTracker:
    """Accumulates, batch by batch, what Sparsification needs (see the module docstring)."""

    def __init__(self, settings: SparsificationSettings):
        self.settings = settings
        self._rng = np.random.default_rng(settings.seed)
        self._methods: tuple[str, ...] | None = None
        self._frames = 0
        self._curve_sum = np.zeros(0)  # (1 + methods, 2, STEPS) once a frame was added
        self._full_sum = np.zeros(2)
        self._pool: list[np.ndarray] = []  # per frame (1 + methods, n): error, then each uncertainty
        self._calibration: np.ndarray | None = None  # (bins, 4) sums, with a learned map

    def add(self, pred: torch.Tensor, gt: torch.Tensor, sparse: torch.Tensor, log_scale: torch.Tensor | None) -> None:
        """One batch: (B, 1, H, W) prediction, ground truth, sparse input (metres) and log_scale (or None)."""
        s = self.settings
        methods = METHODS if log_scale is not None else METHODS[1:]
        if self._methods not in (None, methods):
            raise ValueError("log_scale present in some batches and absent in others")
        self._methods = methods
        gt_np, sparse_np = (t[:, 0].float().cpu().numpy() for t in (gt, sparse))
        error = (pred[:, 0].float() - gt[:, 0].float()).cpu().numpy()
        learned = None if log_scale is None else log_scale[:, 0].float().exp().cpu().numpy()
        valid = valid_pixels(gt[:, 0], s.max_depth).cpu().numpy()
        for b in range(len(gt_np)):
            keep = valid[b]
            n = int(keep.sum())
            if n == 0:
                continue
            maps = {"distance": distance_map(sparse_np[b]), "spread": spread_map(sparse_np[b], s.spread_window)}
            if learned is not None:
                maps["learned"] = learned[b]
            e = error[b][keep]
            us = [maps[m][keep] for m in methods]
            frame = curves(e, us, self._rng)
            self._curve_sum = self._curve_sum + frame if self._frames else frame
            self._full_sum += frame[0, :, 0]  # nothing removed: the frame's full RMSE and MAE
            self._frames += 1
            chosen = self._rng.choice(n, min(n, s.pooled_pixels), replace=False)
            self._pool.append(np.stack([x[chosen] for x in (e, *us)]).astype(np.float32))
            if learned is not None:
                self._add_calibration(maps["learned"][keep].astype(np.float64), e.astype(np.float64))

    def _add_calibration(self, predicted: np.ndarray, error: np.ndarray) -> None:
        edges = np.asarray(self.settings.calibration_edges, dtype=np.float64)
        bins = len(edges) - 1
        index = np.searchsorted(edges, predicted, side="right") - 1  # bin [lo, hi)
        inside = (index >= 0) & (index < bins)
        sums = np.stack(
            [
                np.bincount(index[inside], weights=w[inside], minlength=bins)
                for w in (np.ones_like(predicted), predicted, np.abs(error), np.square(error))
            ],
            axis=1,
        )
        self._calibration = sums if self._calibration is None else self._calibration + sums

    def result(self) -> Sparsification | None:
        """The curves and sums so far; None when no frame had a valid pixel."""
        if self._frames == 0:
            return None
        pool = np.concatenate(self._pool, axis=1)
        pooled = curves(pool[0], list(pool[1:]), np.random.default_rng(self.settings.seed))
        return Sparsification(
            methods=self._methods,
            frames=self._frames,
            frame_mean=self._curve_sum / self._frames,
            frame_full=self._full_sum / self._frames,
            pooled=pooled,
            pooled_full=pooled[0, :, 0],
            calibration_edges=self.settings.calibration_edges,
            calibration=self._calibration,
        )
