"""Stage one, measured side by side in one run on one synthetic dataset.

1. Stage one (decode + resize + sparse + YOLO + sharded writes) against bare ultralytics
   `predict` on the same frames and weights: (a) handed the JPEG paths (ultralytics decodes
   them), (b) handed the already decoded 256x512 frames (inference alone).
2. A training batch read from the store (the DataLoader's path) against decoding and
   resizing the raw files (what a trainer without the cache would do).
3. Store bytes per array against the raw dataset's files.

    .venv/bin/python bench/bench_stage_one.py [--frames 16] [--weights weights/yolo11n-seg-synth.pt]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from click.testing import CliRunner

from mtdepth.cache.dataset import CachedDepthDataset, make_loader
from mtdepth.cache.stage_one import build
from mtdepth.cache.store import open_store
from mtdepth.cli import cli
from mtdepth.params import load_params, override
from mtdepth.pipeline.segmenter import Segmenter, config_from
from mtdepth.pipeline.sparse import sparsify
from mtdepth.pipeline.vkitti2 import index_frames, load_frame

RAW_MODALITY_FILES = {"rgb": "rgb", "depth": "depth", "mask/gt": "instance"}


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--frames", type=int, default=16, help="frames per scene and condition (x 6 conditions, 2 scenes)"
    )
    parser.add_argument("--weights", default=None, help="segmentation weights (default: params.yaml's)")
    parser.add_argument("--batch", type=int, default=4, help="training batch size for the read benchmark")
    parser.add_argument("--tiny", action="store_true", help="smoke-test sizes (seconds; the figures mean nothing)")
    args = parser.parse_args()
    if args.tiny:
        args.frames = 1

    params = load_params("params.yaml")
    if args.weights:
        params = override(params, "segmenter", weights=args.weights)
    with tempfile.TemporaryDirectory(prefix="mtdepth-bench-") as folder:
        run(Path(folder), params, args)


def run(work: Path, params, args) -> None:
    """The three measurements, on a synthetic dataset and store written under `work`."""
    seg = params.segmenter
    data = work / "synth"
    result = CliRunner().invoke(
        cli, ["synth", "--out", str(data), "--scenes", "Scene01,Scene02", "--frames", str(args.frames)]
    )
    assert result.exit_code == 0, result.output
    params = override(params, "data", root=str(data))
    params = override(params, "store", path=str(work / "store.zarr"))
    refs = index_frames(data)
    n = len(refs)
    height, width = params.data.height, params.data.width
    print(
        f"{n} synthetic frames, weights {seg.weights}, imgsz {seg.imgsz}, batch {seg.batch}, "
        f"torch threads {torch.get_num_threads()}\n"
    )

    # 1. stage one against bare ultralytics on the same frames and weights.
    config = config_from(seg)
    segmenter = Segmenter(config)
    model = segmenter.model
    decoded = [load_frame(r, height, width, params.data.max_depth).rgb for r in refs]
    predict = dict(
        imgsz=seg.imgsz, conf=seg.conf, iou=seg.iou, device=segmenter.device, retina_masks=True, verbose=False
    )
    model.predict([np.ascontiguousarray(decoded[0][..., ::-1])], **predict)  # warm-up
    paths = [str(r.rgb) for r in refs]
    bare_files = timed(lambda: [model.predict(paths[i : i + seg.batch], **predict) for i in range(0, n, seg.batch)])
    bgr = [np.ascontiguousarray(f[..., ::-1]) for f in decoded]
    bare_arrays = timed(lambda: [model.predict(bgr[i : i + seg.batch], **predict) for i in range(0, n, seg.batch)])
    stage_one = timed(lambda: build(refs, params, params.store.path, make_segmenter=lambda _: segmenter))
    print("| run | s | frames/s | stage one / this |")
    print("|---|---:|---:|---:|")
    print(f"| stage one (decode, sparse, YOLO, gt mask, writes) | {stage_one:.2f} | {n / stage_one:.1f} | 1.00 |")
    print(
        f"| bare ultralytics predict, JPEG paths | {bare_files:.2f} | {n / bare_files:.1f} | {stage_one / bare_files:.2f} |"
    )
    print(
        f"| bare ultralytics predict, decoded 256x512 frames | {bare_arrays:.2f} | {n / bare_arrays:.1f} | "
        f"{stage_one / bare_arrays:.2f} |"
    )

    # 2. a training batch from the store against decoding the raw files.
    dataset = CachedDepthDataset(params.store.path, split="all", mask_source="yolo")
    loader = make_loader(dataset, batch_size=args.batch, shuffle=True, workers=0, seed=0)
    store_epoch = timed(lambda: [None for _ in loader])
    order = np.random.default_rng(0).permutation(n)

    def raw_epoch():
        for i in order:
            frame = load_frame(refs[i], height, width, params.data.max_depth)
            sparsify(frame.depth, params.sparse.keep_prob, params.seed, refs[i].key)

    raw = timed(raw_epoch)
    batches = -(-n // args.batch)
    print(f"\n| training batch of {args.batch} (shuffled epoch, one process) | ms/batch | raw / this |")
    print("|---|---:|---:|")
    print(
        f"| read from the store (CachedDepthDataset + DataLoader) | {1e3 * store_epoch / batches:.1f} | "
        f"{raw / store_epoch:.1f} |"
    )
    print(f"| decode + resize raw files (+ sparsify) | {1e3 * raw / batches:.1f} | 1.0 |")

    # 3. store size against the raw files.
    info = open_store(params.store.path).info()["arrays"]
    print("\n| array | codecs | raw files MB | in-memory MB | store MB | store / raw files |")
    print("|---|---|---:|---:|---:|---:|")
    for name, entry in info.items():
        field = RAW_MODALITY_FILES.get(name)
        files = sum(Path(getattr(r, field)).stat().st_size for r in refs) / 1e6 if field else float("nan")
        stored = entry["stored_bytes"] / 1e6
        print(
            f"| {name} | {entry['codecs']} | {files:.2f} | {entry['raw_bytes'] / 1e6:.2f} | {stored:.2f} | "
            f"{stored / files if field else float('nan'):.3f} |"
        )
    total_raw = dir_bytes(data)
    total_store = dir_bytes(Path(params.store.path))
    print(
        f"| all | | {total_raw / 1e6:.2f} (whole tree, full size) | | {total_store / 1e6:.2f} | "
        f"{total_store / total_raw:.3f} |"
    )


if __name__ == "__main__":
    main()
