"""`mtdepth model-card`: the JSON report of a trained depth model (pipeline/model_card.py).

    mtdepth model-card --params depthmodel/params.yaml --run runs/depthmodel/train/mixed \\
        --onnx runs/depthmodel/depth-unet-mixed.onnx --evals runs/depthmodel/eval --reference uniform \\
        --command "make depth-model" --out runs/depthmodel/depth-unet-mixed.json

The model ships as OUT's name with .pt (the run's best.pt), .onnx and .json. Reads the run's best.pt, its dvclive logs and the evaluations `<run>-on-<pattern>`, `<reference>-on-<pattern>`
and `ipbasic-on-<pattern>` under --evals; writes the report atomically.
"""

from __future__ import annotations

from pathlib import Path

import click

from mtdepth.errors import MtDepthError
from mtdepth.params import load_params, to_dict


@click.command("model-card")
@click.option("--params", "params_file", default="params.yaml", show_default=True, help="Params file.")
@click.option("--run", required=True, type=click.Path(path_type=Path), help="The model's training run folder.")
@click.option("--onnx", type=click.Path(path_type=Path), help="Its ONNX export.")
@click.option(
    "--evals", required=True, type=click.Path(path_type=Path), help="Folder of `<source>-on-<pattern>` evaluations."
)
@click.option(
    "--reference", required=True, help="Name of the run the model is compared with (trained on another pattern)."
)
@click.option("--command", "command", required=True, help="The command that remakes the model (recorded verbatim).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="The JSON report to write.")
def model_card(params_file, run, onnx, evals, reference, command, out):
    """Write a trained depth model's JSON report: its making, training and metrics per pattern and region."""
    from mtdepth.pipeline.checkpoint import model_from_checkpoint
    from mtdepth.pipeline.files import atomic_write, write_json
    from mtdepth.pipeline.model_card import model_card as card

    if out.suffix.lower() != ".json":
        raise MtDepthError(f"{out}: --out must end in .json")
    if not out.parent.is_dir():
        raise MtDepthError(f"{out.parent}: folder not found (--out)")
    if not evals.is_dir():
        raise MtDepthError(f"{evals}: folder not found (--evals)")
    params = load_params(params_file)
    checkpoint = run / "best.pt"
    _, info = model_from_checkpoint(checkpoint)
    files = {"checkpoint": (checkpoint, f"{out.stem}.pt"), **({"onnx": (onnx, f"{out.stem}.onnx")} if onnx else {})}
    report = card(command, to_dict(params), info, files, run, evals, reference)
    atomic_write(out, lambda path: write_json(path, report))
    click.echo(f"model-card: {checkpoint} -> {out}")
