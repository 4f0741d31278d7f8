"""`mtdepth train`: stage two, the depth network trained from the stage-one store alone.

    mtdepth train --store data/store.zarr --model mtdepth --mask-source yolo --epochs 30 --out runs/mtdepth
    mtdepth train --out runs/mtdepth --resume                       # continue a killed run
    mtdepth train --out runs/mtdepth --resume-if-compatible         # dvc.yaml: continue, keep or restart
    torchrun --standalone --nproc_per_node=2 -m mtdepth.cli train --out runs/ddp ...   # DDP, one GPU per rank

Every option overrides its `train.*` (or `model.*`, `loss.depth_error`) param. Reads the store only: no
image is decoded and the segmenter is never imported.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from mtdepth.log import progress_bar
from mtdepth.params import (
    DepthError,
    MaskSource,
    Model,
    Output,
    Pattern,
    Precision,
    Prefill,
    Query,
    Switch,
    choices,
    load_params,
    override,
)


@click.command("train")
@click.option("--params", "params_file", default="params.yaml", show_default=True, help="Params file.")
@click.option("--store", help="Stage-one store folder or fsspec URL. [store.path]")
@click.option(
    "--pattern",
    type=click.Choice(choices(Pattern)),
    help="The sparse pattern the store was made with. [sparse.pattern]",
)
@click.option("--model", type=click.Choice(choices(Model)), help="Network. [train.model]")
@click.option(
    "--mask-source", type=click.Choice(choices(MaskSource)), help="Store mask fed to MT-Depth. [train.mask_source]"
)
@click.option("--query", type=click.Choice(choices(Query)), help="Cross-attention query input. [model.query]")
@click.option(
    "--mask-input/--no-mask-input",
    default=None,
    help="MT-Depth: the mask also a full-resolution U-Net input channel. [model.mask_input]",
)
@click.option(
    "--prefill", type=click.Choice(choices(Prefill)), help="Classical fill the net completes. [model.prefill]"
)
@click.option(
    "--output",
    type=click.Choice(choices(Output)),
    help="Absolute depth, or a correction of the fill (residual: log space; additive: metres). [model.output]",
)
@click.option(
    "--keep-sparse/--no-keep-sparse", default=None, help="Write the samples back over the output. [model.keep_sparse]"
)
@click.option(
    "--confidence/--no-confidence",
    default=None,
    help="Also predict the expected absolute error per pixel (log-scale output). [model.confidence]",
)
@click.option("--depth-error", type=click.Choice(choices(DepthError)), help="Per-pixel depth error. [loss.depth_error]")
@click.option("--epochs", type=int, help="Epochs in all (a resumed run counts the ones done). [train.epochs]")
@click.option("--lr", type=float, help="Peak learning rate. [train.lr]")
@click.option("--batch", type=int, help="Frames per step and process. [train.batch]")
@click.option("--flip", type=float, help="Probability of mirroring a training frame left-right. [train.flip]")
@click.option("--workers", type=int, help="DataLoader processes. [train.workers]")
@click.option("--precision", type=click.Choice(choices(Precision)), help="Autocast precision. [train.precision]")
@click.option(
    "--compile", "compile_", type=click.Choice(choices(Switch)), help="torch.compile the step. [train.compile]"
)
@click.option("--device", help="auto, cpu, cuda:0 ... [train.device]")
@click.option("--out", help="Run folder: checkpoints and dvclive logs. [train.out]")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option(
    "--resume-if-compatible",
    is_flag=True,
    help="Continue an unfinished run in --out of these exact params and store, keep a finished one, "
    "else start afresh over it (dvc.yaml's persisted run folders).",
)
def train(
    params_file,
    store,
    pattern,
    model,
    mask_source,
    query,
    mask_input,
    prefill,
    output,
    keep_sparse,
    confidence,
    depth_error,
    epochs,
    lr,
    batch,
    flip,
    workers,
    precision,
    compile_,
    device,
    out,
    resume,
    resume_if_compatible,
):
    """Train MT-Depth (or the U-Net baseline) from the cached arrays alone."""
    from mtdepth.cache.train_run import run

    params = load_params(params_file)
    params = override(params, "store", path=store)
    params = override(params, "sparse", pattern=pattern)
    params = override(
        params,
        "model",
        query=query,
        mask_input=mask_input,
        prefill=prefill,
        output=output,
        keep_sparse=keep_sparse,
        confidence=confidence,
    )
    params = override(params, "loss", depth_error=depth_error)
    params = override(
        params,
        "train",
        model=model,
        mask_source=mask_source,
        epochs=epochs,
        lr=lr,
        batch=batch,
        flip=flip,
        workers=workers,
        precision=precision,
        compile=compile_,
        device=device,
        out=out,
    )
    if resume and resume_if_compatible:
        raise click.UsageError("--resume and --resume-if-compatible exclude each other")
    mode = "always" if resume else "compatible" if resume_if_compatible else "never"
    started = time.time()
    summary = run(params, params.store.path, Path(params.train.out), mode, progress=progress_bar, echo=click.echo)
    if summary["metrics"]:
        click.echo(
            f"train: best val RMSE {summary['best_val_rmse_mm']:.0f} mm at epoch {summary['best_epoch']}; "
            f"checkpoints in {summary['out']}; {time.time() - started:.0f} s"
        )
