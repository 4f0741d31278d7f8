"""`mtdepth predict`: dense depth for a user's own RGB + sparse depth frames (KITTI layout), any size.

Writes, per frame NAME, each file atomically (temporary file, then rename):
    OUT/NAME.png           dense depth, KITTI 16-bit PNG (value / 256 = metres), the input's size
    OUT/NAME_preview.png   colour-mapped depth, one colour map and range (0..max_depth) for every frame
    OUT/NAME.npy           float32 metres (--npy)
    OUT/NAME.ply           coloured point cloud (--ply)
and for a net trained with `model.confidence` (docs/confidence.md):
    OUT/NAME_confidence.png          expected absolute error of the depth, KITTI encoding (value / 256 = metres)
    OUT/NAME_confidence.npy          the same, float32 metres
    OUT/NAME_confidence_preview.png  colour-mapped over 0..evaluate.panel_error_max's default (5 m)
With --max-error M (a confidence net only), pixels whose expected error exceeds M metres are left empty (0)
in NAME.png, NAME.npy, NAME.ply and the preview (black); the confidence files stay whole.
A bad file is reported by name and the other frames still complete; the command then exits 2
listing the frames that failed. An output that cannot be written (read-only, full disk) stops the
command at once, in one line. Frames larger than a tile are completed in overlapping tiles
(--tile, --tile-margin; pipeline/tiling.py), which bounds the net's memory at any frame size.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click
import numpy as np

from mtdepth.errors import MtDepthError
from mtdepth.log import progress_bar
from mtdepth.pipeline import kitti_io
from mtdepth.pipeline.files import WriteError
from mtdepth.pipeline.preview import write_error_preview, write_preview

log = logging.getLogger(__name__)


def _intrinsics_for(pairs, flags):
    """Name -> (fx, fy, cx, cy) for --ply: the flags for every frame, else each frame's intrinsics file."""
    if any(v is not None for v in flags) and any(v is None for v in flags):
        raise MtDepthError("--fx --fy --cx --cy: give all four or none")
    if flags[0] is not None:
        return {pair.name: tuple(flags) for pair in pairs}
    missing = [pair.image for pair in pairs if pair.intrinsics is None]
    if missing:
        raise MtDepthError(f"{missing[0]}: --ply needs intrinsics/{missing[0].stem}.txt or --fx --fy --cx --cy")
    return {pair.name: kitti_io.read_intrinsics(pair.intrinsics) for pair in pairs}


def drop_see_through_default(sparse):
    """`sparse` ((H, W) metres) without its see-through samples, by the rule's default window and margin."""
    from mtdepth.params import EvaluateParams
    from mtdepth.pipeline.outliers import drop_see_through

    rule = EvaluateParams()
    return drop_see_through(sparse, rule.see_through_window, rule.see_through_margin)[0]


def default_guard():
    """The do-no-harm check by evaluate's defaults (evaluate.guard_holdout, evaluate.guard_margin)."""
    from mtdepth.params import EvaluateParams
    from mtdepth.pipeline.guard import Guard

    rule = EvaluateParams()
    return Guard(holdout=rule.guard_holdout, margin=rule.guard_margin)


def error_preview_top() -> float:
    """Metres at the top of the expected-error preview's colour bar: evaluate's error panels' default."""
    from mtdepth.params import EvaluateParams

    return EvaluateParams().panel_error_max


def _segmenter(net, mask_source, weights, batch, device):
    """The frozen segmenter the masks come from (None: zero masks), warning if its weights are not the trained ones."""
    from mtdepth.pipeline.inference import segmenter_config
    from mtdepth.pipeline.segmenter import Segmenter

    config = segmenter_config(net.info, mask_source, weights, batch, device)
    if config is None:
        return None
    segmenter = Segmenter(config)
    trained = (net.info.store_provenance or {}).get("mask/yolo", {}).get("segmenter", {}).get("weights_sha256")
    if trained and trained != segmenter.sha256:
        log.warning(
            "%s: not the segmenter the model was trained with (sha256 %s vs %s)",
            config.weights,
            segmenter.sha256[:12],
            trained[:12],
        )
    return segmenter


@click.command("predict")
@click.option(
    "--checkpoint",
    type=click.Path(path_type=Path),
    help="Trained .pt, or an .onnx from `mtdepth export`. [the shipped model, weights/depth-unet-mixed.pt]",
)
@click.option(
    "--input",
    "input_dir",
    type=click.Path(path_type=Path),
    help="Folder: image/ + sparse/ (or velodyne_raw/) [+ intrinsics/].",
)
@click.option("--image", type=click.Path(path_type=Path), help="One RGB image (with --sparse) instead of --input.")
@click.option(
    "--sparse", type=click.Path(path_type=Path), help="Its sparse depth: KITTI 16-bit PNG or float .npy metres."
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output folder.")
@click.option(
    "--size",
    type=click.Choice(["native", "trained"]),
    default="native",
    show_default=True,
    help="Complete at each frame's own size, or at the training resolution and resize back.",
)
@click.option(
    "--mask-source",
    type=click.Choice(["yolo", "none"]),
    help="Masks from the segmenter or none (zeros). [checkpoint's]",
)
@click.option("--weights", help="Segmenter weights (.pt/.onnx) instead of the checkpoint's.")
@click.option("--keep-sparse", is_flag=True, help="Write the measured depth back where the input had a sample.")
@click.option(
    "--drop-see-through",
    is_flag=True,
    help="First drop see-through LiDAR samples: deeper than the nearest "
    "in their 7x7 window by 1.5 m (evaluate.see_through_window, evaluate.see_through_margin defaults).",
)
@click.option(
    "--guard/--no-guard",
    default=True,
    show_default=True,
    help="Do no harm: a frame whose held-out 20% of samples the net predicts worse than its fill (by more "
    "than 10%) gets the fill instead (evaluate.guard_holdout, evaluate.guard_margin defaults; docs/guard.md).",
)
@click.option("--npy", is_flag=True, help="Also write NAME.npy (float32 metres).")
@click.option("--ply", is_flag=True, help="Also write NAME.ply, a coloured point cloud (needs intrinsics).")
@click.option("--fx", type=float, help="Focal length x (pixels) for --ply, instead of intrinsics/NAME.txt.")
@click.option("--fy", type=float, help="Focal length y (pixels).")
@click.option("--cx", type=float, help="Principal point x (pixels).")
@click.option("--cy", type=float, help="Principal point y (pixels).")
@click.option(
    "--preview/--no-preview",
    default=True,
    show_default=True,
    help="Write NAME_preview.png (and NAME_confidence_preview.png for a confidence net).",
)
@click.option(
    "--max-error",
    type=click.FloatRange(min=0, min_open=True),
    help="Metres: leave empty (0) the depth of pixels whose expected error exceeds it (a confidence net only).",
)
@click.option(
    "--batch", type=click.IntRange(min=1), default=8, show_default=True, help="Frames per batch (segmenter and net)."
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda:0 ...")
@click.option(
    "--tile",
    type=int,
    help="Frames larger than a tile plus its margins are completed in tiles of this "
    "side, in pixels (a multiple of 16; bounds memory). [512]",
)
@click.option("--tile-margin", type=int, help="Context around each tile, in pixels (a multiple of 16). [96]")
def predict(
    checkpoint,
    input_dir,
    image,
    sparse,
    out,
    size,
    mask_source,
    weights,
    keep_sparse,
    drop_see_through,
    guard,
    npy,
    ply,
    fx,
    fy,
    cx,
    cy,
    preview,
    max_error,
    batch,
    device,
    tile,
    tile_margin,
):
    """Complete sparse depth for your own frames; writes KITTI depth PNGs at each input's size."""
    from mtdepth.pipeline.inference import TILING, complete_guarded, complete_with_error, frame_from_files, load_net
    from mtdepth.pipeline.pointcloud import back_project, write_ply
    from mtdepth.pipeline.tiling import Tiling

    if (input_dir is None) == (image is None and sparse is None) or (image is None) != (sparse is None):
        raise MtDepthError("--input: give a folder with --input, or one pair with --image and --sparse")
    if input_dir is not None:
        kitti_io.check_out_outside(out, input_dir)
    try:
        tiling = Tiling(TILING.tile if tile is None else tile, TILING.margin if tile_margin is None else tile_margin)
    except ValueError as exc:
        raise MtDepthError(f"--tile/--tile-margin: {exc}") from None
    pairs = kitti_io.discover((input_dir,) if input_dir else (image, sparse))
    intrinsics = _intrinsics_for(pairs, (fx, fy, cx, cy)) if ply else {}
    if checkpoint is None:
        from mtdepth.pipeline.shipped import shipped_model

        checkpoint = shipped_model()
        log.info("no --checkpoint: the shipped model %s", checkpoint)
    net = load_net(checkpoint, device, tiling)
    if max_error is not None and not net.confidence:
        raise MtDepthError(
            f"--max-error: {checkpoint} predicts no expected error (train it with model.confidence on / --confidence)"
        )
    segmenter = _segmenter(net, mask_source, weights, batch, device)
    max_depth = net.info.max_depth
    error_top = error_preview_top()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MtDepthError(f"{out}: cannot make the output folder ({exc.strerror or exc})") from None
    failures: dict[str, str] = {}
    fell_back: list[str] = []
    check = default_guard() if guard else None

    def fail(name: str, exc: MtDepthError) -> None:
        if len(pairs) == 1 or isinstance(exc, WriteError):  # one frame, or an --out that takes no file:
            raise exc  # its error is the one line
        failures[name] = str(exc)
        log.error("%s", exc)

    with progress_bar(total=len(pairs), desc="predict", unit="frame") as bar:
        for start in range(0, len(pairs), batch):
            frames = []
            for pair in pairs[start : start + batch]:
                try:
                    frames.append(frame_from_files(pair.name, pair.image, pair.sparse))
                    if drop_see_through:
                        frames[-1].sparse = drop_see_through_default(frames[-1].sparse)
                except MtDepthError as exc:
                    fail(pair.name, exc)
                    bar.update()
            masks = segmenter.predict_batch if segmenter else None
            if check is None:
                completed = [(*done, None) for done in complete_with_error(net, frames, size, masks, keep_sparse)]
            else:
                completed = complete_guarded(net, frames, check, size, masks, keep_sparse)
            for frame, (dense, error, dropped, verdict) in zip(frames, completed):
                if verdict is not None and not verdict.keep_net:
                    fell_back.append(frame.name)
                    log.info(
                        "%s: the fill, not the net (held-out MAE %.0f mm against the fill's %.0f mm)",
                        frame.name,
                        1000 * verdict.net_mae,
                        1000 * verdict.fill_mae,
                    )
                if dropped:
                    log.warning(
                        "%s: %d sparse samples beyond max_depth %g m left out of the net's input",
                        frame.name,
                        dropped,
                        max_depth,
                    )
                if max_error is not None:
                    dense = np.where(error > max_error, np.float32(0), dense)
                try:
                    if error is not None:
                        kitti_io.write_depth_png(out / f"{frame.name}_confidence.png", error)
                        kitti_io.write_npy(out / f"{frame.name}_confidence.npy", error)
                        if preview:
                            write_error_preview(out / f"{frame.name}_confidence_preview.png", error, error_top)
                    kitti_io.write_depth_png(out / f"{frame.name}.png", dense)
                    if preview:
                        write_preview(out / f"{frame.name}_preview.png", dense, max_depth)
                    if npy:
                        kitti_io.write_npy(out / f"{frame.name}.npy", dense)
                    if ply:
                        write_ply(out / f"{frame.name}.ply", back_project(dense, frame.rgb, intrinsics[frame.name]))
                except MtDepthError as exc:
                    fail(frame.name, exc)
                bar.update()
    done = len(pairs) - len(failures)
    click.echo(
        f"predict: {done} of {len(pairs)} frames -> {out} ({net.backend}, size {size}, "
        f"masks {'yolo' if segmenter else 'none'}{', expected error' if net.confidence else ''})"
        + (f"; guard: the fill on {len(fell_back)} of {done}" if check is not None else "")
    )
    if failures:
        raise MtDepthError(f"{len(failures)} of {len(pairs)} frames failed: {', '.join(sorted(failures))}")
