"""`mtdepth predict` and `mtdepth export`, measured side by side in one run.

0. Predict's frames/s on one 375x1242 frame (masks, fill and net, the way `predict` runs them; file
   reading and writing left out): the shipped default model (weights/depth-unet-mixed.pt, its .onnx)
   and the paper's network (Table 2 MT-Depth: absolute output, no fill, YOLO masks; untrained, speed
   does not depend on the weights), through torch and ONNX Runtime, beside IP-Basic alone.
1. Depth-network inference, batch 1, at 256x512 and 375x1242: torch eager (fp32) against
   ONNX Runtime on the CPU; on a GPU also torch with AMP and ORT's CUDA provider. Speed does
   not depend on the weights, so without --checkpoint an untrained Table 2 MT-Depth is used.
2. Predict on synthetic frames written in KITTI's layout at 375x1242 (image/, velodyne_raw/
   5% of GT, groundtruth_depth/, intrinsics/; a seed no training data uses): per-frame time
   of each step (read, segmenter, net, resizing, write PNG + preview) and the segmenter's share,
   at --size native and trained.
3. With --checkpoint: the outputs scored against GT with the project's metrics (RMSE, MAE),
   --size native vs trained, without masks, the .onnx export vs the .pt, and nearest fill of the same input.

    .venv/bin/python bench/bench_predict.py [--checkpoint runs/x/best.pt] [--frames 4] [--shipped W.pt] [--speed-only]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from click.testing import CliRunner
from PIL import Image

from mtdepth.cli import cli
from mtdepth.pipeline import kitti_io, onnx_export
from mtdepth.pipeline.baselines import nearest_fill
from mtdepth.pipeline.checkpoint import CheckpointInfo, model_from_checkpoint
from mtdepth.pipeline.inference import DepthNet, complete, frame_from_files, load_net, segmenter_config, to_net
from mtdepth.pipeline.metrics import error_sums, rmse_mae_mm
from mtdepth.pipeline.preview import write_preview
from mtdepth.pipeline.models import MTDepth
from mtdepth.pipeline.prefill import prefill_frame
from mtdepth.pipeline.segmenter import Segmenter, SegmenterConfig
from mtdepth.pipeline.shipped import shipped_model
from mtdepth.pipeline.sparse import sparsify
from mtdepth.pipeline.vkitti2 import index_frames, load_frame

SIZES = ((256, 512), (375, 1242))
KITTI_SIZE = (375, 1242)
KEEP_PROB = 0.05
MAX_DEPTH = 80.0
SEED = 303  # streets no training or segmenter data was made from
LIDAR_HZ = 10  # a spinning LiDAR's frame rate (KITTI's HDL-64E)
DEFAULT_SEGMENTER = {"weights": "weights/yolo11n-seg-synth.pt", "imgsz": 384, "conf": 0.25, "iou": 0.7, "classes": []}


def cli_run(*args) -> None:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if result.exit_code:
        raise SystemExit(f"mtdepth {' '.join(map(str, args))} failed: {result.output}{result.exception!r}")


def write_kitti_folder(synth: Path, out: Path) -> list[str]:
    """A synthetic tree's frames at KITTI_SIZE (375x1242; --tiny: 96x320) in KITTI's val_selection_cropped layout;
    returns the names."""
    for folder in ("image", "velodyne_raw", "groundtruth_depth", "intrinsics"):
        (out / folder).mkdir(parents=True)
    names = []
    for ref in index_frames(synth):
        frame = load_frame(ref, *KITTI_SIZE, MAX_DEPTH)
        name = f"{ref.scene}_{ref.condition}_image_{ref.index:05d}"  # KITTI: ..._sync_image_0000000005_image_02
        kitti_io.atomic_write(out / "image" / f"{name}.png", lambda p: Image.fromarray(frame.rgb).save(p, format="PNG"))
        kitti_io.write_depth_png(
            out / "velodyne_raw" / f"{partner(name, 'velodyne_raw')}.png",
            sparsify(frame.depth, KEEP_PROB, SEED, ref.key),
        )
        kitti_io.write_depth_png(out / "groundtruth_depth" / f"{partner(name, 'groundtruth_depth')}.png", frame.depth)
        fx, fy, cx, cy = frame.intrinsics
        (out / "intrinsics" / f"{name}.txt").write_text(f"{fx} 0 {cx} 0 {fy} {cy} 0 0 1\n")
        names.append(name)
    return names


def partner(name: str, folder: str) -> str:
    """KITTI's name of an image's file in another folder: `_image_` becomes `_velodyne_raw_` etc."""
    return name.replace("_image_", f"_{folder}_", 1)


def interleaved_medians(steps: dict[str, object], repeats: int) -> dict[str, float]:
    """Median seconds of each step, run in turn (one of each per round) so load on the machine hits all alike."""
    for step in steps.values():
        step()  # warm-up
    times: dict[str, list[float]] = {label: [] for label in steps}
    for _ in range(repeats):
        for label, step in steps.items():
            started = time.perf_counter()
            step()
            times[label].append(time.perf_counter() - started)
    return {label: statistics.median(values) for label, values in times.items()}


def backend_steps(model, onnx_path: Path, inputs: dict[str, np.ndarray]) -> dict[str, object]:
    """Label -> one batch-1 inference, for torch eager and ONNX Runtime (and their CUDA variants on a GPU)."""
    wrapper = onnx_export.DepthOnly(model).eval()
    devices = [("CPU fp32", "cpu", False)]
    if torch.cuda.is_available():
        devices += [("CUDA fp32", "cuda", False), ("CUDA AMP fp16", "cuda", True)]
    steps = {}
    for label, device, amp in devices:
        net = copy.deepcopy(wrapper).to(device)
        tensors = [torch.from_numpy(inputs[k]).to(device) for k in onnx_export.CHANNELS]

        def step(net=net, tensors=tensors, device=device, amp=amp):
            with torch.inference_mode(), torch.autocast(device, enabled=amp):
                net(*tensors).float().cpu()

        steps[f"torch eager, {label}"] = step
    providers = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in providers:
        sess = onnx_export.session(onnx_path, device)
        steps[f"ONNX Runtime, {device.upper()}"] = lambda sess=sess: onnx_export.run_session(sess, inputs)
    return steps


def inference_table(model, info: CheckpointInfo, work: Path, repeats: int) -> None:
    """Table 1: frames/s of torch eager and ORT at each size, measured interleaved."""
    onnx_path = work / "model.onnx"
    check = onnx_export.export_onnx(model, info, onnx_path)
    print(
        f"export check: max |torch - ORT| = {check['max_abs_diff_m']:.2e} m at "
        f"{', '.join(f'{h}x{w}' for h, w in check['sizes'])} (tolerance {check['tolerance_m']:g} m)\n"
    )
    rows: dict[str, list[str]] = {}
    for height, width in SIZES:
        steps = backend_steps(model, onnx_path, onnx_export.example_inputs(height, width, info.max_depth))
        for label, seconds in interleaved_medians(steps, repeats).items():
            rows.setdefault(label, []).append(f"{1000 * seconds:.0f} | {1 / seconds:.2f}")
    print(f"batch 1, median of {repeats} interleaved runs:\n")
    print("| backend | " + " | ".join(f"{h}x{w} ms | {h}x{w} frames/s" for h, w in SIZES) + " |")
    print("|---|" + "---:|---:|" * len(SIZES))
    for label, cells in rows.items():
        print(f"| {label} | " + " | ".join(cells) + " |")


def shipped_table(shipped: Path, paper: Path, frame, work: Path, repeats: int) -> None:
    """Table 0: predict's frames/s on one frame, shipped model and the paper's network, torch and ORT, beside
    IP-Basic; each model's .onnx is the one beside its .pt (the shipped one), else exported here."""
    steps, sizes = {}, {}
    for label, checkpoint in (
        ("shipped: U-Net on IP-Basic's fill", shipped),
        ("paper: MT-Depth (Table 2, absolute, no fill)", paper),
    ):
        onnx_path = checkpoint.with_suffix(".onnx")
        if not onnx_path.is_file():
            onnx_path = work / f"{checkpoint.stem}.onnx"
            cli_run("export", "--checkpoint", checkpoint, "--out", onnx_path)
        model, _ = model_from_checkpoint(checkpoint)
        sizes[label] = f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}"
        for backend, path in (("torch", checkpoint), ("ONNX Runtime", onnx_path)):
            net = load_net(path, "cpu")
            config = segmenter_config(net.info, None, None, 1, "cpu")
            masks = Segmenter(config).predict_batch if config else None
            steps[(label, backend, "yolo" if masks else "-")] = lambda net=net, masks=masks: complete(
                net, [frame], "native", masks
            )
    steps[("IP-Basic alone (the fill)", "numpy", "-")] = lambda: prefill_frame("ipbasic", frame.sparse)
    sizes["IP-Basic alone (the fill)"] = "-"
    height, width = frame.sparse.shape
    print(
        f"predict per {height}x{width} frame on the CPU ({torch.get_num_threads()} torch threads, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}), batch 1, masks + fill + net as "
        f"`predict --size native` runs them (no file I/O), median of {repeats} interleaved runs:\n"
    )
    print(f"| model | M params | backend | masks | ms/frame | frames/s | of a {LIDAR_HZ} Hz LiDAR |")
    print("|---|---:|---|---|---:|---:|---:|")
    for (label, backend, masks), seconds in interleaved_medians(steps, repeats).items():
        print(
            f"| {label} | {sizes[label]} | {backend} | {masks} | {1000 * seconds:.0f} | {1 / seconds:.2f} "
            f"| {100 / (seconds * LIDAR_HZ):.0f}% |"
        )
    print()


def step_table(checkpoint: Path, root: Path, names: list[str], work: Path, size: str) -> None:
    """Table 2: where predict's time goes per 375x1242 frame at `size`, with the segmenter's share."""
    net = load_net(checkpoint, "cpu")
    config = (
        segmenter_config(net.info, None, None, 8, "cpu")
        if net.info.segmenter
        else SegmenterConfig(**{**DEFAULT_SEGMENTER, "classes": ()}, device="cpu")
    )
    segmenter = Segmenter(config)
    at = f"{net.info.height}x{net.info.width}" if size == "trained" else "%dx%d" % KITTI_SIZE
    times = dict.fromkeys(
        [
            "read image + sparse",
            f"segmenter (on the {at} net input)",
            f"depth net ({at})",
            "resize to and from the net's size" if size == "trained" else "prepare inputs",
            "write PNG + preview",
        ],
        0.0,
    )
    labels = list(times)

    def timed_net(inputs):
        started = time.perf_counter()
        depth = net(inputs)
        times[labels[2]] += time.perf_counter() - started
        return depth

    timed = DepthNet(net.info, timed_net, net.backend)
    for name in names:
        pair = (root / "image" / f"{name}.png", root / "velodyne_raw" / f"{partner(name, 'velodyne_raw')}.png")
        started = time.perf_counter()
        frame = frame_from_files(name, *pair)
        times[labels[0]] += time.perf_counter() - started
        started = time.perf_counter()
        [mask] = segmenter.predict_batch([to_net(frame, net.info, size)[0]])
        times[labels[1]] += time.perf_counter() - started
        started, in_net = time.perf_counter(), times[labels[2]]
        [(dense, _)] = complete(timed, [frame], size, masks=lambda images: [mask])
        times[labels[3]] += time.perf_counter() - started - (times[labels[2]] - in_net)
        started = time.perf_counter()
        kitti_io.write_depth_png(work / f"{name}.png", dense)
        write_preview(work / f"{name}_preview.png", dense, net.info.max_depth)
        times[labels[4]] += time.perf_counter() - started
    total = sum(times.values())
    print(
        f"\npredict per 375x1242 frame, CPU, torch, --size {size}, {len(names)} frames one at a time "
        f"(segmenter {config.weights}, imgsz {config.imgsz}):\n"
    )
    print("| step | ms/frame | share |\n|---|---:|---:|")
    for label, seconds in times.items():
        print(f"| {label} | {1000 * seconds / len(names):.0f} | {100 * seconds / total:.0f}% |")
    print(f"| whole frame | {1000 * total / len(names):.0f} ({len(names) / total:.2f} frames/s) | 100% |")
    started = time.perf_counter()
    cli_run(
        "predict",
        "--checkpoint",
        checkpoint,
        "--input",
        root,
        "--out",
        work / f"cli-{size}",
        "--device",
        "cpu",
        "--size",
        size,
    )
    seconds = time.perf_counter() - started
    print(
        f"\n`mtdepth predict --size {size}` on the same {len(names)} frames, batch 8, loading the net and "
        f"segmenter included: "
        f"{seconds:.1f} s ({len(names) / seconds:.2f} frames/s)"
    )


def score(folder: Path, root: Path, names: list[str], pick=None) -> dict[str, float]:
    """Pooled RMSE/MAE (mm) of folder/NAME.png against groundtruth_depth/ (pick: name -> prediction instead)."""
    total = torch.zeros(3, dtype=torch.float64)
    for name in names:
        gt = kitti_io.read_depth_png(root / "groundtruth_depth" / f"{partner(name, 'groundtruth_depth')}.png")
        pred = pick(name) if pick else kitti_io.read_depth_png(folder / f"{name}.png")
        total += error_sums(torch.from_numpy(pred), torch.from_numpy(gt), MAX_DEPTH)
    return rmse_mae_mm(total)


def accuracy_table(checkpoint: Path, root: Path, names: list[str], work: Path) -> None:
    """Table 3: the outputs against GT, each way of running predict."""
    onnx_path = work / "trained.onnx"
    cli_run("export", "--checkpoint", checkpoint, "--out", onnx_path)
    runs = {
        "--size native (default)": (checkpoint, ["--size", "native"]),
        "--size trained": (checkpoint, ["--size", "trained"]),
        "--size native --keep-sparse": (checkpoint, ["--size", "native", "--keep-sparse"]),
        "--size native --mask-source none": (checkpoint, ["--size", "native", "--mask-source", "none"]),
        ".onnx export, --size native": (onnx_path, ["--size", "native"]),
    }
    print(
        f"\npredict on {len(names)} synthetic frames at 375x1242 in the KITTI layout (seed {SEED}), "
        f"{checkpoint}; GT depth <= {MAX_DEPTH:g} m:\n"
    )
    print("| run | RMSE mm | MAE mm |\n|---|---:|---:|")
    for label, (model, options) in runs.items():
        out = work / label.replace(" ", "_").replace("-", "")
        cli_run("predict", "--checkpoint", model, "--input", root, "--out", out, "--no-preview", *options)
        metrics = score(out, root, names)
        print(f"| {label} | {metrics['rmse_mm']:.0f} | {metrics['mae_mm']:.0f} |")

    def nearest(name: str) -> np.ndarray:
        sparse = kitti_io.read_depth_png(root / "velodyne_raw" / f"{partner(name, 'velodyne_raw')}.png")
        return nearest_fill(torch.from_numpy(sparse)[None, None])[0, 0].numpy()

    metrics = score(work, root, names, pick=nearest)
    print(f"| nearest fill of the same sparse input (reference) | {metrics['rmse_mm']:.0f} | {metrics['mae_mm']:.0f} |")


def paper_checkpoint(path: Path) -> Path:
    """An untrained Table 2 MT-Depth (absolute output, no fill, YOLO masks) saved at `path`."""
    from mtdepth.pipeline.checkpoint import checkpoint_state, save_checkpoint

    torch.manual_seed(0)
    model = MTDepth().eval()
    info = CheckpointInfo(
        model_config=model.config,
        mask_source="yolo",
        height=256,
        width=512,
        max_depth=MAX_DEPTH,
        store_url="",
        store_provenance={},
        segmenter=DEFAULT_SEGMENTER,
    )
    save_checkpoint(path, checkpoint_state(model, info))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, help="a trained .pt (default: an untrained Table 2 MT-Depth)")
    parser.add_argument("--shipped", type=Path, help="the shipped model's .pt (default: the installed one)")
    parser.add_argument("--frames", type=int, default=2, help="frames per scene and condition (x 2 x 2)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per backend and size")
    parser.add_argument("--speed-only", action="store_true", help="table 0 alone (predict frames/s per model)")
    parser.add_argument("--tiny", action="store_true", help="smoke-test sizes (seconds; the figures mean nothing)")
    args = parser.parse_args()
    if args.tiny:
        global SIZES, KITTI_SIZE
        args.frames, args.repeats, SIZES, KITTI_SIZE = 1, 1, ((64, 128),), (96, 320)
    with tempfile.TemporaryDirectory(prefix="mtdepth-bench-") as folder:
        work = Path(folder)
        paper = paper_checkpoint(work / "paper-untrained.pt")
        checkpoint = args.checkpoint or paper
        model, info = model_from_checkpoint(checkpoint)
        print(
            f"model {info.model_config}; load average before the run {os.getloadavg()[0]:.1f} "
            f"on {os.cpu_count()} cores (other work on the machine slows torch's threads most)\n"
        )
        cli_run(
            "synth",
            "--out",
            work / "synth",
            "--seed",
            SEED,
            "--scenes",
            "Scene01,Scene02",
            "--conditions",
            "clone,fog",
            "--frames",
            args.frames,
        )
        names = write_kitti_folder(work / "synth", work / "kitti")
        first = work / "kitti" / "image" / f"{names[0]}.png"
        frame = frame_from_files(
            names[0], first, work / "kitti" / "velodyne_raw" / f"{partner(names[0], 'velodyne_raw')}.png"
        )
        shipped_table(args.shipped or shipped_model(), paper, frame, work, args.repeats)
        if args.speed_only:
            return
        inference_table(model, info, work, args.repeats)
        for size in ("native", "trained"):
            (work / size).mkdir()
            step_table(checkpoint, work / "kitti", names, work / size, size)
        if args.checkpoint:
            accuracy_table(checkpoint, work / "kitti", names, work)


if __name__ == "__main__":
    main()
