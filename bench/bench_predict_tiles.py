"""Peak memory and time of `mtdepth predict` at KITTI size and at 12 megapixels, and how far tiles move the output.

    OMP_NUM_THREADS=1 python -m bench.bench_predict_tiles [--big 3000x4000] [--out /tmp/bench-tiles] [--onnx] [--tiny]

The net is params.yaml's MT-Depth, freshly initialised and saved with save_checkpoint; its output
convolutions are redrawn (N(0, 0.1)) so that its depth varies over the frame (an untrained net's is flat
and would hide any tiling difference). Masks: none (no segmenter). Each predict is a subprocess under
/usr/bin/time -v (peak RSS of the whole command, wall time), one at a time. --onnx runs the same
through the net's `mtdepth export` and onnxruntime (whose tiles attend to themselves alone).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mtdepth.params import load_params
from mtdepth.pipeline import kitti_io
from mtdepth.pipeline.checkpoint import CheckpointInfo, checkpoint_state, save_checkpoint
from mtdepth.pipeline.inference import TILING
from mtdepth.pipeline.tiling import spans
from mtdepth.pipeline.models import new_model

KITTI = (375, 1242)
SEAM_PX = 16  # pixels either side of a core's edge counted as "at a seam"


def checkpoint(path: Path) -> Path:
    params = load_params("params.yaml")
    torch.manual_seed(0)
    net = new_model(params)
    with torch.no_grad():
        for name, parameter in net.named_parameters():
            if "depth_out" in name:
                parameter.normal_(0, 0.1)
    info = CheckpointInfo(
        model_config=net.config,
        mask_source="none",
        height=params.data.height,
        width=params.data.width,
        max_depth=params.data.max_depth,
        store_url="bench",
        store_provenance={},
        segmenter=None,
    )
    save_checkpoint(path, checkpoint_state(net, info))
    return path


def frame(root: Path, height: int, width: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(height)
    image, sparse = root / f"rgb{height}x{width}.png", root / f"sparse{height}x{width}.png"
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(image)
    kitti_io.write_depth_png(sparse, (rng.random((height, width)) < 0.05) * rng.uniform(1, 70, (height, width)))
    return image, sparse


def predict(ckpt: Path, pair: tuple[Path, Path], out: Path, *extra: str) -> tuple[float, float]:
    """(peak RSS GiB, wall seconds) of one predict."""
    command = [
        "/usr/bin/time",
        "-v",
        sys.executable,
        "-m",
        "mtdepth.cli",
        "predict",
        "--checkpoint",
        str(ckpt),
        "--image",
        str(pair[0]),
        "--sparse",
        str(pair[1]),
        "--out",
        str(out),
        "--mask-source",
        "none",
        "--device",
        "cpu",
        "--npy",
        *extra,
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(result.stderr[-2000:])
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1)) / 2**20
    clock = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", result.stderr).group(1)
    seconds = sum(float(part) * 60**k for k, part in enumerate(reversed(clock.split(":"))))
    return rss, seconds


def seam_mask(height: int, width: int) -> np.ndarray:
    near = np.zeros((height, width), bool)
    for core, _ in spans(height, TILING)[1:]:
        near[max(0, core.start - SEAM_PX) : core.start + SEAM_PX] = True
    for core, _ in spans(width, TILING)[1:]:
        near[:, max(0, core.start - SEAM_PX) : core.start + SEAM_PX] = True
    return near


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big", default="3000x4000", help="HEIGHTxWIDTH of the large frame")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-tiles"))
    parser.add_argument("--onnx", action="store_true", help="predict through the ONNX export")
    parser.add_argument(
        "--tiny", action="store_true", help="smoke-test sizes (64x192 and 128x768); figures meaningless"
    )
    args = parser.parse_args()
    small = (64, 192) if args.tiny else KITTI
    if args.tiny:
        args.big = "128x768"
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt = checkpoint(args.out / "net.pt")
    if args.onnx:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "mtdepth.cli",
                "export",
                "--checkpoint",
                str(ckpt),
                "--out",
                str(args.out / "net.onnx"),
            ],
            check=True,
            capture_output=True,
        )
        ckpt = args.out / "net.onnx"
    kitti = frame(args.out, *small)
    name = f"{small[0]}x{small[1]}"
    whole_side = str(-(-max(small) // 16) * 16)
    rows = [
        (f"{name} untiled", *predict(ckpt, kitti, args.out / "whole", "--tile", whole_side, "--tile-margin", "0")),
        (f"{name} tiled", *predict(ckpt, kitti, args.out / "tiled")),
    ]
    whole, tiles = (np.load(args.out / d / f"{kitti[0].stem}.npy") for d in ("whole", "tiled"))
    difference, seams = np.abs(tiles - whole), seam_mask(*small)
    big = tuple(int(v) for v in args.big.split("x"))
    rows.append((f"{args.big} tiled", *predict(ckpt, frame(args.out, *big), args.out / "big")))
    print(
        f"tiling: {TILING.tile} px tiles, {TILING.margin} px margins; OMP_NUM_THREADS=1, CPU, masks none, "
        f"{'onnxruntime' if args.onnx else 'torch'}"
    )
    print("\n| frame | peak RSS (GiB) | seconds | s/megapixel |\n|---|---:|---:|---:|")
    for label, rss, seconds in rows:
        pixels = (big[0] * big[1] if label.startswith(args.big) else small[0] * small[1]) / 1e6
        print(f"| {label} | {rss:.2f} | {seconds:.1f} | {seconds / pixels:.1f} |")
    print()
    print(
        f"tiled vs untiled at {name} (depth {whole.min():.1f}..{whole.max():.1f} m): max |diff| "
        f"{difference.max() * 1000:.2f} mm, mean {difference.mean() * 1000:.4f} mm; within {SEAM_PX} px of a seam "
        f"max {difference[seams].max(initial=0) * 1000:.2f} mm mean {(difference[seams].mean() if seams.any() else 0) * 1000:.4f} mm; away max "
        f"{difference[~seams].max(initial=0) * 1000:.2f} mm mean {difference[~seams].mean() * 1000:.4f} mm"
    )


if __name__ == "__main__":
    main()
