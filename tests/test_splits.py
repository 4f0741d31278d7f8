"""Train/val splits: sizes, determinism, and scenes never straddling the two sides."""

import numpy as np

from mtdepth.pipeline.splits import TRAIN, VAL, random_split, scene_split


def test_random_split_is_80_20_and_seeded():
    split = random_split(300, 0.2, seed=0)
    assert split.dtype == np.uint8 and np.count_nonzero(split == VAL) == 60
    assert np.array_equal(split, random_split(300, 0.2, seed=0))
    assert not np.array_equal(split, random_split(300, 0.2, seed=1))


def test_scene_split_keeps_each_scene_on_one_side():
    scenes = [s for s in ("Scene01", "Scene02", "Scene06", "Scene18", "Scene20") for _ in range(60)]
    split = scene_split(scenes, 0.2, seed=3)
    for name in set(scenes):
        sides = {int(split[i]) for i, s in enumerate(scenes) if s == name}
        assert len(sides) == 1
    assert np.count_nonzero(split == VAL) == 60  # one scene of five


def test_scene_split_never_empties_training():
    scenes = ["Scene01"] * 5 + ["Scene02"] * 5
    split = scene_split(scenes, 0.99, seed=0)
    assert np.count_nonzero(split == TRAIN) == 5


def test_zero_fraction_is_all_training():
    assert not random_split(10, 0.0, 0).any() and not scene_split(["a"] * 4, 0.0, 0).any()
