"""Scoring a checkpoint or a classical baseline on a store split: one evaluator for all (`mtdepth evaluate`).

    source = checkpoint_source(path, device, max_depth)   # or baseline_source("nearest", params)
    dataset, count = open_frames(store, source, split, frames)
    result = score(dataset, count, source, params, device)
    write_folder(out, lambda folder: write_outputs(folder, result, source, params))

Besides the metrics, D_final is ranked by its uncertainty maps (pipeline/sparsification.py: the model's
own `log_scale` when it predicts one, the distance and spread of the sparse samples always):
sparsification.json, the curves as CSV and, for a learned confidence, calibration.csv.

Everything is checked before any frame is read: the checkpoint, the store against what the
checkpoint was trained on (geometry, provenance, mask source), the split.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset

from mtdepth.cache.dataset import CachedDepthDataset
from mtdepth.cache.store import open_store
from mtdepth.errors import MtDepthError
from mtdepth.log import progress_bar
from mtdepth.params import Params
from mtdepth.pipeline.baselines import IPBasicConfig, baseline
from mtdepth.pipeline.checkpoint import model_from_checkpoint
from mtdepth.pipeline.evaluation import AVERAGES, SCORED, EvalSettings, Evaluation, evaluate_batches
from mtdepth.pipeline.files import finite, write_csv, write_json
from mtdepth.pipeline.panels import PanelFrame, PanelStyle, render_panel
from mtdepth.pipeline.regions import REGION_CODES
from mtdepth.pipeline.sparsification import STEPS, SparsificationSettings


@dataclass
class Source:
    """What is scored: its outputs, how it predicts a batch, and what it needs from the store."""

    label: str  # for metrics.json and panel titles
    outputs: tuple[str, ...]  # ("init", "final") or ("final",)
    predict: Callable[[dict], dict]  # batch on device -> {output: (B, 1, H, W) metres}, and "log_scale" if any
    mask_source: str  # the store mask the source reads ("none" for a baseline)
    required: dict  # array -> provenance the store must have been made with
    geometry: tuple[int, int] | None  # (H, W) it was trained at; None: any
    prefill: str = "none"  # the fill the dataset computes for it (model.prefill)


def checkpoint_source(path: str, device: torch.device, max_depth: float) -> Source:
    """A trained model from `path`; MtDepthError if it is no readable mtdepth checkpoint or was trained
    with another max depth than the one scored (`data.max_depth`)."""
    model, info = model_from_checkpoint(path, device)
    if info.max_depth != max_depth:
        raise MtDepthError(f"{path}: trained with max_depth {info.max_depth:g} m, data.max_depth is {max_depth:g}")
    required = {
        name: provenance
        for name, provenance in info.store_provenance.items()
        if not (info.mask_source == "none" and name.startswith("mask/"))
    }

    def predict(batch: dict) -> dict:
        out = model(batch["rgb"], batch["sparse"], batch["valid"], batch["mask"], batch.get("fill"))
        kept = ("init", "final", "log_scale")  # log_scale: a model with a confidence output only
        return {key: out[key] for key in kept if key in out}

    return Source(
        label=f"{info.model_name} checkpoint {path} (epoch {info.epoch}, mask {info.mask_source})",
        outputs=("init", "final"),
        predict=predict,
        mask_source=info.mask_source,
        required=required,
        geometry=(info.height, info.width),
        prefill=info.model_config.get("prefill", "none"),
    )


def baseline_source(name: str, params: Params) -> Source:
    """A classical baseline (needs no learning, reads the sparse map alone)."""
    ev = params.evaluate
    if name == "ipbasic" and ev.ipbasic_max_depth <= params.data.max_depth:
        raise MtDepthError(
            f"evaluate.ipbasic_max_depth ({ev.ipbasic_max_depth:g}) must exceed data.max_depth "
            f"({params.data.max_depth:g}): IP-Basic inverts depths around it"
        )
    fill = baseline(
        name, IPBasicConfig(max_depth=ev.ipbasic_max_depth, extrapolate=ev.ipbasic_extrapolate, blur=ev.ipbasic_blur)
    )
    return Source(
        label=f"{name} baseline",
        outputs=("final",),
        predict=lambda batch: {"final": fill(batch["sparse"])},
        mask_source="none",
        required={},
        geometry=None,
    )


def open_frames(store: str, source: Source, split: str, frames: int | None) -> tuple[CachedDepthDataset, int]:
    """The dataset of the frames to score, refusing a store the source cannot be scored on."""
    dataset = CachedDepthDataset(
        store, split=split, mask_source=source.mask_source, required=source.required, prefill=source.prefill
    )
    if source.geometry is not None and source.geometry != (dataset.height, dataset.width):
        h, w = source.geometry
        raise MtDepthError(
            f"store {store}: frames are {dataset.height}x{dataset.width}, the checkpoint was trained at {h}x{w}"
        )
    if not dataset.has_gt_mask:
        raise MtDepthError(
            f"store {store}: has no mask/gt, which the object/boundary regions need "
            "(rerun stage one with store.mask_sources including gt)"
        )
    if len(dataset) == 0:
        raise MtDepthError(f"store {store}: split {split!r} has no frames")
    count = len(dataset) if frames is None else min(frames, len(dataset))
    return dataset, count


def score(dataset: CachedDepthDataset, count: int, source: Source, params: Params, device: torch.device) -> Evaluation:
    """Run the evaluator over the first `count` frames of `dataset`, in order, with a progress bar."""
    ev = params.evaluate
    loader = DataLoader(
        Subset(dataset, range(count)),
        batch_size=ev.batch,
        shuffle=False,
        num_workers=ev.workers,
        pin_memory=device.type == "cuda",
    )
    settings = EvalSettings(
        max_depth=params.data.max_depth,
        boundary_px=ev.boundary_px,
        distance_edges=ev.distance_bins,
        device=device,
        panel_positions=frozenset(p for p in ev.panel_frames if p < count),
        sparsification=sparsification_settings(params, params.data.max_depth),
    )
    with progress_bar(total=count, desc="evaluate", unit="frame") as bar:
        return evaluate_batches(loader, source.predict, source.outputs, settings, on_batch=bar.update)


def sparsification_settings(params: Params, max_depth: float) -> SparsificationSettings:
    """The sparsification and calibration settings of the `evaluate:` params."""
    ev = params.evaluate
    return SparsificationSettings(
        max_depth=max_depth,
        spread_window=ev.spread_window,
        calibration_edges=ev.calibration_bins,
        pooled_pixels=ev.pooled_pixels,
        seed=ev.sparsification_seed,
    )


def write_sparsification(folder: Path, result: Evaluation, params: Params) -> None:
    """sparsification.json, sparsification.csv (per-frame mean curves), sparsification_pooled.csv and, with a
    learned confidence, calibration.csv; nothing when no frame had a valid pixel."""
    found = result.sparsification
    if found is None:
        return
    ev = params.evaluate
    calibration = found.calibration_rows()
    write_json(
        folder / "sparsification.json",
        {
            "output": SCORED,
            "frames": found.frames,
            "methods": list(found.methods),
            "steps": STEPS,
            "spread_window_px": ev.spread_window,
            "pooled_pixels_per_frame": ev.pooled_pixels,
            "seed": ev.sparsification_seed,
            **{average: found.areas(average) for average in AVERAGES},
            "calibration": None
            if not calibration
            else {
                "worst_factor": found.worst_calibration_factor(),
                "bins": finite(calibration),
            },
        },
    )
    write_csv(folder / "sparsification.csv", found.curve_rows("frame_mean"))
    write_csv(folder / "sparsification_pooled.csv", found.curve_rows("pooled"))
    if calibration:
        write_csv(folder / "calibration.csv", calibration)


def write_outputs(
    folder: Path, result: Evaluation, source: Source, params: Params, see_through: dict | None = None
) -> None:
    """metrics.json, per_frame.csv, the sparsification files and panels/ into `folder` (`see_through`: the
    input filter's counts)."""
    ev = params.evaluate
    frames = open_store(params.store.path).frames
    write_json(
        folder / "metrics.json",
        {
            "source": source.label,
            "store": params.store.path,
            "split": ev.split,
            "frames": result.count,
            "max_depth_m": params.data.max_depth,
            "boundary_px": ev.boundary_px,
            "see_through": see_through or None,
            **{average: result.table(average) for average in AVERAGES},
        },
    )
    rows = [{**_origin(frames, entry["row"]), **entry} for entry in result.frame_rows()]
    write_csv(folder / "per_frame.csv", rows)
    write_sparsification(folder, result, params)
    panels = folder / "panels"
    panels.mkdir()
    style = PanelStyle(
        max_depth=params.data.max_depth, cmap=ev.panel_cmap, error_max=ev.panel_error_max, dpi=ev.panel_dpi
    )
    for position, images in sorted(result.panels.items()):
        row = result.rows[position]
        origin = _origin(frames, row)
        own_mask = source.mask_source != "none"
        frame = PanelFrame(
            title=f"{source.label}\nrow {row}: {origin['scene']} {origin['condition']} frame {origin['frame']}",
            rgb=images["rgb"].transpose(1, 2, 0),
            gt=images["depth"][0],
            sparse=images["sparse"][0],
            mask=images["mask" if own_mask else "gt_mask"][0],
            mask_label=f"mask ({source.mask_source}, model input)" if own_mask else "mask (gt, regions)",
            final=images["final"],
            init=images.get("init"),
            regions=images["regions"],
            region_names=REGION_CODES,
        )
        render_panel(panels / f"row{row:05d}.png", frame, style)


def _origin(frames, row: int) -> dict:
    """Where store row `row` came from."""
    return {
        "scene": frames.scene[row],
        "condition": frames.condition[row],
        "camera": frames.camera[row],
        "frame": frames.index[row],
    }


def summary_lines(result: Evaluation, source: Source, see_through: dict | None = None) -> list[str]:
    """Overall pooled RMSE/MAE of each output (and what the see-through filter dropped), for the terminal."""
    lines = [f"evaluate: {source.label}: {result.count} frames"]
    if see_through:
        lines.append(
            f"  see-through filter: dropped {see_through['dropped']:,} of {see_through['samples']:,} "
            f"sparse samples ({see_through['dropped'] / max(see_through['samples'], 1):.2%})"
        )
    tables = {average: result.table(average) for average in AVERAGES}
    for output in source.outputs:
        overall = tables["pooled"][output]["all"]
        lines.append(
            f"  {output}: RMSE {_mm(overall['rmse_mm'])} mm, MAE {_mm(overall['mae_mm'])} mm (pooled), "
            f"RMSE {_mm(tables['frame_mean'][output]['all']['rmse_mm'])} mm (per-frame mean)"
        )
    found = result.sparsification
    if found is not None:
        for average, label in (("frame_mean", "per-frame mean"), ("pooled", "pooled")):
            areas = found.areas(average)
            lines.append(
                f"  {SCORED} AUSE (RMSE, {label}): "
                + ", ".join(f"{method} {_mm(areas[method]['ause_rmse_mm'])} mm" for method in found.methods)
            )
        worst = found.worst_calibration_factor()
        if worst is not None:
            lines.append(f"  calibration: every bin's MAE within a factor {worst:.2f} of its predicted error")
    return lines


def _mm(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.0f}"
