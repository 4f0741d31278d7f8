"""The store's schema: array names, dtypes, per-frame shapes, units, chunking and codecs.

Layout (N frames of H x W; row i of every array is frame i):

    frames/scene, frames/condition, frames/camera   str     (N,)
    frames/index                                     int64   (N,)
    frames/split                                     uint8   (N,)  SPLIT_CODES
    rgb                                              uint8   (N, H, W, 3)
    depth, sparse                                    uint16  (N, H, W)  attr `scale` metres/unit, 0 = none
    mask/yolo, mask/gt                               uint8   (N, H, W)  0/1 merged foreground

Each data array is a group holding its committed version (cache/layout.py: copy-on-write,
the group's attributes are the commit record). Frame arrays are one chunk each. Data arrays hold one frame per chunk and `shard_frames`
frames per shard (one file per shard). Every chunk, frame columns included, ends with a
crc32c checksum, so a flipped byte is an error on read, never silently wrong pixels.

Codecs were chosen by `python -m bench.bench_store --repeats 5`: 64 frames at 256x512 in
one shard, zarr in memory, one codec thread, best of 5; ratio = raw / stored, MB/s of raw
bytes (speeds vary +-30% run to run on a shared machine; sizes do not). Main columns: the
project's synthetic dataset (`mtdepth synth`, 2 scenes x 4 conditions x 8 frames, masks
from instance ground truth); "street" columns: the bench's own noisier drawn frames
(`--street`), a check that the ranking holds on harder images:

    array   codec (+ crc32c)               KiB/frame  ratio  enc MB/s  dec MB/s  street KiB  ratio
    rgb     zstd 1                             141.0   2.72       297       659       312.3   1.23
    rgb     zstd 3                             127.7   3.01       189       634       310.2   1.24
    rgb     zstd 9                             120.0   3.20        75       977       306.2   1.25
    rgb     blosc lz4 5                        197.8   1.94       682      1260       384.0   1.00
    rgb     blosc zstd 1                       139.4   2.76       285       675       294.8   1.30
    rgb     blosc zstd 3                       121.4   3.16       134       838       290.5   1.32  used
    depth   zstd 3                              3.65   70.2       734      1028        13.0   19.8  used
    depth   blosc zstd 3 + shuffle              5.02   51.0       577      1006        12.2   21.0
    depth   shuffle + zstd 3 (numcodecs)        4.33   59.1       440       597        11.8   21.8
    sparse  zstd 3                              16.6   15.5       694       913        14.5   17.7  used
    sparse  blosc zstd 3 + shuffle              23.2   11.1       204       543        21.6   11.8
    mask    zstd 3                              1.21    106       503       722        0.31    407
    mask    packbits + zstd 3 (numcodecs)       0.46    276       420       606        0.16    817
    mask    blosc zstd 3 + bitshuffle           0.49    261       423       526        0.18    714  used

- rgb: blosc zstd 3 stores within 1% of zstd 9 at nearly twice its encode speed, and 11-14%
  less than zstd 1 (a few ms per frame to encode, far below a YOLO pass; decodes at >500
  MB/s); lz4 stores 40-60% more.
- depth and sparse: plain zstd 3. Byte shuffle helps only the noisy drawn depth (6%) and
  costs 19-38% on the dataset's; on sparse maps (95% zeros) it costs 40-50% everywhere.
- masks: under 0.5 KiB per frame either way; blosc bitshuffle is within 6% of packbits,
  which is a numcodecs codec outside the zarr v3 spec.
Every chain uses only zarr v3 core codecs (blosc, zstd, crc32c), so any zarr v3 reader opens the store.

Bump SCHEMA_VERSION whenever a name, dtype, unit or codec here changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from zarr.abc.codec import BytesBytesCodec
from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec

from mtdepth.errors import MtDepthError

SCHEMA_VERSION = 2  # 2: copy-on-write versions, commit records, checksummed frame columns

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
RGB_COMPRESSORS = (BloscCodec(cname="zstd", clevel=3, shuffle="noshuffle"), Crc32cCodec())
DEPTH_COMPRESSORS = (ZstdCodec(level=3), Crc32cCodec())  # depth and sparse: shuffle measured worse
MASK_COMPRESSORS = (BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle"), Crc32cCodec())
FRAME_COMPRESSORS = (ZstdCodec(level=3), Crc32cCodec())

_DEPTH_ATTRS = {"scale": DEPTH_METRES_PER_UNIT, "units": "metres per unit; 0 = invalid"}

ARRAYS: dict[str, ArraySpec] = {
    spec.name: spec
    for spec in (
        ArraySpec("rgb", "uint8", RGB_CHANNELS, compressors=RGB_COMPRESSORS),
        ArraySpec("depth", "uint16", compressors=DEPTH_COMPRESSORS, attrs=_DEPTH_ATTRS),
        ArraySpec("sparse", "uint16", compressors=DEPTH_COMPRESSORS, attrs=_DEPTH_ATTRS),
        *(ArraySpec(mask_array(s), "uint8", compressors=MASK_COMPRESSORS) for s in MASK_SOURCES),
    )
}


def array_spec(name: str) -> ArraySpec:
    """The spec of data array `name`; MtDepthError listing the known names otherwise."""
    if name not in ARRAYS:
        raise MtDepthError(f"unknown store array {name!r} (known: {', '.join(ARRAYS)})")
    return ARRAYS[name]
