"""KITTI metrics against hand-computed values (both averages, an empty frame), and the region masks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mtdepth.pipeline.metrics import (
    METRICS,
    SUMS,
    error_sums,
    frame_mean,
    metric_sums,
    metrics_from_sums,
    pooled,
    rmse_mae_mm,
)
from mtdepth.pipeline.regions import boundary_band, group_masks, group_names, instance_edges, region_masks

MAX_DEPTH = 80.0

# Frame 0: valid pixels gt 2 and 4 (0 and 100 m are invalid); frame 1: four valid pixels;
# frame 2: no valid pixel at all.
GT = torch.tensor([[2.0, 4.0, 0.0, 100.0], [10.0, 10.0, 10.0, 10.0], [0.0, 0.0, 0.0, 0.0]]).view(3, 1, 1, 4)
PRED = torch.tensor([[1.0, 5.0, 3.0, 7.0], [10.0, 10.0, 10.0, 14.0], [5.0, 5.0, 5.0, 5.0]]).view(3, 1, 1, 4)
FIRST_PIXEL = torch.tensor([True, False, False, False]).view(1, 1, 1, 4).expand(3, 1, 1, 4)
GROUPS = torch.cat([torch.ones(3, 1, 1, 4, dtype=torch.bool), FIRST_PIXEL], dim=1)  # "all", "first pixel"


def metric(values: torch.Tensor, name: str) -> float:
    return float(values[..., METRICS.index(name)])


def test_every_metric_of_one_frame_by_hand():
    sums = metric_sums(PRED, GT, GROUPS, MAX_DEPTH)
    assert sums.shape == (3, 2, len(SUMS)) and sums.dtype == torch.float64
    frame0 = metrics_from_sums(sums[0, 0])
    # errors -1, +1 m; inverse errors 1/1 - 1/2 = 0.5, 1/5 - 1/4 = -0.05 per metre; ratios 2, 1.25
    assert metric(frame0, "rmse_mm") == pytest.approx(1000.0)
    assert metric(frame0, "mae_mm") == pytest.approx(1000.0)
    assert metric(frame0, "irmse_per_km") == pytest.approx(1000.0 * math.sqrt((0.25 + 0.0025) / 2))
    assert metric(frame0, "imae_per_km") == pytest.approx(1000.0 * (0.5 + 0.05) / 2)
    assert metric(frame0, "rel") == pytest.approx((1 / 2 + 1 / 4) / 2)
    assert metric(frame0, "delta1") == 0.0  # 1.25 is not < 1.25
    assert metric(frame0, "delta2") == 0.5  # 1.25 < 1.5625, 2 is not
    assert metric(frame0, "delta3") == 0.5  # 2 is not < 1.953125
    frame1 = metrics_from_sums(sums[1, 0])
    assert metric(frame1, "rmse_mm") == pytest.approx(2000.0)  # sqrt(16 / 4) m
    assert metric(frame1, "mae_mm") == pytest.approx(1000.0)
    assert metric(frame1, "rel") == pytest.approx(0.1)
    assert [metric(frame1, f"delta{k}") for k in (1, 2, 3)] == [0.75, 1.0, 1.0]  # 1.4 < 1.5625


def test_pooled_and_per_frame_averages_and_the_empty_frame():
    sums = metric_sums(PRED, GT, GROUPS, MAX_DEPTH)
    assert sums[2, :, -1].tolist() == [0.0, 0.0]  # frame 2 has no valid pixel
    assert all(math.isnan(v) for v in metrics_from_sums(sums[2, 0]).tolist())
    pool, mean = pooled(sums), frame_mean(sums)
    assert pool.shape == mean.shape == (2, len(METRICS))
    # pooled over the 6 valid pixels: squared errors 1 + 1 + 16, absolute 1 + 1 + 4
    assert metric(pool[0], "rmse_mm") == pytest.approx(1000.0 * math.sqrt(18 / 6))
    assert metric(pool[0], "mae_mm") == pytest.approx(1000.0)
    assert metric(pool[0], "delta1") == pytest.approx(3 / 6)
    # per frame then over the frames that have a valid pixel: (1000 + 2000) / 2; frame 2 skipped
    assert metric(mean[0], "rmse_mm") == pytest.approx(1500.0)
    assert metric(mean[0], "rel") == pytest.approx((0.375 + 0.1) / 2)
    # "first pixel" group: frame 0 error 1 m, frame 1 error 0, frame 2 invalid
    assert metric(pool[1], "rmse_mm") == pytest.approx(1000.0 * math.sqrt(1 / 2))
    assert metric(mean[1], "mae_mm") == pytest.approx(500.0)


def test_a_group_no_frame_has_is_nan_in_both_averages():
    empty = torch.zeros(3, 1, 1, 4, dtype=torch.bool)
    sums = metric_sums(PRED, GT, empty, MAX_DEPTH)
    assert torch.isnan(pooled(sums)).all() and torch.isnan(frame_mean(sums)).all()


def test_zero_prediction_gives_finite_inverse_metrics():
    sums = metric_sums(
        torch.zeros(1, 1, 1, 2),
        torch.tensor([5.0, 10.0]).view(1, 1, 1, 2),
        torch.ones(1, 1, 1, 2, dtype=torch.bool),
        MAX_DEPTH,
    )
    values = pooled(sums)[0]
    assert torch.isfinite(values).all()
    assert metric(values, "delta3") == 0.0


def test_pooled_rmse_mae_agrees_with_the_training_loops_error_sums():
    sums = metric_sums(PRED, GT, GROUPS, MAX_DEPTH)
    legacy = rmse_mae_mm(error_sums(PRED, GT, MAX_DEPTH))
    assert metric(pooled(sums)[0], "rmse_mm") == pytest.approx(legacy["rmse_mm"])
    assert metric(pooled(sums)[0], "mae_mm") == pytest.approx(legacy["mae_mm"])


# --- regions ----------------------------------------------------------------------------------------

H, W = 20, 24
R0, R1, C0, C1 = 6, 13, 7, 16  # a rectangle instance, inclusive bounds


def rectangle_labels() -> torch.Tensor:
    labels = torch.zeros(1, 1, H, W, dtype=torch.long)
    labels[..., R0 : R1 + 1, C0 : C1 + 1] = 1
    return labels


@pytest.mark.parametrize("k", [1, 2, 3])
def test_boundary_band_is_exactly_k_pixels_on_both_sides(k):
    band = boundary_band(rectangle_labels(), k)[0, 0].numpy()
    expected = np.zeros((H, W), bool)
    expected[R0 - k : R1 + k + 1, C0 - k : C1 + k + 1] = True  # k pixels outside each edge ...
    expected[R0 + k : R1 - k + 1, C0 + k : C1 - k + 1] = False  # ... and k inside
    for r, c in [(R0 - k, C0 - k), (R0 - k, C1 + k), (R1 + k, C0 - k), (R1 + k, C1 + k)]:
        expected[r, c] = False  # the outer corner pixel is k + 1 steps from the nearest edge pixel
    assert np.array_equal(band, expected)
    middle = (R0 + R1) // 2
    assert band[middle].nonzero()[0].tolist() == [*range(C0 - k, C0 + k), *range(C1 - k + 1, C1 + k + 1)]


def test_edges_lie_between_touching_instances_and_not_at_the_image_border():
    labels = torch.zeros(1, 1, 6, 8, dtype=torch.long)
    labels[..., :, :4] = 1
    labels[..., :, 4:] = 2  # two instances touching along a vertical line, filling the frame
    edges = instance_edges(labels)[0, 0]
    assert edges.nonzero()[:, 1].unique().tolist() == [3, 4]
    assert boundary_band(labels, 2)[0, 0].any(dim=0).nonzero().flatten().tolist() == [2, 3, 4, 5]
    with pytest.raises(ValueError, match=">= 1 pixel"):
        boundary_band(labels, 0)


def test_regions_and_distance_bins():
    labels = rectangle_labels()
    regions = region_masks(labels, 2)
    assert torch.equal(regions["object"], labels > 0)
    assert torch.equal(regions["background"], ~regions["object"] & ~regions["boundary"])
    gt = torch.linspace(1, 79, W).expand(1, 1, H, W)
    edges = (0.0, 20.0, 40.0, 80.0)
    masks = group_masks(gt, labels, 2, edges)
    names = group_names(edges)
    assert names == ["all", "object", "boundary", "background", "d0-20", "d20-40", "d40-80"]
    assert masks.shape == (1, len(names), H, W) and masks[:, 0].all()
    bins = masks[:, 4:]
    assert (bins.sum(dim=1) == 1).all()  # every depth in (0, 80] lies in exactly one bin
    assert torch.equal(bins[:, 1], (gt[:, 0] > 20) & (gt[:, 0] <= 40))
