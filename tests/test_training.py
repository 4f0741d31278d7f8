"""The training loop over plain batches: schedule, overfitting a tiny batch, accumulation, NaN stop, rank samplers,
left-right mirroring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtdepth.cache.sampling import BlockSampler, RankTrainSampler
from mtdepth.cache.dataset import ShardGroupedSampler
from mtdepth.pipeline.losses import MultiTaskLoss
from mtdepth.pipeline.models import MTDepth, UNetBaseline
from mtdepth.pipeline.training import NonFiniteLoss, StepSettings, Trainer, evaluate_sums, lr_at, mirror

CPU = torch.device("cpu")
H, W = 32, 64


def street_batch(batch: int = 2, seed: int = 0) -> dict:
    """A smooth depth ramp with a nearer box 'object', ~10% sparse samples, a sky band."""
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.linspace(0, 1, H), torch.linspace(0, 1, W), indexing="ij")
    obj = ((xs > 0.3) & (xs < 0.6) & (ys > 0.4)).float()
    depth = ((5 + 30 * ys + 10 * xs) * (1 - 0.5 * obj)).expand(batch, 1, H, W).clone()
    depth[:, :, :4] = 0  # sky
    keep = (torch.rand(batch, 1, H, W, generator=g) < 0.1).float()
    sparse = depth * keep
    return {
        "rgb": torch.rand(batch, 3, H, W, generator=g),
        "sparse": sparse,
        "valid": (sparse > 0).float(),
        "mask": obj.expand(batch, 1, H, W).clone(),
        "depth": depth,
        "gt_mask": obj.expand(batch, 1, H, W).clone(),
    }


def settings(**changes) -> StepSettings:
    return StepSettings(
        **{"device": CPU, "lr": 3e-3, "warmup_steps": 0, "schedule": "constant", "log_every": 1000, **changes}
    )


def small_mtdepth() -> MTDepth:
    return MTDepth(channels=(8, 16, 32), attention_size=(4, 8), fusion_channels=32, head_channels=16)


def test_learning_rate_warms_up_then_follows_a_cosine_to_its_floor():
    s = StepSettings(device=CPU, lr=1e-3, schedule="cosine", warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(0, 110, s) == pytest.approx(1e-4)
    assert lr_at(9, 110, s) == pytest.approx(1e-3)
    assert lr_at(60, 110, s) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))
    assert lr_at(110, 110, s) == pytest.approx(1e-4) and lr_at(500, 110, s) == pytest.approx(1e-4)
    assert lr_at(70, 110, StepSettings(device=CPU, lr=1e-3, schedule="constant", warmup_steps=10)) == 1e-3


@pytest.mark.parametrize("make", [small_mtdepth, lambda: UNetBaseline(channels=(8, 16, 32))], ids=["mtdepth", "unet"])
def test_a_tiny_batch_overfits(make):
    torch.manual_seed(0)
    model = make()
    trainer = Trainer(model, torch.optim.Adam(model.parameters(), lr=3e-3), MultiTaskLoss(), settings())
    batch = street_batch()
    losses = [trainer.train_epoch([batch], step, 1000, 1).losses["loss"] for step in range(60)]
    assert losses[-1] < losses[0] / 10, losses[::10]


def test_mirror_flips_every_map_of_the_chosen_frames_and_nothing_else():
    batch = {**street_batch(8, seed=1), "fill": torch.rand(8, 1, H, W)}
    out = mirror(batch, 0.5, torch.Generator().manual_seed(3))
    chosen = torch.rand(8, generator=torch.Generator().manual_seed(3)) < 0.5
    assert 0 < int(chosen.sum()) < 8  # this seed mirrors some frames, not all
    for key, value in batch.items():
        for j in range(8):
            expected = value[j].flip(-1) if chosen[j] else value[j]
            assert torch.equal(out[key][j], expected), (key, j)
    assert mirror(batch, 0.0, torch.Generator().manual_seed(3)) is batch
    assert all(torch.equal(mirror(batch, 1.0, torch.Generator())[k], v.flip(-1)) for k, v in batch.items())


def test_flips_depend_on_the_seed_and_the_epochs_first_step_only():
    """The same (seed, first step) trains to the same weights (a resumed epoch repeats its flips); another seed
    mirrors other frames and so trains to other weights."""

    def weights_after(seed: int, first_step: int) -> torch.Tensor:
        torch.manual_seed(0)
        model = UNetBaseline(channels=(4, 8))
        trainer = Trainer(
            model, torch.optim.SGD(model.parameters(), lr=1e-2), MultiTaskLoss(), settings(flip=0.5, seed=seed)
        )
        trainer.train_epoch([street_batch(4, seed=k) for k in range(3)], first_step, 1000, 3)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    assert torch.equal(weights_after(0, 6), weights_after(0, 6))
    assert not torch.equal(weights_after(0, 6), weights_after(1, 6))
    assert not torch.equal(weights_after(0, 6), weights_after(0, 9))


def test_accumulating_two_half_batches_equals_one_full_batch_without_batch_norm_drift():
    """With BN in eval mode (frozen statistics) accumulation is exactly a larger batch."""
    batch = street_batch(4)
    halves = [{k: v[:2] for k, v in batch.items()}, {k: v[2:] for k, v in batch.items()}]
    results = []
    for batches, accumulate in (([batch], 1), (halves, 2)):
        torch.manual_seed(0)
        model = UNetBaseline(channels=(4, 8))
        trainer = Trainer(
            model,
            torch.optim.SGD(model.parameters(), lr=1e-3),
            MultiTaskLoss(w_obj=0.0),
            settings(accumulate=accumulate),
        )
        for m in model.modules():  # batch statistics differ between halves: freeze BN
            if isinstance(m, torch.nn.BatchNorm2d):
                m.train = lambda mode=True, m=m: torch.nn.Module.train(m, False)
        stats = trainer.train_epoch(batches, 0, 1, len(batches))
        assert stats.steps == 1
        results.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.allclose(results[0], results[1], atol=1e-6)


def test_non_finite_loss_stops_training():
    model = UNetBaseline(channels=(4, 8))
    trainer = Trainer(model, torch.optim.Adam(model.parameters()), MultiTaskLoss(), settings(log_every=1))
    good = street_batch()
    bad = {**good, "rgb": good["rgb"] * float("inf")}  # the net's output turns NaN
    with pytest.raises(NonFiniteLoss, match="training loss became nan by step 2"):
        trainer.train_epoch([good, bad], 0, 2, 2)


def test_evaluate_sums_counts_valid_pixels_of_both_outputs():
    model = UNetBaseline(channels=(4, 8), init_depth=10.0)
    batch = street_batch()
    sums = evaluate_sums(model, [batch, batch], settings(), max_depth=80.0)
    valid = int(((batch["depth"] > 0) & (batch["depth"] <= 80)).sum())
    assert sums["init"][2] == sums["final"][2] == 2 * valid


def test_rank_samplers_split_global_batches_and_blocks():
    shards = np.repeat(np.arange(4), 5)  # 20 positions in 4 shards
    single = list(ShardGroupedSampler(shards, shuffle=True, seed=3))
    ranks = [RankTrainSampler(shards, seed=3, batch=2, rank=r, world=2) for r in range(2)]
    orders = [list(r) for r in ranks]
    assert len(orders[0]) == len(orders[1]) == len(ranks[0]) == 10
    interleaved = [p for k in range(5) for r in range(2) for p in orders[r][2 * k : 2 * k + 2]]
    assert interleaved == single  # DDP global batch k == one process's micro-batches 2k, 2k+1
    padded = [list(RankTrainSampler(shards[:18], seed=3, batch=4, rank=r, world=2)) for r in range(2)]
    assert len(padded[0]) == len(padded[1]) == 12 and set(padded[0] + padded[1]) == set(range(18))
    assert list(RankTrainSampler(shards, seed=3, batch=2)) == single
    blocks = [list(BlockSampler(7, r, 2)) for r in range(2)]
    assert blocks == [[0, 1, 2], [3, 4, 5, 6]]


def test_compile_is_chosen_for_long_runs_only():
    from mtdepth.pipeline.training import COMPILE_MIN_STEPS, use_compile

    assert use_compile("on", 1) and not use_compile("off", 10**6)
    assert not use_compile("auto", COMPILE_MIN_STEPS - 1)  # the tests' runs: never compiled
    import shutil

    assert use_compile("auto", COMPILE_MIN_STEPS) == any(shutil.which(c) for c in ("cc", "gcc", "clang"))
