"""The evaluator: any predictor over any iterable of batches, scored per frame, output and pixel group.

    result = evaluate_batches(batches, predict, outputs=("init", "final"), settings=EvalSettings(...))
    result.table("pooled")      # {output: {group: {metric: value, "pixels": n}}}
    result.table("frame_mean")  # {output: {group: {metric: value, "frames": n}}}
    result.frame_rows()         # one flat dict per frame

A batch is a dict as cache.dataset yields it (rgb, sparse, valid, mask, depth, gt_mask, index);
`predict(batch)` returns {output: (B, 1, H, W) metres}, and "log_scale" (B, 1, H, W) when the model
predicts its own error (a Laplace scale b = exp(log_scale), metres). Regions come from gt_mask. Sums are
kept per frame in float64, so both averages and any regrouping come from the same numbers. With
`settings.sparsification`, the scored output (SCORED) is also ranked by its uncertainty maps
(pipeline/sparsification.py: learned when present, distance and spread always): `result.sparsification`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from mtdepth.pipeline.metrics import METRICS, frame_mean, metric_sums, metrics_from_sums, pooled
from mtdepth.pipeline.regions import REGION_CODES, group_masks, group_names
from mtdepth.pipeline.sparsification import Sparsification, SparsificationSettings, SparsificationTracker

AVERAGES = ("pooled", "frame_mean")
PANEL_KEYS = ("rgb", "depth", "sparse", "mask", "gt_mask")
SCORED = "final"  # the output every source has: the one sparsification ranks


@dataclass(frozen=True)
class EvalSettings:
    max_depth: float  # valid pixels: 0 < GT <= max_depth
    boundary_px: int
    distance_edges: tuple[float, ...]
    device: torch.device = torch.device("cpu")
    panel_positions: frozenset[int] = frozenset()  # positions (0-based, in batch order) to keep images of
    sparsification: SparsificationSettings | None = None  # None: no sparsification curves


@dataclass
class Evaluation:
    """Per-frame sums of every output and group, plus the images of the panel frames."""

    outputs: tuple[str, ...]
    groups: list[str]
    rows: list[int] = field(default_factory=list)  # store row of each scored frame
    sums: dict[str, torch.Tensor] = field(default_factory=dict)  # output -> (F, G, len(SUMS)) float64
    panels: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)  # position -> (H, W[, 3]) images
    sparsification: Sparsification | None = None  # of SCORED; None when not asked for or no valid pixel

    @property
    def count(self) -> int:
        return len(self.rows)

    def table(self, average: str) -> dict:
        """{output: {group: {metric: float or None, and "pixels" (pooled) or "frames" (frame_mean)}}}."""
        result = {}
        for output in self.outputs:
            sums = self.sums[output]
            values = pooled(sums) if average == "pooled" else frame_mean(sums)
            counts = sums[..., -1].sum(0) if average == "pooled" else (sums[..., -1] > 0).sum(0)
            key = "pixels" if average == "pooled" else "frames"
            result[output] = {group: {**_named(values[g]), key: int(counts[g])} for g, group in enumerate(self.groups)}
        return result

    def frame_rows(self) -> list[dict]:
        """One dict per frame: row, then '<group>.pixels' and '<output>.<group>.<metric>'."""
        per_frame = {output: metrics_from_sums(sums) for output, sums in self.sums.items()}
        pixels = next(iter(self.sums.values()))[..., -1]
        rows = []
        for f, row in enumerate(self.rows):
            entry: dict = {"row": row}
            entry.update({f"{group}.pixels": int(pixels[f, g]) for g, group in enumerate(self.groups)})
            for output in self.outputs:
                for g, group in enumerate(self.groups):
                    entry.update({f"{output}.{group}.{k}": v for k, v in _named(per_frame[output][f, g]).items()})
            rows.append(entry)
        return rows


def _named(values: torch.Tensor) -> dict[str, float | None]:
    """METRICS -> values, None for NaN (JSON has no NaN)."""
    return {name: (None if math.isnan(v) else v) for name, v in zip(METRICS, values.tolist())}


def region_codes(groups: torch.Tensor, names: list[str]) -> torch.Tensor:
    """(G, H, W) group masks of one frame, named `names` -> (H, W) index into REGION_CODES
    (boundary drawn over object)."""
    codes = torch.zeros(groups.shape[1:], dtype=torch.uint8, device=groups.device)
    for code, region in enumerate(REGION_CODES[1:], start=1):
        codes[groups[names.index(region)]] = code
    return codes


@torch.inference_mode()
def evaluate_batches(
    batches: Iterable[dict],
    predict: Callable[[dict], dict],
    outputs: tuple[str, ...],
    settings: EvalSettings,
    on_batch: Callable[[int], None] = lambda frames: None,
) -> Evaluation:
    """Score `predict` on every batch; `on_batch(frames)` after each (a progress bar's update)."""
    result = Evaluation(outputs=outputs, groups=group_names(settings.distance_edges))
    chunks: dict[str, list[torch.Tensor]] = {output: [] for output in outputs}
    tracker = SparsificationTracker(settings.sparsification) if settings.sparsification else None
    for batch in batches:
        batch = {k: v.to(settings.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
        gt = batch["depth"]
        groups = group_masks(gt, batch["gt_mask"].round().long(), settings.boundary_px, settings.distance_edges)
        predictions = predict(batch)
        for output in outputs:
            chunks[output].append(metric_sums(predictions[output], gt, groups, settings.max_depth).cpu())
        if tracker is not None:  # batch["sparse"]: the input the source read (a filter changes it in place)
            tracker.add(predictions[SCORED], gt, batch["sparse"], predictions.get("log_scale"))
        first = result.count
        result.rows.extend(int(i) for i in batch["index"])
        for j, position in enumerate(range(first, result.count)):
            if position in settings.panel_positions:
                images = {k: batch[k][j].float().cpu().numpy() for k in PANEL_KEYS}
                images.update({output: predictions[output][j, 0].float().cpu().numpy() for output in outputs})
                images["regions"] = region_codes(groups[j], result.groups).cpu().numpy()
                result.panels[position] = images
        on_batch(len(gt))
    result.sums = {output: torch.cat(parts) for output, parts in chunks.items()}
    result.sparsification = tracker.result() if tracker is not None else None
    return result
