"""`mtdepth export`: the trained depth network as ONNX (dynamic batch, height, width), checked against torch."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("export")
@click.option("--checkpoint", required=True, type=click.Path(path_type=Path), help="Trained .pt checkpoint.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="ONNX file to write.")
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0, min_open=True),
    default=1e-3,
    show_default=True,
    help="Largest |torch - onnxruntime| depth (and expected error, for a net with confidence), in metres, "
    "accepted; the export is refused beyond it.",
)
def export(checkpoint, out, tolerance):
    """Export the depth network (mask as an input) to ONNX; refuse unless onnxruntime matches torch."""
    from mtdepth.errors import MtDepthError
    from mtdepth.pipeline.checkpoint import model_from_checkpoint
    from mtdepth.pipeline.files import writing
    from mtdepth.pipeline.onnx_export import export_onnx

    if out.suffix.lower() != ".onnx":
        raise MtDepthError(f"{out}: --out must end in .onnx")
    if not out.parent.is_dir():
        raise MtDepthError(f"{out.parent}: folder not found (--out)")
    model, info = model_from_checkpoint(checkpoint, "cpu")
    with writing(out):
        check = export_onnx(model, info, out, tolerance)
    sizes = ", ".join(f"{h}x{w}" for h, w in check["sizes"])
    click.echo(
        f"export: {checkpoint} -> {out} (dynamic batch/height/width); onnxruntime vs torch at {sizes}: "
        f"max |diff| {check['max_abs_diff_m']:.2e} m <= {tolerance:g} m"
    )
