"""Codec benchmark for the store: size and encode/decode speed of candidate codecs per array.

Every candidate is measured the way the store uses it (zarr v3 in memory, one frame per
chunk, one shard of all frames, crc32c after compression) on street-like synthetic
frames: sky, a road plane seen from a car, building facades with windows, cars at
several depths, sensor noise, then a 2x downscale as the resize to the store's size does.
Depth follows the road/facade/car geometry in centimetres (0 for sky and beyond
MAX_DEPTH_M), sparse keeps KEEP_PROB of it, masks are the cars.

    python -m bench.bench_store [--frames 64] [--height 256] [--width 512] [--repeats 3]

prints one markdown table; cache/schema.py quotes it for the codecs it uses.
"""

from __future__ import annotations

import argparse
import time
import warnings
from dataclasses import dataclass

import numpy as np
import zarr
from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec
from zarr.codecs.numcodecs import LZ4, PackBits
from zarr.core.sync import sync
from zarr.storage import MemoryStore

from mtdepth.cache.schema import ARRAYS, DEPTH_METRES_PER_UNIT, mask_array

# lz4 and packbits come from numcodecs, outside the zarr v3 spec: zarr warns on each; measured anyway.
warnings.filterwarnings("ignore", message="Numcodecs codecs are not in the Zarr version 3 specification")

MAX_DEPTH_M = 80.0
KEEP_PROB = 0.05
CAMERA_HEIGHT_M = 1.6
FACADE_OFFSET_M = 7.0  # lateral distance of the building fronts from the camera
FOCAL_AT_SOURCE = 725.0  # Virtual KITTI 2 focal length at 1242 x 375
SOURCE_SIZE = (1242, 375)
CAR_SIZE_M = (1.8, 1.5)  # width, height
CARS_PER_FRAME = (2, 6)
CAR_DEPTH_M = (5.0, 40.0)
LANE_WIDTH_M, LINE_WIDTH_M, DASH_PERIOD_M = 3.5, 0.12, 6.0
NOISE_SIGMA = 6.0  # grey levels before the 2x downscale (about 3 after it)
DOWNSCALE = 2
MB = 1e6
KIB = 1024


@dataclass(frozen=True)
class Candidate:
    """One codec chain for one array (crc32c is appended, as in the store)."""

    array: str
    label: str
    filters: tuple = ()
    compressors: tuple = ()


CANDIDATES = (
    Candidate("rgb", "zstd 1", compressors=(ZstdCodec(level=1),)),
    Candidate("rgb", "zstd 3", compressors=(ZstdCodec(level=3),)),
    Candidate("rgb", "zstd 9", compressors=(ZstdCodec(level=9),)),
    Candidate("rgb", "lz4 (numcodecs)", compressors=(LZ4(),)),
    Candidate("rgb", "blosc lz4 5", compressors=(BloscCodec(cname="lz4", clevel=5, shuffle="noshuffle"),)),
    Candidate("rgb", "blosc zstd 3", compressors=(BloscCodec(cname="zstd", clevel=3, shuffle="noshuffle"),)),
    Candidate("depth", "zstd 3", compressors=(ZstdCodec(level=3),)),
    Candidate("depth", "blosc zstd 3 + shuffle", compressors=(BloscCodec(cname="zstd", clevel=3, shuffle="shuffle"),)),
    Candidate("depth", "blosc zstd 3 + bitshuffle", compressors=(BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle"),)),
    Candidate("depth", "blosc lz4 5 + shuffle", compressors=(BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),)),
    Candidate("sparse", "zstd 3", compressors=(ZstdCodec(level=3),)),
    Candidate("sparse", "blosc zstd 3 + shuffle", compressors=(BloscCodec(cname="zstd", clevel=3, shuffle="shuffle"),)),
    Candidate("sparse", "blosc zstd 3 + bitshuffle", compressors=(BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle"),)),
    Candidate("sparse", "blosc lz4 5 + shuffle", compressors=(BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),)),
    Candidate("mask", "zstd 3", compressors=(ZstdCodec(level=3),)),
    Candidate("mask", "packbits + zstd 3", filters=(PackBits(),), compressors=(ZstdCodec(level=3),)),
    Candidate("mask", "blosc zstd 3 + bitshuffle", compressors=(BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle"),)),
    Candidate("mask", "blosc lz4 5 + bitshuffle", compressors=(BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle"),)),
)


def street_frame(rng: np.random.Generator, height: int, width: int) -> dict[str, np.ndarray]:
    """One frame at (height, width): rgb uint8, depth/sparse uint16 (cm), mask uint8."""
    h, w = height * DOWNSCALE, width * DOWNSCALE
    fx, fy = FOCAL_AT_SOURCE * w / SOURCE_SIZE[0], FOCAL_AT_SOURCE * h / SOURCE_SIZE[1]
    cx, horizon = w / 2, h * rng.uniform(0.38, 0.48)
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    below = v - horizon

    depth = np.full((h, w), np.inf)
    rgb = np.empty((h, w, 3))
    sky = np.clip((horizon - v) / horizon, 0, 1)[..., None]
    rgb[:] = (1 - sky) * np.array([225, 230, 235]) + sky * np.array([110, 160, 220])

    road = below > 0
    z_road = np.where(road, fy * CAMERA_HEIGHT_M / np.maximum(below, 1e-6), np.inf)
    z_ground = np.where(road, z_road, 0.0)
    lane = road & (np.abs(u - cx) * z_ground / fx % LANE_WIDTH_M < LINE_WIDTH_M) & (z_ground % DASH_PERIOD_M < DASH_PERIOD_M / 2)
    depth[road] = z_road[road]
    rgb[road] = 95 + 10 * np.sin(z_road[road])[:, None]
    rgb[lane] = 230

    side = np.abs(u - cx) + 1e-6
    z_facade = fx * FACADE_OFFSET_M / side
    for building in range(rng.integers(3, 7)):
        start, length = rng.uniform(3, 60), rng.uniform(8, 25)
        top = rng.uniform(6, 20)
        inside = (z_facade >= start) & (z_facade < start + length)
        height_m = CAMERA_HEIGHT_M - below * z_facade / fy
        facade = inside & (height_m >= 0) & (height_m <= top) & (z_facade < depth)
        depth[facade] = z_facade[facade]
        colour = rng.uniform(80, 200, size=3)
        windows = (z_facade % 3 < 1.6) & (height_m % 3 > 1.0)
        rgb[facade] = colour
        rgb[facade & windows] = colour * 0.45

    mask = np.zeros((h, w), dtype=np.uint8)
    for car in range(rng.integers(*CARS_PER_FRAME)):
        z_car, x_car = rng.uniform(*CAR_DEPTH_M), rng.choice([-3.5, 0.0, 3.5]) + rng.uniform(-0.5, 0.5)
        u0, u1 = cx + fx * (x_car - CAR_SIZE_M[0] / 2) / z_car, cx + fx * (x_car + CAR_SIZE_M[0] / 2) / z_car
        v1 = horizon + fy * CAMERA_HEIGHT_M / z_car
        v0 = v1 - fy * CAR_SIZE_M[1] / z_car
        body = (u >= u0) & (u < u1) & (v >= v0) & (v < v1) & (z_car < depth)
        depth[body] = z_car + 0.3 * (v[body] - v0) / max(v1 - v0, 1)
        colour = rng.uniform(20, 240, size=3)
        rgb[body] = colour
        rgb[body & (v < v0 + (v1 - v0) * 0.4)] = colour * 0.3
        mask[body] = 1

    haze = np.exp(-np.minimum(depth, 400) / 200)[..., None]
    rgb = haze * rgb + (1 - haze) * np.array([200, 210, 220])
    rgb += rng.normal(0, NOISE_SIGMA, rgb.shape)

    def shrink(a: np.ndarray) -> np.ndarray:
        return a.reshape(height, DOWNSCALE, width, DOWNSCALE, *a.shape[2:]).mean(axis=(1, 3))

    depth_small = depth[::DOWNSCALE, ::DOWNSCALE]
    units = np.where(depth_small <= MAX_DEPTH_M, np.round(depth_small / DEPTH_METRES_PER_UNIT), 0).astype(np.uint16)
    sparse = np.where(rng.random(units.shape) < KEEP_PROB, units, 0).astype(np.uint16)
    return {
        "rgb": np.clip(np.round(shrink(rgb)), 0, 255).astype(np.uint8),
        "depth": units,
        "sparse": sparse,
        "mask": mask[::DOWNSCALE, ::DOWNSCALE].copy(),
    }


def street_frames(frames: int, height: int, width: int, seed: int = 0) -> dict[str, np.ndarray]:
    """`frames` street-like frames stacked along axis 0, keyed rgb / depth / sparse / mask."""
    rng = np.random.default_rng(seed)
    each = [street_frame(rng, height, width) for _ in range(frames)]
    return {key: np.stack([f[key] for f in each]) for key in each[0]}


async def _chunk_bytes(store: MemoryStore) -> int:
    """Bytes of every chunk/shard key (metadata excluded)."""
    return sum([await store.getsize(key) async for key in store.list_prefix("c/")])


def measure(candidate: Candidate, data: np.ndarray, repeats: int) -> dict[str, float]:
    """Stored bytes per frame and best-of-`repeats` encode/decode MB/s of raw bytes."""
    frames = data.shape[0]
    best_encode = best_decode = np.inf
    for _ in range(repeats):
        array = zarr.create_array(
            MemoryStore(),
            shape=data.shape,
            dtype=data.dtype,
            chunks=(1, *data.shape[1:]),
            shards=data.shape,
            filters=candidate.filters,
            compressors=(*candidate.compressors, Crc32cCodec()),
            fill_value=0,
            config={"write_empty_chunks": True},
        )
        start = time.perf_counter()
        array[:] = data
        best_encode = min(best_encode, time.perf_counter() - start)
        start = time.perf_counter()
        back = array[:]
        best_decode = min(best_decode, time.perf_counter() - start)
        if not np.array_equal(back, data):
            raise AssertionError(f"{candidate.array} {candidate.label}: round trip differs")
        stored = sync(_chunk_bytes(array.store))
    return {
        "kib_per_frame": stored / frames / KIB,
        "ratio": data.nbytes / stored,
        "encode_mbs": data.nbytes / MB / best_encode,
        "decode_mbs": data.nbytes / MB / best_decode,
    }


def table(rows: list[tuple[Candidate, dict[str, float]]], raw_kib: dict[str, float]) -> str:
    """The measurements as a markdown table."""
    lines = [
        "| array | codec (+ crc32c) | KiB/frame | raw KiB/frame | ratio | encode MB/s | decode MB/s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for candidate, m in rows:
        lines.append(
            f"| {candidate.array} | {candidate.label} | {m['kib_per_frame']:.1f} | {raw_kib[candidate.array]:.0f} "
            f"| {m['ratio']:.2f} | {m['encode_mbs']:.0f} | {m['decode_mbs']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    data = street_frames(args.frames, args.height, args.width, args.seed)
    raw_kib = {key: value[0].nbytes / KIB for key, value in data.items()}
    with zarr.config.set({"threading.max_workers": 1}):
        rows = [(c, measure(c, data[c.array], args.repeats)) for c in CANDIDATES]
    print(
        f"{args.frames} street-like frames of {args.height}x{args.width}, one shard, zarr in memory, "
        f"one codec thread, best of {args.repeats}; ratio = raw / stored, MB/s of raw bytes.\n"
    )
    print(table(rows, raw_kib))
    chosen = {"rgb": ARRAYS["rgb"], "depth": ARRAYS["depth"], "sparse": ARRAYS["sparse"], "mask": ARRAYS[mask_array("yolo")]}
    print("\nstore uses: " + "; ".join(f"{k}: {', '.join(type(c).__name__ for c in s.compressors)}" for k, s in chosen.items()))


if __name__ == "__main__":
    main()
