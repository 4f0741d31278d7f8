"""Evaluation speed, side by side in one run: baselines ms/frame at 256x512, the evaluator's frames/s.

    .venv/bin/python bench/bench_eval.py [--frames 24] [--device auto]

Writes a temporary synthetic dataset and store (`mtdepth synth`, then `mtdepth segment` with
mask source gt only, so no YOLO runs), and untrained UNet and MT-Depth checkpoints of the params'
sizes (speed does not depend on training). For each source it times the prediction alone on
batches already in memory, and the whole evaluator (store read, prediction, metrics of every
pixel group, no panels) over the same frames, and prints markdown tables.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch
from click.testing import CliRunner

from mtdepth.cache.dataset import CachedDepthDataset
from mtdepth.cache.evaluate_run import baseline_source, checkpoint_source, open_frames, score
from mtdepth.cache.store import open_store
from mtdepth.cli import cli
from mtdepth.params import load_params, override
from mtdepth.pipeline.baselines import IPBasicConfig, ip_basic, nearest_fill
from mtdepth.pipeline.checkpoint import CheckpointInfo, checkpoint_state, save_checkpoint
from mtdepth.pipeline.device import resolve_device
from mtdepth.pipeline.models import new_model

PASSES = 2  # best of


def best_seconds(function) -> float:
    """Best wall time of PASSES calls (after one warm-up), synchronising a GPU."""
    function()
    times = []
    for _ in range(PASSES):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        started = time.perf_counter()
        function()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return min(times)


def make_store(work: Path, frames: int) -> Path:
    """A synthetic dataset of `frames` frames and its store (GT masks only)."""
    data, store = work / "synth", work / "store.zarr"
    for args in (
        ["synth", "--out", str(data), "--scenes", "Scene01", "--conditions", "clone", "--frames", str(frames)],
        ["segment", "--data", str(data), "--store", str(store), "--mask-sources", "gt"],
    ):
        result = CliRunner().invoke(cli, args)
        if result.exit_code != 0:
            raise SystemExit(f"bench_eval: {' '.join(args[:1])} failed: {result.output.strip()}")
    return store


def make_checkpoint(path: Path, params, name: str, store: Path) -> Path:
    model = new_model(override(params, "train", model=name))
    reader = open_store(store)
    provenance = {array: reader.provenance(array) for array in ("rgb", "depth", "sparse", "mask/gt")}
    info = CheckpointInfo(
        model_config=model.config,
        mask_source="gt",
        height=reader.height,
        width=reader.width,
        max_depth=params.data.max_depth,
        store_url=str(store),
        store_provenance=provenance,
        segmenter=None,
    )
    save_checkpoint(path, checkpoint_state(model, info))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tiny", action="store_true", help="smoke-test sizes (seconds; the figures mean nothing)")
    args = parser.parse_args()
    if args.tiny:
        global PASSES
        args.frames, PASSES = 2, 1
    params = load_params("params.yaml")
    device = torch.device(resolve_device(args.device))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store = make_store(work, args.frames)
        params = override(params, "store", path=str(store))
        params = override(params, "evaluate", split="all", panel_frames=[])
        dataset = CachedDepthDataset(store, split="all", mask_source="gt", prefill=params.model.prefill)
        n = len(dataset)
        items = [dataset[i] for i in range(n)]
        batch_size = params.evaluate.batch
        batches = [
            {
                k: torch.stack([item[k] for item in items[i : i + batch_size]]).to(device)
                for k in ("rgb", "sparse", "valid", "mask", "fill", "depth")
                if k in items[0]
            }
            for i in range(0, n, batch_size)
        ]
        h, w = dataset.height, dataset.width
        load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
        print(
            f"{n} synthetic frames at {h}x{w}, batch {batch_size}, device {device}, "
            f"{torch.get_num_threads()} CPU threads, load average {load}, best of {PASSES}\n"
        )

        ip_config = IPBasicConfig(max_depth=params.evaluate.ipbasic_max_depth)
        print("| baseline | ms/frame |\n|---|---:|")
        for label, fill in (
            ("nearest fill (exact Euclidean, torch)", nearest_fill),
            ("IP-Basic fast fill (OpenCV, CPU)", lambda s: ip_basic(s, ip_config)),
        ):
            seconds = best_seconds(lambda: [fill(b["sparse"]) for b in batches])
            print(f"| {label} | {1000 * seconds / n:.1f} |")

        sources = {"nearest": baseline_source("nearest", params), "ipbasic": baseline_source("ipbasic", params)}
        for name in ("unet", "mtdepth"):
            sources[name] = checkpoint_source(
                str(make_checkpoint(work / f"{name}.pt", params, name, store)), device, params.data.max_depth
            )
        print("\n| source | predict alone frames/s | whole evaluator frames/s | evaluator / predict alone |")
        print("|---|---:|---:|---:|")
        for name, source in sources.items():
            with torch.inference_mode():
                alone = best_seconds(lambda: [source.predict(b) for b in batches])
            data, count = open_frames(str(store), source, "all", None)
            whole = best_seconds(lambda: score(data, count, source, params, device))
            print(f"| {name} | {n / alone:.1f} | {n / whole:.1f} | {whole / alone:.2f} |")


if __name__ == "__main__":
    main()
