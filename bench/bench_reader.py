"""Virtual KITTI 2 reader on one core: decode + resize frames/s, per step, and indexing speed.

Writes a temporary tree of street-like 1242x375 frames through vkitti2_format (or reads
`--root`), then times each step of `load_frame` to 256x512 over the same frames, side by side,
and prints markdown tables. Run: `.venv/bin/python bench/bench_reader.py`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from mtdepth.params import DataParams, SparseParams, SynthParams
from mtdepth.pipeline import vkitti2_format as fmt
from mtdepth.pipeline.sparse import sparsify
from mtdepth.pipeline.vkitti2 import FIELD_MODALITY, index_frames, load_frame, resize_area, resize_nearest, verify_frame

DATA = DataParams()
SYNTH = SynthParams()
SPARSE = SparseParams()
BENCH_FRAMES = 24  # frames decoded per pass
PASSES = 3  # best pass counts
INDEX_FRAMES = 21260  # frames per camera in Virtual KITTI 2
INDEX_SCENES = ("Scene01", "Scene02", "Scene06", "Scene18", "Scene20")
INDEX_CONDITIONS = (
    "clone",
    "fog",
    "morning",
    "overcast",
    "rain",
    "sunset",
    "15-deg-left",
    "15-deg-right",
    "30-deg-left",
    "30-deg-right",
)
HORIZON = 0.45  # fraction of the image height above the road
CAR_BOXES = 4
NOISE_LEVEL = 12  # grey levels of texture noise, so the JPEGs are not trivially small
NEAR_M, FAR_M = 4.0, 120.0


def street_frame(rng: np.random.Generator, width: int, height: int) -> dict[str, np.ndarray]:
    """One street-like frame: sky, road plane, cars; rgb, depth units, instance ids, class colours."""
    rows = np.arange(height, dtype=np.float32)[:, None]
    horizon = int(HORIZON * height)
    below = np.clip(rows - horizon, 1, None)
    metres = np.where(rows > horizon, NEAR_M * (height - horizon) / below, np.inf) * np.ones((1, width), np.float32)
    metres = np.minimum(metres, FAR_M)
    metres[:horizon] = np.inf
    ids = np.zeros((height, width), np.uint8)
    colours = np.zeros((height, width, 3), np.uint8)
    colours[:horizon] = fmt.CLASS_COLORS["Sky"]
    colours[horizon:] = fmt.CLASS_COLORS["Road"]
    for track in range(CAR_BOXES):
        left = int(rng.integers(0, width - width // 8))
        top = int(rng.integers(horizon, height - height // 6))
        box = (slice(top, top + height // 6), slice(left, left + width // 8))
        metres[box] = np.float32(rng.uniform(NEAR_M, FAR_M / 2))
        ids[box] = track + 1
        colours[box] = fmt.CLASS_COLORS["Car"]
    shade = np.clip(255 - metres * 2, 0, 255)
    shade[~np.isfinite(metres)] = 200
    rgb = np.repeat(shade[..., None], 3, axis=-1) + rng.normal(0, NOISE_LEVEL, (height, width, 3))
    return {
        "rgb": np.clip(rgb, 0, 255).astype(np.uint8),
        "depth": fmt.encode_depth(metres),
        "instance": ids,
        "classgt": colours,
    }


WRITERS = {
    "rgb": fmt.write_rgb,
    "depth": fmt.write_depth_units,
    "instance": fmt.write_instances,
    "classgt": fmt.write_class_rgb,
}


def write_tree(root: Path, frames: int, width: int, height: int) -> None:
    """A merged-layout tree of `frames` frames (Scene01/clone) with every modality."""
    rng = np.random.default_rng(0)
    for index in range(frames):
        frame = street_frame(rng, width, height)
        for field, modality in FIELD_MODALITY.items():
            path = root / fmt.frame_path(modality, "Scene01", "clone", DATA.camera, index)
            path.parent.mkdir(parents=True, exist_ok=True)
            WRITERS[field](path, frame[field])
    fmt.write_intrinsics(
        root / fmt.textgt_path("Scene01", "clone", "intrinsic.txt"), range(frames), (0, 1), fmt.INTRINSICS
    )


def write_empty_tree(root: Path, frames: int) -> None:
    """A split-layout tree of empty files (indexing never opens them): every modality, Camera_0."""
    per_folder = frames // (len(INDEX_SCENES) * len(INDEX_CONDITIONS))
    for scene in INDEX_SCENES:
        for condition in INDEX_CONDITIONS:
            for modality in FIELD_MODALITY.values():
                archive = fmt.archive_dir(root, modality)
                for index in range(per_folder):
                    path = archive / fmt.frame_path(modality, scene, condition, DATA.camera, index)
                    if index == 0:
                        path.parent.mkdir(parents=True)
                    path.touch()


def best_seconds(step, items, passes: int = PASSES) -> float:
    """Best total time over `passes` runs of `step` on every item."""
    best = float("inf")
    for _ in range(passes):
        start = time.perf_counter()
        for item in items:
            step(item)
        best = min(best, time.perf_counter() - start)
    return best


def pil_nearest(units: np.ndarray, height: int, width: int) -> np.ndarray:
    """The PIL alternative to resize_nearest for 16-bit depth."""
    return np.asarray(Image.fromarray(units).resize((width, height), Image.Resampling.NEAREST))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, help="an existing Virtual KITTI 2 tree (default: write a temporary one)")
    parser.add_argument("--frames", type=int, default=BENCH_FRAMES, help="frames decoded per pass")
    parser.add_argument("--index-frames", type=int, default=INDEX_FRAMES, help="frames in the indexing tree (0: skip)")
    parser.add_argument("--tiny", action="store_true", help="smoke-test sizes (seconds; the figures mean nothing)")
    args = parser.parse_args()
    if args.tiny:
        args.frames, args.index_frames = 2, len(INDEX_SCENES) * len(INDEX_CONDITIONS)  # one frame a folder
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core

    height, width = DATA.height, DATA.width
    with tempfile.TemporaryDirectory() as scratch:
        root = args.root
        if root is None:
            root = Path(scratch, "tree")
            write_tree(root, args.frames, SYNTH.image_width, SYNTH.image_height)
        refs = index_frames(root, camera=DATA.camera)[: args.frames]
        rgbs = [fmt.read_rgb(r.rgb) for r in refs]
        units = [fmt.read_depth_units(r.depth) for r in refs]
        ids = [fmt.read_instances(r.instance) for r in refs if r.instance is not None]
        depths = [load_frame(r, height, width, DATA.max_depth).depth for r in refs]
        source = f"{rgbs[0].shape[1]}x{rgbs[0].shape[0]}"
        steps = [
            ("decode RGB JPEG", lambda r: fmt.read_rgb(r.rgb), refs),
            ("decode depth PNG (16-bit)", lambda r: fmt.read_depth_units(r.depth), refs),
            (
                "decode instance PNG (palette)",
                lambda r: fmt.read_instances(r.instance),
                [r for r in refs if r.instance],
            ),
            ("resize RGB, area (PIL BOX)", lambda a: resize_area(a, height, width), rgbs),
            ("resize depth, nearest (numpy)", lambda u: resize_nearest(u, height, width), units),
            ("resize depth, nearest (PIL, alternative)", lambda u: pil_nearest(u, height, width), units),
            ("resize instances, nearest (numpy)", lambda i: resize_nearest(i, height, width), ids),
            ("sparsify (keep 5%)", lambda d: sparsify(d, SPARSE.keep_prob, 0, "bench"), depths),
            ("load_frame (whole: decodes + resizes)", lambda r: load_frame(r, height, width, DATA.max_depth), refs),
            ("verify_frame (full size, + class PNG)", verify_frame, refs),
        ]
        timings = [(name, best_seconds(step, items) / len(items)) for name, step, items in steps if items]
        total = dict(timings)["load_frame (whole: decodes + resizes)"]
        print(f"## Reader, one core: {len(refs)} frames {source} -> {width}x{height}, best of {PASSES} passes\n")
        print("| step | ms/frame | frames/s | share of load_frame |")
        print("|---|---:|---:|---:|")
        for name, seconds in timings:
            print(f"| {name} | {seconds * 1e3:.2f} | {1 / seconds:.0f} | {seconds / total:.0%} |")

        if args.index_frames:
            index_root = Path(scratch, "index")
            write_empty_tree(index_root, args.index_frames)
            indexed = len(index_frames(index_root, require=tuple(FIELD_MODALITY)))
            seconds = best_seconds(lambda _: index_frames(index_root, require=tuple(FIELD_MODALITY)), [None])
            print(f"\n## Indexing (split layout, 4 modalities, {indexed} frames = {indexed * 4} files)\n")
            print("| frames | seconds | frames/s |")
            print("|---:|---:|---:|")
            print(f"| {indexed} | {seconds:.2f} | {indexed / seconds:.0f} |")


if __name__ == "__main__":
    main()
