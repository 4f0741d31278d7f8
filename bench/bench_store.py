"""Codec benchmark for the store: size and encode/decode speed of candidate codecs per array.

Every candidate is measured the way the store uses it (zarr v3 in memory, one frame per
chunk, one shard of all frames, crc32c after compression) on either
- frames of a Virtual KITTI 2 layout tree (`--data`, default data/synth when it exists),
  loaded, resized, sparsified and masked as stage one does (masks: instance ground truth);
- or street-like frames drawn here: sky, a road plane seen from a car, building facades
  with windows, trees, cars at several depths, sensor noise, then a 2x downscale as the
  resize to the store's size does; depth in centimetres from that geometry (0 for sky and
  beyond MAX_DEPTH_M), sparse keeps KEEP_PROB of it, masks are the cars.

    python -m bench.bench_store [--data ROOT | --street] [--frames 64] [--height 256] [--width 512] [--repeats 3]

prints one markdown table, the store's own choices marked; cache/schema.py quotes it.
"""

from __future__ import annotations

import argparse
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec
from zarr.codecs.numcodecs import LZ4, PackBits, Shuffle
from zarr.core.sync import sync
from zarr.storage import MemoryStore

from mtdepth.cache.schema import ARRAYS, DEPTH_METRES_PER_UNIT, mask_array

# lz4 and packbits come from numcodecs, outside the zarr v3 spec: zarr warns on each; measured anyway.
warnings.filterwarnings("ignore", message="Numcodecs codecs are not in the Zarr version 3 specification")

DEFAULT_DATA = "data/synth"
MAX_DEPTH_M = 80.0
KEEP_PROB = 0.05
CAMERA_HEIGHT_M = 1.6
FACADE_OFFSET_M = 7.0  # lateral distance of the building fronts from the camera
FOCAL_AT_SOURCE = 725.0  # Virtual KITTI 2 focal length at 1242 x 375
SOURCE_SIZE = (1242, 375)
CAR_SIZE_M = (1.8, 1.5)  # width, height
CARS_PER_FRAME = (2, 6)
CAR_DEPTH_M = (5.0, 40.0)
TREES_PER_FRAME = (2, 8)
TREE_OFFSET_M, TREE_HEIGHT_M, TREE_CROWN_M = 5.5, 5.0, 2.0
TREE_LEAF_CELL = 6  # pixels per leaf-noise cell
HAZE_DISTANCE_M = 200.0
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
    Candidate("rgb", "blosc zstd 1", compressors=(BloscCodec(cname="zstd", clevel=1, shuffle="noshuffle"),)),
    Candidate("rgb", "blosc zstd 3", compressors=(BloscCodec(cname="zstd", clevel=3, shuffle="noshuffle"),)),
    # depth and sparse (both uint16 centimetres) are measured with the same chains
    *(
        Candidate(array, label, compressors=compressors)
        for array in ("depth", "sparse")
        for label, compressors in (
            ("zstd 3", (ZstdCodec(level=3),)),
            ("zstd 1", (ZstdCodec(level=1),)),
            ("shuffle + zstd 3", (Shuffle(), ZstdCodec(level=3))),
            ("blosc zstd 3 + shuffle", (BloscCodec(cname="zstd", clevel=3, shuffle="shuffle"),)),
            ("blosc zstd 3 + bitshuffle", (BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle"),)),
            ("blosc lz4 5 + shuffle", (BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),)),
        )
    ),
    Candidate("mask", "zstd 3", compressors=(ZstdCodec(level=3),)),
    Candidate("mask", "packbits + zstd 3", filters=(PackBits(),), compressors=(ZstdCodec(level=3),)),
    Candidate(
        "mask", "blosc zstd 3 + bitshuffle", compressors=(BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle"),)
    ),
    Candidate(
        "mask", "blosc lz4 5 + bitshuffle", compressors=(BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle"),)
    ),
)


@dataclass(frozen=True)
class _View:
    """Pixel grids of one frame at twice the output size, and the camera that sees them."""

    u: np.ndarray
    v: np.ndarray
    fx: float
    fy: float
    cx: float
    horizon: float


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cell: int) -> np.ndarray:
    """Blobby noise in [0, 1): a coarse random grid repeated over `cell`-pixel squares, then box-averaged."""
    coarse = rng.random((shape[0] // cell + 2, shape[1] // cell + 2))
    fine = np.kron(coarse, np.ones((cell, cell)))[: shape[0] + cell, : shape[1] + cell]
    integral = fine.cumsum(0).cumsum(1)
    return (integral[cell:, cell:] - integral[:-cell, cell:] - integral[cell:, :-cell] + integral[:-cell, :-cell])[
        : shape[0], : shape[1]
    ] / cell**2


def _ground_and_sky(view: _View, depth: np.ndarray, rgb: np.ndarray) -> None:
    """Sky gradient above the horizon; asphalt with dashed lane lines below it."""
    sky = np.clip((view.horizon - view.v) / view.horizon, 0, 1)[..., None]
    rgb[:] = (1 - sky) * np.array([225, 230, 235]) + sky * np.array([110, 160, 220])
    below = view.v - view.horizon
    road = below > 0
    z_ground = np.where(road, view.fy * CAMERA_HEIGHT_M / np.maximum(below, 1e-6), 0.0)
    lateral = np.abs(view.u - view.cx) * z_ground / view.fx
    lane = road & (lateral % LANE_WIDTH_M < LINE_WIDTH_M) & (z_ground % DASH_PERIOD_M < DASH_PERIOD_M / 2)
    depth[road] = z_ground[road]
    rgb[road] = (95 + 10 * np.sin(z_ground[road]))[:, None]
    rgb[lane] = 230


def _facades(rng: np.random.Generator, view: _View, depth: np.ndarray, rgb: np.ndarray) -> None:
    """Building fronts along both sides of the street, with rows of windows."""
    z_facade = view.fx * FACADE_OFFSET_M / (np.abs(view.u - view.cx) + 1e-6)
    height_m = CAMERA_HEIGHT_M - (view.v - view.horizon) * z_facade / view.fy
    for _ in range(rng.integers(3, 7)):
        start, length, top = rng.uniform(3, 60), rng.uniform(8, 25), rng.uniform(6, 20)
        facade = (z_facade >= start) & (z_facade < start + length) & (height_m >= 0) & (height_m <= top)
        facade &= z_facade < depth
        colour = rng.uniform(80, 200, size=3)
        windows = facade & (z_facade % 3 < 1.6) & (height_m % 3 > 1.0)
        depth[facade] = z_facade[facade]
        rgb[facade] = colour
        rgb[windows] = colour * 0.45


def _trees(rng: np.random.Generator, view: _View, depth: np.ndarray, rgb: np.ndarray) -> None:
    """Trees in front of the facades: a trunk and a ragged crown with leafy depth and colour."""
    leaves = _smooth_noise(rng, depth.shape, TREE_LEAF_CELL)
    for _ in range(rng.integers(*TREES_PER_FRAME)):
        z_tree, side = rng.uniform(4, 60), rng.choice([-1.0, 1.0])
        u_tree = view.cx + side * view.fx * TREE_OFFSET_M / z_tree
        v_ground = view.horizon + view.fy * CAMERA_HEIGHT_M / z_tree
        radius_u, radius_v = view.fx * TREE_CROWN_M / z_tree, view.fy * TREE_CROWN_M / z_tree
        v_crown = v_ground - view.fy * TREE_HEIGHT_M / z_tree
        r = np.hypot((view.u - u_tree) / radius_u, (view.v - v_crown) / radius_v)
        crown = (r < 0.7 + 0.6 * leaves) & (z_tree < depth)
        trunk = (np.abs(view.u - u_tree) < radius_u * 0.12) & (view.v > v_crown) & (view.v < v_ground)
        trunk &= z_tree < depth
        depth[crown] = z_tree + TREE_CROWN_M * (leaves[crown] - 0.5)
        rgb[crown] = np.array([40, 110, 35]) * (0.6 + 0.8 * leaves[crown])[:, None]
        depth[trunk] = z_tree
        rgb[trunk] = (90, 65, 40)


def _cars(rng: np.random.Generator, view: _View, depth: np.ndarray, rgb: np.ndarray, mask: np.ndarray) -> None:
    """Cars in the lanes: a body, a narrower cabin with dark windows; the mask is every car pixel."""
    for _ in range(rng.integers(*CARS_PER_FRAME)):
        z_car = rng.uniform(*CAR_DEPTH_M)
        x_car = rng.choice([-LANE_WIDTH_M, 0.0, LANE_WIDTH_M]) + rng.uniform(-0.5, 0.5)
        half_u = view.fx * CAR_SIZE_M[0] / 2 / z_car
        centre_u = view.cx + view.fx * x_car / z_car
        bottom = view.horizon + view.fy * CAMERA_HEIGHT_M / z_car
        top = bottom - view.fy * CAR_SIZE_M[1] / z_car
        waist = top + (bottom - top) * 0.45
        offset = np.abs(view.u - centre_u)
        body = (offset < half_u) & (view.v >= waist) & (view.v < bottom)
        cabin_half = half_u * (0.65 + 0.3 * (view.v - top) / max(waist - top, 1))
        cabin = (offset < cabin_half) & (view.v >= top) & (view.v < waist)
        car = (body | cabin) & (z_car < depth)
        colour = rng.uniform(20, 240, size=3)
        depth[car] = z_car + CAR_SIZE_M[0] / 2 * (offset[car] / half_u) ** 2
        rgb[car & body] = colour
        rgb[car & cabin] = colour * 0.3
        mask[car] = 1


def street_frame(rng: np.random.Generator, height: int, width: int) -> dict[str, np.ndarray]:
    """One frame at (height, width): rgb uint8, depth/sparse uint16 (cm), mask uint8."""
    h, w = height * DOWNSCALE, width * DOWNSCALE
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    view = _View(
        u,
        v,
        FOCAL_AT_SOURCE * w / SOURCE_SIZE[0],
        FOCAL_AT_SOURCE * h / SOURCE_SIZE[1],
        w / 2,
        h * rng.uniform(0.38, 0.48),
    )
    depth, rgb, mask = np.full((h, w), np.inf), np.empty((h, w, 3)), np.zeros((h, w), dtype=np.uint8)
    _ground_and_sky(view, depth, rgb)
    _facades(rng, view, depth, rgb)
    _trees(rng, view, depth, rgb)
    _cars(rng, view, depth, rgb, mask)

    haze = np.exp(-np.minimum(depth, HAZE_DISTANCE_M * 2) / HAZE_DISTANCE_M)[..., None]
    rgb = haze * rgb + (1 - haze) * np.array([200, 210, 220]) + rng.normal(0, NOISE_SIGMA, rgb.shape)
    small_rgb = rgb.reshape(height, DOWNSCALE, width, DOWNSCALE, 3).mean(axis=(1, 3))
    small_depth = depth[::DOWNSCALE, ::DOWNSCALE]
    units = np.where(small_depth <= MAX_DEPTH_M, np.round(small_depth / DEPTH_METRES_PER_UNIT), 0).astype(np.uint16)
    return {
        "rgb": np.clip(np.round(small_rgb), 0, 255).astype(np.uint8),
        "depth": units,
        "sparse": np.where(rng.random(units.shape) < KEEP_PROB, units, 0).astype(np.uint16),
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


def dataset_frames(root: str, frames: int, height: int, width: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The first `frames` frames of a Virtual KITTI 2 layout tree, as stage one stores them."""
    from mtdepth.pipeline.sparse import sparsify
    from mtdepth.pipeline.vkitti2 import index_frames, load_frame

    refs = index_frames(root, require=("rgb", "depth", "instance"))
    # spread the picks over every scene and condition found
    picks = [refs[i] for i in np.linspace(0, len(refs) - 1, min(frames, len(refs))).round().astype(int)]
    rows = []
    for ref in picks:
        frame = load_frame(ref, height, width, MAX_DEPTH_M)
        rows.append(
            {
                "rgb": frame.rgb,
                "depth": np.rint(frame.depth / DEPTH_METRES_PER_UNIT).astype(np.uint16),
                "sparse": np.rint(sparsify(frame.depth, KEEP_PROB, seed, ref.key) / DEPTH_METRES_PER_UNIT).astype(
                    np.uint16
                ),
                "mask": frame.gt_mask,
            }
        )
    return {key: np.stack([row[key] for row in rows]) for key in rows[0]}


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


def in_store(candidate: Candidate) -> bool:
    """Whether the store (cache/schema.py) uses exactly this chain for the candidate's array."""
    spec = ARRAYS[mask_array("yolo") if candidate.array == "mask" else candidate.array]
    return not candidate.filters and (*candidate.compressors, Crc32cCodec()) == spec.compressors


def table(rows: list[tuple[Candidate, dict[str, float]]], raw_kib: dict[str, float]) -> str:
    """The measurements as a markdown table; 'store' marks the chains cache/schema.py uses."""
    lines = [
        "| array | codec (+ crc32c) | KiB/frame | raw KiB/frame | ratio | encode MB/s | decode MB/s | store |",
        "|---|---|---:|---:|---:|---:|---:|:---:|",
    ]
    for candidate, m in rows:
        lines.append(
            f"| {candidate.array} | {candidate.label} | {m['kib_per_frame']:.2f} | {raw_kib[candidate.array]:.0f} "
            f"| {m['ratio']:.2f} | {m['encode_mbs']:.0f} | {m['decode_mbs']:.0f} | {'yes' if in_store(candidate) else ''} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--data",
        default=DEFAULT_DATA,
        help=f"Virtual KITTI 2 layout tree to read frames from (default {DEFAULT_DATA} "
        "when it exists, else street-like frames drawn here)",
    )
    parser.add_argument(
        "--street", action="store_true", help="Use the street-like frames drawn here, even if --data exists."
    )
    parser.add_argument("--tiny", action="store_true", help="smoke-test sizes (seconds; the figures mean nothing)")
    args = parser.parse_args(argv)
    if args.tiny:
        args.frames, args.height, args.width, args.repeats = 4, 64, 128, 1

    if Path(args.data).is_dir() and not args.street:
        data = dataset_frames(args.data, args.frames, args.height, args.width, args.seed)
        source = f"{len(data['rgb'])} frames of {args.data} (masks: instance ground truth)"
    else:
        data = street_frames(args.frames, args.height, args.width, args.seed)
        source = f"{args.frames} street-like frames drawn by this bench"
    raw_kib = {key: value[0].nbytes / KIB for key, value in data.items()}
    with zarr.config.set({"threading.max_workers": 1}):
        rows = [(c, measure(c, data[c.array], args.repeats)) for c in CANDIDATES]
    print(
        f"{source}, {args.height}x{args.width}, one shard, zarr in memory, "
        f"one codec thread, best of {args.repeats}; ratio = raw / stored, MB/s of raw bytes.\n"
    )
    print(table(rows, raw_kib))


if __name__ == "__main__":
    main()
