"""The prefills on a store, side by side in one run: cost per frame and, scored as completions
themselves, RMSE/MAE per region with each mask source (the instance prior without any training).

    .venv/bin/python bench/bench_prefill.py --store data/results.zarr [--frames 204] [--params params.yaml]
    .venv/bin/python bench/bench_prefill.py --tiny      # smoke test on a 5-frame store it makes (figures meaningless)

Reads the store's validation split (`--split`; it needs mask/gt; mask/yolo where present). For each
prefill and mask source it times `prefill_frame` alone on frames already in memory, then scores the fills
with the evaluator (`evaluate.boundary_px`, `data.max_depth` from the params) and prints markdown, then
the YOLO masks' merged-foreground IoU against the GT's over the same frames.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mtdepth.cache.dataset import SPLITS, CachedDepthDataset
from mtdepth.cache.store import open_store
from mtdepth.params import load_params
from mtdepth.pipeline.evaluation import EvalSettings, evaluate_batches
from mtdepth.pipeline.masks import foreground_iou
from mtdepth.pipeline.prefill import MASK_AWARE, PREFILLS, prefill_frame

from mtdepth.pipeline.regions import REGIONS as GROUPS

REGIONS = ("all", *GROUPS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="a stage-one store (required unless --tiny)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--split", default="val", choices=SPLITS, help="which frames of the store (default: val)")
    parser.add_argument("--frames", type=int, default=None, help="first N frames of the split (default: all)")
    parser.add_argument("--tiny", action="store_true", help="a 5-frame store made here (figures meaningless)")
    args = parser.parse_args()
    if args.tiny:
        with tempfile.TemporaryDirectory() as tmp:
            args.store = str(tiny_store(Path(tmp)))
            run(args)
    elif args.store is None:
        parser.error("--store is required (or --tiny)")
    else:
        run(args)


def tiny_store(work: Path) -> Path:
    """A 5-frame synthetic store (GT masks) made through the CLI."""
    from click.testing import CliRunner

    from mtdepth.cli import cli

    data, store = work / "synth", work / "store.zarr"
    for args in (
        ["synth", "--out", str(data), "--scenes", "Scene01", "--conditions", "clone", "--frames", "5"],
        ["segment", "--data", str(data), "--store", str(store), "--mask-sources", "gt"],
    ):
        result = CliRunner().invoke(cli, args)
        if result.exit_code != 0:
            raise SystemExit(f"bench_prefill: {args[0]} failed: {result.output.strip()}")
    return store


def run(args) -> None:
    params = load_params(args.params)
    sources = [s for s in ("yolo", "gt") if s in open_store(args.store).mask_sources()]
    settings = EvalSettings(
        max_depth=params.data.max_depth,
        boundary_px=params.evaluate.boundary_px,
        distance_edges=params.evaluate.distance_bins,
    )
    print(f"| fill | masks | ms/frame | {' | '.join(f'{r} RMSE / MAE (mm)' for r in REGIONS)} |")
    print("|---|---|---:|" + "---:|" * len(REGIONS))
    iou = None  # the YOLO masks' merged-foreground IoU against GT, from the first pass that reads them
    for kind in PREFILLS[1:]:
        for source in sources if kind in MASK_AWARE else ["none"]:
            dataset = CachedDepthDataset(args.store, args.split, source)
            count = len(dataset) if args.frames is None else min(args.frames, len(dataset))
            items = dataset.__getitems__(list(range(count)))
            if source == "yolo" and iou is None:
                pairs = [foreground_iou(item["mask"].numpy() > 0.5, item["gt_mask"].numpy() > 0.5) for item in items]
                intersection, union = np.sum(pairs, axis=0)
                iou = (intersection / max(union, 1), count)
            started = time.perf_counter()
            fills = [prefill_frame(kind, item["sparse"][0].numpy(), item["mask"][0].numpy()) for item in items]
            ms = 1000 * (time.perf_counter() - started) / count
            batches = [
                {
                    **{k: torch.stack([item[k] for item in items[i : i + 8]]) for k in ("depth", "gt_mask")},
                    "fill": torch.stack([torch.from_numpy(f)[None] for f in fills[i : i + 8]]),
                    "index": [item["index"] for item in items[i : i + 8]],
                }
                for i in range(0, count, 8)
            ]
            result = evaluate_batches(batches, lambda batch: {"final": batch["fill"]}, ("final",), settings)
            table = result.table("pooled")["final"]
            cells = " | ".join(f"{table[r]['rmse_mm']:,.0f} / {table[r]['mae_mm']:,.0f}" for r in REGIONS)
            print(f"| {kind} | {source} | {ms:.1f} | {cells} |")
    if iou is not None:
        print(f"\nYOLO masks against GT masks: merged-foreground IoU {iou[0]:.3f} over {iou[1]} frames")


if __name__ == "__main__":
    main()
