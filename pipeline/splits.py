"""Train/validation splits of a frame list: random (the paper's 80/20) or whole scenes per side."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mtdepth.pipeline.sparse import stable_rng

TRAIN, VAL = 0, 1


def random_split(n_frames: int, val_fraction: float, seed: int) -> np.ndarray:
    """uint8 (n,) of TRAIN/VAL: exactly round(val_fraction * n) frames drawn at random for validation."""
    split = np.full(n_frames, TRAIN, dtype=np.uint8)
    n_val = int(round(val_fraction * n_frames))
    split[stable_rng(seed, "split/random").permutation(n_frames)[:n_val]] = VAL
    return split


def scene_split(scenes: Sequence[str], val_fraction: float, seed: int) -> np.ndarray:
    """uint8 (n,) of TRAIN/VAL where every frame of a scene lands on one side.

    Scenes are taken in a seeded order into validation until it holds at least
    `val_fraction` of the frames (never every scene: at least one stays for training).
    Conditions of one scene share its geometry, so they stay together.
    """
    scenes = list(scenes)
    split = np.full(len(scenes), TRAIN, dtype=np.uint8)
    if val_fraction == 0:
        return split
    names = sorted(set(scenes))
    order = [names[i] for i in stable_rng(seed, "split/scene").permutation(len(names))]
    counts = {name: scenes.count(name) for name in names}
    chosen, held = set(), 0
    for name in order[:-1]:
        if held >= val_fraction * len(scenes):
            break
        chosen.add(name)
        held += counts[name]
    split[[s in chosen for s in scenes]] = VAL
    return split
