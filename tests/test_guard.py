"""The do-no-harm guard: held-out samples, and the per-frame choice between the net and its fill."""

import math

import numpy as np

from mtdepth.pipeline.guard import Guard, holdout, judge


def frame(seed=0, shape=(40, 60)):
    rng = np.random.default_rng(seed)
    depth = rng.uniform(2.0, 40.0, shape).astype(np.float32)
    sparse = np.where(rng.random(shape) < 0.2, depth, 0).astype(np.float32)
    return depth, sparse


def test_holdout_takes_a_seeded_fraction_of_the_samples_only():
    _, sparse = frame()
    held = holdout(sparse, Guard(holdout=0.25), key="a")
    assert held.dtype == bool and not (held & (sparse == 0)).any()
    assert 0.18 < held.sum() / (sparse > 0).sum() < 0.32
    assert np.array_equal(held, holdout(sparse, Guard(holdout=0.25), key="a"))
    assert not np.array_equal(held, holdout(sparse, Guard(holdout=0.25), key="b"))


def test_a_net_better_than_its_fill_is_kept_and_a_worse_one_is_not():
    depth, sparse = frame()
    held = holdout(sparse, Guard(), key="f")
    fill = depth * 1.10  # 10% off everywhere
    verdict = judge(sparse, held, depth * 1.02, fill, Guard())
    assert verdict.keep_net and verdict.choice == "net" and verdict.net_mae < verdict.fill_mae
    verdict = judge(sparse, held, depth * 1.30, fill, Guard())
    assert not verdict.keep_net and verdict.choice == "fill"
    assert verdict.held == held.sum()


def test_the_margin_tolerates_a_net_slightly_worse_than_the_fill():
    depth, sparse = frame()
    held = holdout(sparse, Guard(), key="f")
    fill, net = depth * 1.10, depth * 1.105  # the net's error is 1.05x the fill's
    assert judge(sparse, held, net, fill, Guard(margin=1.1)).keep_net
    assert not judge(sparse, held, net, fill, Guard(margin=1.0)).keep_net


def test_too_few_held_out_samples_keep_the_net():
    depth, sparse = frame()
    held = np.zeros_like(sparse, dtype=bool)
    held[np.nonzero(sparse)[0][:5], np.nonzero(sparse)[1][:5]] = True
    verdict = judge(sparse, held, depth * 3, depth, Guard(min_held=20))
    assert verdict.keep_net and verdict.held == 5 and math.isnan(verdict.net_mae)
