"""Each loss term on hand-made tensors."""

from __future__ import annotations

import math

import pytest
import torch

from mtdepth.pipeline.losses import MultiTaskLoss, depth_loss, mask_loss, pixel_error

MAX_DEPTH = 80.0


def maps(*rows):
    return torch.tensor(rows, dtype=torch.float32).view(1, 1, len(rows), -1)


GT = maps([10.0, 20.0], [0.0, 90.0])  # two valid pixels; 0 and > max_depth are invalid
PRED = maps([12.0, 19.0], [5.0, 5.0])
OBJECT = maps([1.0, 0.0], [1.0, 0.0])


def test_pixel_errors():
    assert pixel_error(torch.tensor([3.0]), torch.tensor([1.0]), "l1").item() == 2.0
    assert pixel_error(torch.tensor([3.0]), torch.tensor([1.0]), "l2").item() == 4.0
    assert pixel_error(torch.tensor([3.0]), torch.tensor([1.0]), "smooth_l1").item() == 1.5  # |e| - 0.5 past 1 m
    assert pixel_error(torch.tensor([1.5]), torch.tensor([1.0]), "smooth_l1").item() == pytest.approx(0.125)
    with pytest.raises(ValueError, match="depth_error"):
        pixel_error(torch.tensor([1.0]), torch.tensor([1.0]), "l3")


def test_depth_loss_weights_objects_and_ignores_invalid_pixels():
    # valid: (10 vs 12, object) and (20 vs 19, background)
    assert depth_loss(PRED, GT, OBJECT, 0.0, MAX_DEPTH, "l1").item() == pytest.approx((2 + 1) / 2)
    assert depth_loss(PRED, GT, OBJECT, 3.0, MAX_DEPTH, "l1").item() == pytest.approx((4 * 2 + 1) / 2)
    assert depth_loss(PRED, GT, OBJECT, 3.0, MAX_DEPTH, "l2").item() == pytest.approx((4 * 4 + 1) / 2)
    nothing_valid = torch.zeros_like(GT)
    assert depth_loss(PRED, nothing_valid, OBJECT, 3.0, MAX_DEPTH, "l2").item() == 0.0


def test_mask_loss_is_binary_cross_entropy_over_every_pixel():
    logits = maps([0.0, 2.0])
    target = maps([1.0, 0.0])
    expected = (math.log(2) + math.log(1 + math.exp(2))) / 2
    assert mask_loss(logits, target).item() == pytest.approx(expected, rel=1e-6)


def test_total_is_final_plus_weighted_init_and_seg():
    loss = MultiTaskLoss(w_init=0.5, w_obj=3.0, w_seg=1.0, max_depth=MAX_DEPTH, depth_error="l1")
    outputs = {"final": PRED, "init": PRED + 1, "mask_logits": maps([0.0, 0.0], [0.0, 0.0])}
    terms = loss(outputs, GT, OBJECT)
    assert terms["final"].item() == pytest.approx(4.5)
    assert terms["init"].item() == pytest.approx((4 * 3 + 0) / 2)  # 13 vs 10 on the object, 20 vs 20
    assert terms["seg"].item() == pytest.approx(math.log(2))
    assert terms["loss"].item() == pytest.approx(4.5 + 0.5 * 6.0 + math.log(2))


def test_single_output_net_has_no_seg_term():
    loss = MultiTaskLoss(w_init=0.5, w_obj=0.0, w_seg=1.0, max_depth=MAX_DEPTH, depth_error="l2")
    terms = loss({"final": PRED, "init": PRED, "mask_logits": None}, GT, OBJECT)
    assert terms["seg"].item() == 0.0
    assert terms["loss"].item() == pytest.approx(1.5 * (4 + 1) / 2)
