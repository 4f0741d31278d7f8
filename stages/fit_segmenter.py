"""`mtdepth fit-segmenter`: fit a YOLO11n-seg on a dataset's instance ground truth and freeze it."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from mtdepth.log import progress_bar
from mtdepth.params import load_params, override, to_dict


def _command_line(ctx: click.Context) -> str:
    """The command as invoked: its path and the options given (defaults left out)."""
    given = [
        (p.opts[0], ctx.params[p.name])
        for p in ctx.command.params
        if ctx.get_parameter_source(p.name) is not click.core.ParameterSource.DEFAULT
    ]
    options = " ".join(f"{option} {shlex.quote(str(value))}" for option, value in given)
    return f"{ctx.command_path} {options}".strip()


@click.command("fit-segmenter")
@click.option("--params", "params_file", default="params.yaml", show_default=True, help="Params file.")
@click.option("--data", help="Training dataset root (Virtual KITTI 2 layout). [fit_segmenter.data]")
@click.option("--val-data", help="Validation dataset root, made with another seed. [fit_segmenter.val_data]")
@click.option("--out", help="Output stem: writes OUT.pt, OUT.onnx, OUT.json. [fit_segmenter.out]")
@click.option(
    "--weights", "model", help="Start from these weights (fine-tune); default the yolo11n-seg.yaml definition."
)
@click.option("--imgsz", type=int, help="Training and inference size. [fit_segmenter.imgsz]")
@click.option("--epochs", type=int, help="Epoch cap; the budget usually ends the fit first. [fit_segmenter.epochs]")
@click.option("--budget-minutes", type=float, help="Wall-clock training budget. [fit_segmenter.budget_minutes]")
@click.option("--batch", type=int, help="Training batch size. [fit_segmenter.batch]")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda:0, ...")
@click.option("--work-dir", default="runs/fit-segmenter", show_default=True, help="YOLO dataset and ultralytics run.")
def fit_segmenter(params_file, data, val_data, out, model, imgsz, epochs, budget_minutes, batch, device, work_dir):
    """Fit a YOLO11n-seg on instance PNGs, export .pt + .onnx and a JSON report."""
    from mtdepth.pipeline.synth import read_manifest
    from mtdepth.pipeline.vkitti2 import index_frames
    from mtdepth.pipeline.yolo_fit import FitConfig, fit

    params = override(
        load_params(params_file),
        "fit_segmenter",
        data=data,
        val_data=val_data,
        out=out,
        model=model,
        imgsz=imgsz,
        epochs=epochs,
        budget_minutes=budget_minutes,
        batch=batch,
    )
    fp, dp = params.fit_segmenter, params.data
    select = dict(scenes=dp.scenes, conditions=dp.conditions, camera=dp.camera)
    train_frames = index_frames(fp.data, **select)
    val_frames = index_frames(fp.val_data, **select)
    config = FitConfig(
        model=fp.model,
        imgsz=fp.imgsz,
        epochs=fp.epochs,
        budget_minutes=fp.budget_minutes,
        batch=fp.batch,
        workers=fp.workers,
        seed=params.seed,
        device=device,
        height=dp.height,
        width=dp.width,
        max_depth=dp.max_depth,
        conf=params.segmenter.conf,
    )
    click.echo(
        f"fit-segmenter: {len(train_frames)} training and {len(val_frames)} validation frames, "
        f"budget {fp.budget_minutes:g} min, imgsz {fp.imgsz}"
    )
    context = {
        "command": _command_line(click.get_current_context()),
        "params": {"fit_segmenter": to_dict(fp), "data": to_dict(dp), "segmenter_conf": params.segmenter.conf},
        "train_data": fp.data,
        "val_data": fp.val_data,
        "train_data_synth": read_manifest(fp.data),
        "val_data_synth": read_manifest(fp.val_data),
    }
    report = fit(
        train_frames,
        val_frames,
        Path(fp.out),
        Path(work_dir),
        config,
        progress=lambda frames: progress_bar(frames, desc="labels", unit="frame"),
        context=context,
    )
    click.echo(
        f"fit-segmenter: {report['epochs_run']} epochs in {report['fit_seconds']:.0f} s, "
        f"mask mAP50 {report['mask_map50']:.3f}, merged-foreground IoU {report['merged_foreground_iou']:.3f} "
        f"-> {fp.out}.pt, .onnx, .json"
    )
