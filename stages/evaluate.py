"""`mtdepth evaluate`: a checkpoint or a classical baseline scored on a store split (cache/evaluate_run.py).

    mtdepth evaluate --store S --checkpoint runs/mtdepth/best.pt --out runs/eval/mtdepth
    mtdepth evaluate --store S --baseline nearest --out runs/eval/nearest

Writes, all or nothing (built in a temporary folder beside DIR, then renamed over it):
    DIR/metrics.json    the KITTI metric set per output (init, final; a baseline has final only) and
                        pixel group (all, object, boundary, background, distance bins), pooled over
                        all pixels and per frame then averaged
    DIR/per_frame.csv   one row per frame (for `dvc plots`)
    DIR/sparsification.json, sparsification.csv, sparsification_pooled.csv, calibration.csv
                        D_final's pixels removed in order of uncertainty (the model's own log_scale when
                        it has one, distance to and spread of the sparse samples): AUSE / AURG, the curves,
                        the calibration of the predicted error (docs/confidence.md)
    DIR/panels/*.png    Figure-2 panels of the frames `evaluate.panel_frames` names
Everything is checked before any frame is read: the checkpoint, the store, the split, --out.
`--input DIR` scores your own labelled frames instead of a store (cache/evaluate_folder.py).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from mtdepth.cache.evaluate_run import (
    baseline_source,
    checkpoint_source,
    open_frames,
    score,
    summary_lines,
    write_outputs,
)
from mtdepth.errors import MtDepthError
from mtdepth.params import Baseline, Split, choices, load_params, override
from mtdepth.pipeline.device import torch_device
from mtdepth.pipeline.files import check_target, write_folder
from mtdepth.pipeline.outliers import filtered


@click.command("evaluate")
@click.option("--params", "params_file", default="params.yaml", show_default=True, help="Params file.")
@click.option("--store", help="Store folder or fsspec URL. [store.path]")
@click.option(
    "--input",
    "input_dir",
    type=click.Path(path_type=Path),
    help="Your own labelled frames instead of a store: image/, sparse/ or velodyne_raw/, groundtruth/.",
)
@click.option("--checkpoint", help="A checkpoint written by `mtdepth train` (with --input also an .onnx export).")
@click.option("--weights", help="With --input: segmenter weights instead of the checkpoint's.")
@click.option("--baseline", type=click.Choice(choices(Baseline)), help="Score a classical baseline instead.")
@click.option("--out", required=True, help="Output folder (replaced whole when the run succeeds).")
@click.option("--split", type=click.Choice(choices(Split)), help="Frames to score. [evaluate.split]")
@click.option("--frames", type=int, help="Score only the first N frames of the split. [evaluate.frames]")
@click.option("--batch", type=int, help="Frames per batch. [evaluate.batch]")
@click.option("--workers", type=int, help="DataLoader workers. [evaluate.workers]")
@click.option("--device", help="auto, cpu, cuda:0 ... [evaluate.device]")
@click.option(
    "--drop-see-through/--keep-see-through",
    default=None,
    help="Drop see-through samples from the sparse input first. [evaluate.drop_see_through]",
)
@click.option(
    "--any-sparse",
    is_flag=True,
    help="Score a checkpoint on the store's sparse input whatever it was made with (another pattern); "
    "its other arrays must still be the training store's.",
)
def evaluate(
    params_file,
    store,
    input_dir,
    checkpoint,
    weights,
    baseline,
    out,
    split,
    frames,
    batch,
    workers,
    device,
    drop_see_through,
    any_sparse,
):
    """Score a checkpoint (D_init and D_final) or a baseline: KITTI metrics per region and distance bin, panels."""
    if (checkpoint is None) == (baseline is None):
        raise MtDepthError("give exactly one of --checkpoint or --baseline")
    if any_sparse and (checkpoint is None or input_dir is not None):
        raise MtDepthError("--any-sparse: scores a --checkpoint on a store, not a --baseline or an --input folder")
    params = load_params(params_file)
    params = override(params, "store", path=store)
    params = override(
        params,
        "evaluate",
        split=split,
        frames=frames,
        batch=batch,
        workers=workers,
        device=device,
        drop_see_through=drop_see_through,
    )
    ev = params.evaluate
    out = Path(out)
    check_target(out)
    device = torch_device(ev.device, "evaluate.device")
    if input_dir is not None:
        if store is not None:
            raise MtDepthError("--input: give a store (--store) or a folder of labelled frames (--input), not both")
        from mtdepth.cache.evaluate_folder import evaluate_folder

        for line in evaluate_folder(input_dir, checkpoint, baseline, weights, out, params, device):
            click.echo(line)
        return
    source = (
        checkpoint_source(checkpoint, device, params.data.max_depth)
        if checkpoint
        else baseline_source(baseline, params)
    )
    if any_sparse:
        source = dataclasses.replace(source, required={k: v for k, v in source.required.items() if k != "sparse"})
    dataset, count = open_frames(params.store.path, source, ev.split, ev.frames)
    counts: dict = {}
    if ev.drop_see_through:
        source = dataclasses.replace(
            source, predict=filtered(source.predict, ev.see_through_window, ev.see_through_margin, counts)
        )
    result = score(dataset, count, source, params, device)
    write_folder(out, lambda folder: write_outputs(folder, result, source, params, counts))
    for line in summary_lines(result, source, counts):
        click.echo(line)
