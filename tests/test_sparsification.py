"""Sparsification curves, AUSE / AURG, calibration bins and the free uncertainty maps, on hand-made data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mtdepth.pipeline.evaluation import EvalSettings, evaluate_batches
from mtdepth.pipeline.sparsification import (
    FRACTIONS,
    STEPS,
    SparsificationSettings,
    SparsificationTracker,
    area,
    curves,
    distance_map,
    spread_map,
)

EDGES = (0.0, 0.5, 1.0, 2.0, math.inf)


def close(value):
    return pytest.approx(value, rel=1e-5)  # float32 errors


def settings(**changes) -> SparsificationSettings:
    return SparsificationSettings(
        **{
            "max_depth": 80.0,
            "spread_window": 3,
            "calibration_edges": EDGES,
            "pooled_pixels": 500,
            "seed": 0,
            **changes,
        }
    )


def frames(batch=3, h=24, w=40, seed=0):
    """(pred, gt, sparse): GT 5-60 m, heteroscedastic errors (std grows with depth), 5% samples, a hole in GT."""
    g = torch.Generator().manual_seed(seed)
    gt = 5 + 55 * torch.rand(batch, 1, h, w, generator=g)
    gt[:, :, :3] = 0  # no ground truth in the top rows
    pred = gt + torch.randn(batch, 1, h, w, generator=g) * gt / 10
    sparse = torch.where(torch.rand(batch, 1, h, w, generator=g) < 0.05, gt, torch.zeros_like(gt))
    return pred, gt, sparse


def test_fractions_are_mono_uncertaintys_fifty_steps():
    assert STEPS == 50 and FRACTIONS[0] == 0 and FRACTIONS[1] == 0.02 and FRACTIONS[-1] == 0.98


def test_area_appends_zero_at_one_and_uses_the_trapezoid_rule():
    constant = np.full(STEPS, 2.0)
    assert area(constant) == pytest.approx(2.0 * 0.99)  # 0.98 of full height, then a half step down to 0
    ramp = np.array(FRACTIONS)
    assert area(ramp) == pytest.approx(0.98**2 / 2 + 0.02 * 0.98 / 2)


def test_a_perfect_confidence_gives_the_oracle_curve_and_ause_zero():
    pred, gt, sparse = frames()
    tracker = SparsificationTracker(settings())
    error = (pred - gt).abs()
    tracker.add(pred, gt, sparse, torch.log(error.clamp_min(1e-12)))  # exp(log_scale) = |error|
    result = tracker.result()
    assert result.methods == ("learned", "distance", "spread")
    np.testing.assert_array_equal(result.frame_mean[1], result.frame_mean[0])  # learned == oracle
    np.testing.assert_array_equal(result.pooled[1], result.pooled[0])
    for average in ("frame_mean", "pooled"):
        learned = result.areas(average)["learned"]
        assert learned["ause_rmse_mm"] == 0 and learned["ause_mae_mm"] == 0
        assert learned["aurg_rmse_mm"] > 0


def test_the_oracle_curve_decreases_and_never_exceeds_a_method():
    rng = np.random.default_rng(1)
    error = rng.standard_normal(5000).astype(np.float32)
    found = curves(error, [rng.random(5000).astype(np.float32)], rng)
    assert found.shape == (2, 2, STEPS)
    assert np.all(np.diff(found[0], axis=-1) <= 1e-12)
    assert np.all(found[0] <= found[1] + 1e-12)
    assert found[0, 0, 0] == pytest.approx(np.sqrt(np.mean(error.astype(np.float64) ** 2)))
    assert found[0, 1, 0] == pytest.approx(np.mean(np.abs(error.astype(np.float64))))


def test_a_constant_confidence_gives_the_random_curve():
    rng = np.random.default_rng(2)
    error = (rng.standard_normal(200_000) * rng.uniform(0.1, 3, 200_000)).astype(np.float32)
    found = curves(error, [np.ones_like(error)], rng)
    full = found[0, :, 0]
    # ties are removed in a random order: the curve stays at the full set's error (the random curve)
    np.testing.assert_allclose(found[1, :, :40], np.broadcast_to(full[:, None], (2, 40)), rtol=0.02)
    aurg = full - area(found[1])
    # mono-uncertainty's convention: random order has AURG = 1% of the error; this one is within 0.5% of it
    assert np.all(np.abs(aurg - full / (2 * STEPS)) < 0.005 * full)


def test_ties_are_not_kept_whole_like_a_percentile_threshold():
    """A map whose top 30% are tied still removes exactly floor(f N) pixels at each fraction."""
    error = np.arange(1000, dtype=np.float32)
    tied = np.where(error >= 700, 5.0, error / 1000).astype(np.float32)
    found = curves(error, [tied], np.random.default_rng(0))
    assert found[1, 1, 1] < found[1, 1, 0]  # 2% removed from inside the tie: the mean falls
    np.testing.assert_allclose(found[1, 1, 15:], found[0, 1, 15:])  # past 30% it removes as the oracle does


def test_more_informative_uncertainty_has_lower_ause():
    pred, gt, sparse = frames(seed=3)
    tracker = SparsificationTracker(settings())
    noise = torch.rand(gt.shape, generator=torch.Generator().manual_seed(4))
    tracker.add(pred, gt, sparse, torch.log(gt / 10 + 0.01 * noise))  # the errors' true scale
    areas = tracker.result().areas("frame_mean")
    assert areas["learned"]["ause_rmse_mm"] < min(areas["distance"]["ause_rmse_mm"], areas["spread"]["ause_rmse_mm"])
    assert all(a["ause_rmse_mm"] >= 0 and a["ause_mae_mm"] >= 0 for a in areas.values())


def test_distance_map_on_a_hand_made_frame():
    sparse = np.zeros((5, 6), np.float32)
    sparse[1, 1] = 10.0
    sparse[4, 5] = 20.0
    found = distance_map(sparse)
    assert found[1, 1] == 0 and found[4, 5] == 0
    assert found[1, 2] == pytest.approx(1.0, abs=1e-3) and found[2, 2] == pytest.approx(math.sqrt(2), abs=1e-3)
    assert found[0, 5] == pytest.approx(min(math.hypot(1, 4), 4.0), abs=1e-3)
    assert np.isinf(distance_map(np.zeros((4, 4), np.float32))).all()


def test_spread_map_on_a_hand_made_frame():
    sparse = np.zeros((5, 7), np.float32)
    sparse[2, 2], sparse[2, 3], sparse[1, 3] = 10.0, 12.0, 17.0
    found = spread_map(sparse, window=3)
    assert found[2, 2] == pytest.approx(np.std([10.0, 12.0, 17.0]))  # all three in its 3x3 window
    assert np.isinf(found[3, 1]) and np.isinf(found[3, 4])  # one sample in the window: fewer than 2, unknown
    assert np.isinf(found[0, 6]) and np.isinf(found[4, 0])  # none
    assert found[3, 3] == pytest.approx(1.0)  # 10 and 12
    assert found[1, 4] == pytest.approx(2.5)  # 12 and 17; (2, 2) is two columns away
    edge = np.zeros((4, 4), np.float32)
    edge[0, 0], edge[0, 1] = 30.0, 40.0
    assert spread_map(edge, window=5)[0, 0] == pytest.approx(5.0)  # zero padding: no samples outside the frame


def test_calibration_bins_on_hand_made_data():
    gt = torch.full((1, 1, 2, 4), 10.0)
    predicted = torch.tensor([[0.2, 0.4, 0.6, 0.8], [1.5, 3.0, 5.0, 0.1]]).view(1, 1, 2, 4)
    errors = torch.tensor([[0.3, -0.3, 1.0, -0.4], [-3.0, 3.0, 6.0, 0.0]]).view(1, 1, 2, 4)
    tracker = SparsificationTracker(settings(calibration_edges=(0.0, 0.5, 1.0, 2.0, 4.0)))
    tracker.add(gt + errors, gt, torch.zeros_like(gt), predicted.log())
    rows = tracker.result().calibration_rows()
    assert [(r["lo_m"], r["hi_m"], r["pixels"]) for r in rows] == [
        (0.0, 0.5, 3),
        (0.5, 1.0, 2),
        (1.0, 2.0, 1),
        (2.0, 4.0, 1),
    ]  # 5.0 m is beyond the last edge: in no bin
    first = rows[0]
    assert first["predicted_m"] == close(0.7 / 3) and first["mae_m"] == close(0.2)
    assert first["rmse_m"] == close(math.sqrt(0.18 / 3)) and first["ratio"] == close(0.6 / 0.7)
    assert [r["ratio"] for r in rows[1:]] == [close(1.0), close(2.0), close(1.0)]
    assert tracker.result().worst_calibration_factor() == close(2.0)


def test_without_log_scale_only_the_free_maps_and_no_calibration():
    pred, gt, sparse = frames()
    tracker = SparsificationTracker(settings())
    tracker.add(pred, gt, sparse, None)
    result = tracker.result()
    assert result.methods == ("distance", "spread") and result.calibration_rows() == []
    assert result.worst_calibration_factor() is None
    row = result.curve_rows("frame_mean")[0]
    assert list(row) == [
        "fraction",
        "oracle_rmse_mm",
        "oracle_mae_mm",
        "distance_rmse_mm",
        "distance_mae_mm",
        "spread_rmse_mm",
        "spread_mae_mm",
        "random_rmse_mm",
        "random_mae_mm",
    ]
    assert row["oracle_rmse_mm"] == close(row["distance_rmse_mm"]) == close(row["random_rmse_mm"])  # none removed


def test_pooled_subsample_is_bounded_and_seeded():
    pred, gt, sparse = frames()
    results = []
    for _ in range(2):
        tracker = SparsificationTracker(settings(pooled_pixels=100))
        tracker.add(pred, gt, sparse, None)
        results.append(tracker.result())
    assert results[0].areas("pooled") == results[1].areas("pooled")
    assert results[0].areas("frame_mean") == results[1].areas("frame_mean")
    other = SparsificationTracker(settings(pooled_pixels=100, seed=1))
    other.add(pred, gt, sparse, None)
    assert other.result().areas("pooled") != results[0].areas("pooled")


def test_the_evaluator_tracks_the_final_output_and_its_log_scale():
    pred, gt, sparse = frames(batch=4)
    batches = [
        {
            "sparse": sparse[i : i + 2],
            "depth": gt[i : i + 2],
            "gt_mask": torch.zeros_like(gt[i : i + 2]),
            "index": torch.tensor([i, i + 1]),
        }
        for i in (0, 2)
    ]

    def predict(batch):
        rows = batch["index"]
        return {"final": pred[rows], "log_scale": torch.log((pred[rows] - gt[rows]).abs().clamp_min(1e-12))}

    ev = EvalSettings(max_depth=80.0, boundary_px=1, distance_edges=(0.0, 80.0), sparsification=settings())
    result = evaluate_batches(batches, predict, ("final",), ev)
    assert result.sparsification.frames == 4
    assert result.sparsification.areas("frame_mean")["learned"]["ause_rmse_mm"] == 0
    plain = evaluate_batches(batches, predict, ("final",), EvalSettings(80.0, 1, (0.0, 80.0)))
    assert plain.sparsification is None
