"""The realised density of a store's `sparse` array: samples per pixel, per valid-depth pixel, per pattern."""

from __future__ import annotations

import numpy as np

from mtdepth.cache.reader import StoreReader, read_frames
from mtdepth.params import SparseParams
from mtdepth.pipeline.patterns import frame_pattern
from mtdepth.pipeline.vkitti2 import FRAME_DIGITS


def sparse_density(reader: StoreReader) -> dict | None:
    """{'pattern', 'of_pixels', 'of_valid', 'by_pattern': {pattern: {'frames', 'of_pixels'}}}, or None
    without committed sparse and depth.

    Reads `sparse` and `depth` one shard at a time. A store made before patterns existed is `uniform`.
    """
    if not (reader.is_committed("sparse") and reader.is_committed("depth")):
        return None
    provenance = reader.provenance("sparse")
    pattern = provenance.get("pattern", "uniform")
    frames = reader.frames
    keys = [
        f"{s}/{c}/{cam}/{i:0{FRAME_DIGITS}d}"
        for s, c, cam, i in zip(frames.scene, frames.condition, frames.camera, frames.index)
    ]
    if pattern == "mixed":
        params = SparseParams(pattern="mixed", mixed=tuple(provenance["mixed"]))
        drawn = [frame_pattern(params, provenance["seed"], key) for key in keys]
    else:
        drawn = [pattern] * len(keys)
    sparse_array, depth_array = reader.array("sparse"), reader.array("depth")
    samples = np.zeros(len(keys), dtype=np.int64)
    valid = np.zeros(len(keys), dtype=np.int64)
    for shard in range(reader.n_shards):
        start = shard * reader.shard_frames
        stop = min(start + reader.shard_frames, reader.n_frames)
        sparse = read_frames(reader.url, "sparse", sparse_array, start, stop)
        samples[start:stop] = np.count_nonzero(sparse, axis=(1, 2))
        valid[start:stop] = np.count_nonzero(read_frames(reader.url, "depth", depth_array, start, stop), axis=(1, 2))
    pixels = reader.height * reader.width
    by_pattern = {}
    for name in sorted(set(drawn)):
        chosen = np.array([d == name for d in drawn])
        share = float(samples[chosen].sum() / (chosen.sum() * pixels))
        by_pattern[name] = {"frames": int(chosen.sum()), "of_pixels": share}
    return {
        "pattern": pattern,
        "of_pixels": float(samples.sum() / (len(keys) * pixels)),
        "of_valid": float(samples.sum() / max(int(valid.sum()), 1)),
        "by_pattern": by_pattern,
    }
