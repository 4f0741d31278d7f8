"""`mtdepth evaluate --input DIR`: a checkpoint, an `.onnx` or a baseline scored on a user's own labelled frames.

DIR holds image/, sparse/ or velodyne_raw/ and groundtruth/ (KITTI 16-bit depth PNGs). Writes, all or nothing,
OUT/metrics.json, OUT/per_frame.csv (one row per frame, by name), the sparsification files of a store's
evaluation (cache/evaluate_run.py: write_sparsification) and OUT/panels/NAME.png (the frames at the
positions evaluate.panel_frames names).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from mtdepth.params import Params
from mtdepth.pipeline import kitti_io
from mtdepth.pipeline.guard import Guard, Verdict
from mtdepth.pipeline.evaluation import AVERAGES, REGION_CODES, EvalSettings, Evaluation, evaluate_batches
from mtdepth.pipeline.labelled import labelled_batches, net_predictor
from mtdepth.pipeline.outliers import filtered
from mtdepth.pipeline.panels import PanelFrame, PanelStyle, render_panel
from mtdepth.cache.evaluate_run import (
    Source,
    baseline_source,
    sparsification_settings,
    summary_lines,
    write_sparsification,
)
from mtdepth.log import progress_bar
from mtdepth.pipeline.files import write_csv, write_folder, write_json


def net_source(
    path: Path, weights: str | None, device: str, batch: int, guard: Guard | None, verdicts: dict
) -> tuple[Source, float]:
    """A checkpoint or an `.onnx` run at each frame's size, with the segmenter it records and checked by
    `guard` (each frame's verdict into `verdicts`); and its max depth."""
    from mtdepth.pipeline.inference import load_net, segmenter_config
    from mtdepth.pipeline.segmenter import Segmenter

    net = load_net(path, device)
    config = segmenter_config(net.info, None, weights, batch, device)
    masks = Segmenter(config).predict_batch if config is not None else None
    label = f"{net.info.model_name} {path} ({net.backend}, masks {'yolo' if masks else 'none'})"
    if guard is not None:
        label += f", guarded (holdout {guard.holdout:g}, margin {guard.margin:g})"
    return Source(
        label=label,
        outputs=("final",),
        predict=net_predictor(net, masks, guard, verdicts),
        mask_source="none",
        required={},
        geometry=None,
    ), net.info.max_depth


def evaluate_folder(
    root: Path,
    checkpoint: str | None,
    baseline: str | None,
    weights: str | None,
    out: Path,
    params: Params,
    device: torch.device,
) -> list[str]:
    """Score the source on every labelled frame of `root`, write OUT (see the module docstring); the summary lines."""
    ev = params.evaluate
    frames = kitti_io.discover_labelled(root)
    if ev.frames is not None:
        frames = frames[: ev.frames]
    verdicts: dict[str, Verdict] = {}
    if checkpoint:
        guard = Guard(holdout=ev.guard_holdout, margin=ev.guard_margin) if ev.guard else None
        source, max_depth = net_source(Path(checkpoint), weights, str(device), ev.batch, guard, verdicts)
    else:
        source, max_depth = baseline_source(baseline, params), params.data.max_depth
    counts: dict = {}
    if ev.drop_see_through:
        source.predict = filtered(source.predict, ev.see_through_window, ev.see_through_margin, counts)
    settings = EvalSettings(
        max_depth=max_depth,
        boundary_px=ev.boundary_px,
        distance_edges=ev.distance_bins,
        device=device,
        panel_positions=frozenset(p for p in ev.panel_frames if p < len(frames)),
        sparsification=sparsification_settings(params, max_depth),
    )
    with progress_bar(total=len(frames), desc="evaluate", unit="frame") as bar:
        result = evaluate_batches(
            labelled_batches(frames), source.predict, source.outputs, settings, on_batch=bar.update
        )
    names = [item.pair.name for item in frames]

    def write(folder: Path) -> None:
        write_json(
            folder / "metrics.json",
            {
                "source": source.label,
                "input": str(root),
                "frames": result.count,
                "max_depth_m": max_depth,
                "see_through": counts or None,
                "guard": {name: _verdict(v) for name, v in verdicts.items()} or None,
                **{average: result.table(average) for average in AVERAGES},
            },
        )
        write_csv(folder / "per_frame.csv", [{"name": names[entry["row"]], **entry} for entry in result.frame_rows()])
        write_sparsification(folder, result, params)
        _write_panels(
            folder / "panels",
            result,
            source,
            names,
            PanelStyle(max_depth=max_depth, cmap=ev.panel_cmap, error_max=ev.panel_error_max, dpi=ev.panel_dpi),
        )

    write_folder(out, write)
    lines = summary_lines(result, source, counts)
    if verdicts:
        fell_back = sorted(name for name, v in verdicts.items() if not v.keep_net)
        lines.append(
            f"  guard: the fill on {len(fell_back)} of {len(verdicts)} frames"
            + (f" ({', '.join(fell_back)})" if fell_back else "")
        )
    return lines


def _verdict(verdict: Verdict) -> dict:
    """A frame's guard verdict for metrics.json (errors in mm; None where too few samples were held out)."""
    errors = {"net_mae_mm": verdict.net_mae, "fill_mae_mm": verdict.fill_mae}
    return {
        "choice": verdict.choice,
        "held": verdict.held,
        **{key: None if math.isnan(value) else round(1000 * value, 1) for key, value in errors.items()},
    }


def _write_panels(folder: Path, result: Evaluation, source: Source, names: list[str], style: PanelStyle) -> None:
    folder.mkdir()
    for position, images in sorted(result.panels.items()):
        name = names[result.rows[position]]
        render_panel(
            folder / f"{name}.png",
            PanelFrame(
                title=f"{source.label}\n{name}",
                rgb=images["rgb"].transpose(1, 2, 0),
                gt=images["depth"][0],
                sparse=images["sparse"][0],
                mask=np.zeros_like(images["depth"][0]),
                mask_label="mask (none: no instances)",
                final=images["final"],
                init=None,
                regions=images["regions"],
                region_names=REGION_CODES,
            ),
            style,
        )
