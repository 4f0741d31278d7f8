"""`mtdepth segment`: stage one, dataset -> Zarr store (RGB, GT depth, sparse depth, merged masks)."""

from __future__ import annotations

import time

import click

from mtdepth.log import progress_bar
from mtdepth.params import StoreSplit, choices, load_params, override
from mtdepth.stages.options import comma_list


@click.command("segment")
@click.option("--params", "params_file", default="params.yaml", show_default=True, help="Params file.")
@click.option("--data", help="Dataset root (Virtual KITTI 2 layout). [data.root]")
@click.option("--store", help="Store folder or fsspec URL. [store.path]")
@click.option("--weights", help="Segmentation weights, .pt or .onnx. [segmenter.weights]")
@click.option("--keep-prob", type=float, help="Sparse keep probability. [sparse.keep_prob]")
@click.option("--pattern", help="Sparse pattern: uniform, keypoints, lidar or mixed. [sparse.pattern]")
@click.option("--mask-sources", help="Comma list of yolo,gt. [store.mask_sources]")
@click.option("--split", type=click.Choice(choices(StoreSplit)), help="Train/val split. [store.split]")
@click.option("--imgsz", type=int, help="YOLO inference size. [segmenter.imgsz]")
@click.option("--batch", type=int, help="YOLO batch size. [segmenter.batch]")
@click.option("--device", help="auto, cpu, cuda:0 ... [segmenter.device]")
@click.option("--scheduler", help="dask.distributed scheduler address for decoding (default: local threads).")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True, help="Local decode threads.")
@click.option("--overwrite", is_flag=True, help="Rebuild a store made from another frame selection or size.")
@click.option(
    "--repair",
    is_flag=True,
    help="Also decode every committed shard and rewrite those that fail "
    "(missing or truncated shards are always rewritten).",
)
def segment(
    params_file,
    data,
    store,
    weights,
    keep_prob,
    pattern,
    mask_sources,
    split,
    imgsz,
    batch,
    device,
    scheduler,
    workers,
    overwrite,
    repair,
):
    """Run the frozen YOLO11-seg over every frame and cache everything stage two reads."""
    from mtdepth.cache.stage_one import build
    from mtdepth.pipeline.vkitti2 import index_frames

    params = load_params(params_file)
    params = override(params, "data", root=data)
    params = override(params, "store", path=store, mask_sources=comma_list(mask_sources), split=split)
    params = override(params, "sparse", keep_prob=keep_prob, pattern=pattern)
    params = override(params, "segmenter", weights=weights, imgsz=imgsz, batch=batch, device=device)
    d = params.data
    refs = index_frames(
        d.root,
        scenes=d.scenes,
        conditions=d.conditions,
        camera=d.camera,
        first_frame=d.first_frame,
        last_frame=d.last_frame,
    )
    started = time.time()
    summary = build(
        refs,
        params,
        params.store.path,
        scheduler=scheduler,
        decode_workers=workers,
        overwrite=overwrite,
        repair=repair,
        progress=lambda total: progress_bar(total=total, desc="segment", unit="frame"),
    )
    seconds = time.time() - started
    written = ", ".join(summary["written"]) or "nothing (store up to date)"
    click.echo(
        f"segment: {summary['frames']} frames -> {params.store.path}: wrote {written}; "
        f"unchanged: {', '.join(summary['unchanged']) or '-'}; "
        f"YOLO on {summary['segmenter_frames']} frames; {seconds:.1f} s"
    )
