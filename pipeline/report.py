"""The comparison report: one row per scored model from `mtdepth evaluate`'s metrics.json, the
training curves from each run's dvclive logs, the sparsification curves and AUSE of each model
(sparsification.json / .csv), and the panels of all models tiled side by side.

Pure functions over dicts, paths and PIL images; `mtdepth report` (stages/report.py) writes them.
"""

from __future__ import annotations

import csv
import math
from numbers import Real
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from mtdepth.errors import MtDepthError  # noqa: E402
from mtdepth.pipeline import regions  # noqa: E402

# (column label, region, metric) of the pooled D_final errors, as the table prints them
COLUMNS = (
    ("RMSE", "all", "rmse_mm"),
    ("MAE", "all", "mae_mm"),
    ("iRMSE", "all", "irmse_per_km"),
    ("obj RMSE", "object", "rmse_mm"),
    ("obj MAE", "object", "mae_mm"),
    ("bnd RMSE", "boundary", "rmse_mm"),
    ("bg RMSE", "background", "rmse_mm"),
)
REGIONS = ("all", *regions.REGIONS)  # the table's regions
CURVE = Path("live/plots/metrics/val/final_rmse_mm.tsv")  # dvclive's per-epoch validation RMSE of D_final
EPOCH_SECONDS = Path("live/plots/metrics/epoch_seconds.tsv")
SPARSIFICATION_METHODS = ("learned", "distance", "spread")  # evaluate's uncertainty maps, best first
TILE_SCALE = 0.5  # panels are tiled at half their size
TILE_COLUMNS = 4


@dataclass(frozen=True)
class Training:
    """What a run's dvclive logs say: validation RMSE per epoch and the seconds it trained."""

    rmse_mm: tuple[float, ...]
    seconds: float

    @property
    def best_epoch(self) -> int:
        return min(range(len(self.rmse_mm)), key=self.rmse_mm.__getitem__) + 1


def metrics_problem(metrics: object) -> str | None:
    """What makes `metrics` no metrics.json of `mtdepth evaluate` (what the report reads of it); None if it is one."""
    if not isinstance(metrics, dict):
        return "not a JSON object"
    for key, kind in (("frames", int), ("source", str), ("split", str), ("store", str)):
        if not isinstance(metrics.get(key), kind) or isinstance(metrics.get(key), bool):
            return f"{key!r} is {metrics.get(key)!r}, not {'a number' if kind is int else 'text'}"
    final = metrics.get("pooled", {}).get("final") if isinstance(metrics.get("pooled"), dict) else None
    for region in REGIONS:
        errors = final.get(region) if isinstance(final, dict) else None
        if not isinstance(errors, dict):
            return f"no pooled.final.{region} errors"
        for metric in ("rmse_mm", "mae_mm", "irmse_per_km"):
            value = errors.get(metric)
            if value is not None and (not isinstance(value, Real) or isinstance(value, bool)):
                return f"pooled.final.{region}.{metric} is {value!r}, not a number"
    return None


def model_row(name: str, metrics: dict, training: Training | None) -> dict:
    """One flat row: the pooled D_final errors per region (mm; iRMSE 1/km), the frames scored and,
    for a trained model, its epochs, best epoch and training minutes."""
    final = metrics["pooled"]["final"]
    row = {"model": name, "frames": metrics["frames"]}
    for region in REGIONS:
        for metric in ("rmse_mm", "mae_mm", "irmse_per_km"):
            row[f"{region}/{metric}"] = final[region][metric]
    if training is not None:
        row.update(
            epochs=len(training.rmse_mm), best_epoch=training.best_epoch, train_minutes=round(training.seconds / 60, 1)
        )
    return row


def read_training(run: Path) -> Training:
    """The validation curve and training seconds of a `mtdepth train` run folder; MtDepthError naming
    the log file that is missing or not dvclive's."""
    values = {}
    for path, column in ((run / CURVE, "final_rmse_mm"), (run / EPOCH_SECONDS, "epoch_seconds")):
        try:
            values[column] = [float(r[column]) for r in _tsv(path)]
        except (OSError, UnicodeDecodeError, csv.Error, KeyError, ValueError, TypeError) as exc:
            reason = getattr(exc, "strerror", None) or f"{type(exc).__name__}: {exc}"[:80]
            raise MtDepthError(
                f"{path}: not a dvclive log of `mtdepth train` ({reason}); fix or remove the run folder {run}"
            ) from None
        if not values[column]:
            raise MtDepthError(f"{path}: holds no epoch; fix or remove the run folder {run}")
    return Training(tuple(values["final_rmse_mm"]), sum(values["epoch_seconds"]))


def _tsv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def markdown_table(rows: list[dict]) -> str:
    """The rows as a GitHub markdown table, errors in mm rounded to whole numbers."""
    trained = any("epochs" in row for row in rows)
    head = ["model", *(label for label, _, _ in COLUMNS)] + (["epochs", "best", "train min"] if trained else [])
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for row in rows:
        cells = [row["model"], *(_number(row[f"{region}/{metric}"], metric) for _, region, metric in COLUMNS)]
        if trained:
            cells += [str(row.get("epochs", "-")), str(row.get("best_epoch", "-")), str(row.get("train_minutes", "-"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _number(value: float | None, metric: str) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.1f}" if metric == "irmse_per_km" else f"{value:,.0f}"


def region_rows(rows: list[dict]) -> list[dict]:
    """Long format for `dvc plots`: one row per region and model, `bar` labelling it ("object: unet")."""
    return [
        {
            "bar": f"{region}: {row['model']}",
            "model": row["model"],
            "region": region,
            "rmse_mm": row[f"{region}/rmse_mm"],
            "mae_mm": row[f"{region}/mae_mm"],
        }
        for region in REGIONS
        for row in rows
    ]


def curves_figure(path: Path, curves: dict[str, Training], dpi: int = 100) -> None:
    """Validation RMSE of D_final per epoch, one line per trained model, written to `path` (PNG)."""
    figure = Figure(figsize=(8, 4.5), dpi=dpi)
    axes = figure.add_subplot()
    for name, training in curves.items():
        axes.plot(range(1, len(training.rmse_mm) + 1), [v / 1000 for v in training.rmse_mm], marker=".", label=name)
    axes.set(xlabel="epoch", ylabel="validation RMSE of D_final (m)", yscale="log", title="Validation RMSE per epoch")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=dpi, facecolor="white")


@dataclass(frozen=True)
class Ranking:
    """One model's sparsification: per-frame mean AUSE / AURG per method (mm) and the curve the plot draws."""

    areas: dict  # sparsification.json's "frame_mean": {method: {"ause_rmse_mm": ..., ...}}
    pooled: dict  # its "pooled"
    method: str  # the curve drawn: learned where present, else distance
    fractions: tuple[float, ...]
    rmse_mm: tuple[float, ...]


def ranking_problem(summary: object, rows: list[dict]) -> str | None:
    """What makes (sparsification.json, sparsification.csv rows) not evaluate's; None if they are."""
    if not isinstance(summary, dict):
        return "sparsification.json is not a JSON object"
    for average in ("frame_mean", "pooled"):
        areas = summary.get(average)
        if not isinstance(areas, dict) or not areas or not set(areas) <= set(SPARSIFICATION_METHODS):
            return f"sparsification.json: {average!r} is {areas!r}, not AUSE per method"
        for method, values in areas.items():
            value = values.get("ause_rmse_mm") if isinstance(values, dict) else None
            if not isinstance(value, Real) or isinstance(value, bool):
                return f"sparsification.json: {average}.{method}.ause_rmse_mm is {value!r}, not a number"
    method = _drawn(summary["frame_mean"])
    column = f"{method}_rmse_mm"
    if not rows or "fraction" not in rows[0] or column not in rows[0]:
        return f"sparsification.csv has no 'fraction' and {column!r} columns"
    return None


def _drawn(areas: dict) -> str:
    return next(m for m in SPARSIFICATION_METHODS if m in areas)


def read_ranking(summary: dict, rows: list[dict]) -> Ranking:
    """A Ranking from a checked sparsification.json and the rows of its sparsification.csv (ValueError if a
    value is no number)."""
    method = _drawn(summary["frame_mean"])
    return Ranking(
        areas=summary["frame_mean"],
        pooled=summary["pooled"],
        method=method,
        fractions=tuple(float(row["fraction"]) for row in rows),
        rmse_mm=tuple(float(row[f"{method}_rmse_mm"]) for row in rows),
    )


def ranking_columns(ranking: Ranking) -> dict:
    """The AUSE / AURG (RMSE, mm) of each method, flat, for report.json."""
    return {
        f"{average}/{key}/{method}": values[key]
        for average, areas in (("frame_mean", ranking.areas), ("pooled", ranking.pooled))
        for method, values in areas.items()
        for key in ("ause_rmse_mm", "aurg_rmse_mm")
        if key in values
    }


def ranking_table(rankings: dict[str, Ranking]) -> str:
    """AUSE of D_final's RMSE (mm) per model and uncertainty map, per-frame mean and pooled, markdown."""
    head = ["model", *(f"AUSE {m}" for m in SPARSIFICATION_METHODS), *(f"pooled {m}" for m in SPARSIFICATION_METHODS)]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for name, ranking in rankings.items():
        cells = [
            _number(areas[m]["ause_rmse_mm"], "ause_rmse_mm") if m in areas else "-"
            for areas in (ranking.areas, ranking.pooled)
            for m in SPARSIFICATION_METHODS
        ]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines) + "\n"


def sparsification_rows(rankings: dict[str, Ranking]) -> list[dict]:
    """Wide format for `dvc plots`: one row per fraction, one column per model (the curve drawn, RMSE mm)."""
    first = next(iter(rankings.values()))
    return [
        {"fraction": fraction, **{name: r.rmse_mm[i] for name, r in rankings.items()}}
        for i, fraction in enumerate(first.fractions)
    ]


def sparsification_figure(path: Path, rankings: dict[str, Ranking], dpi: int = 100) -> None:
    """RMSE of the pixels left against the fraction removed, one line per model, written to `path` (PNG)."""
    figure = Figure(figsize=(8, 4.5), dpi=dpi)
    axes = figure.add_subplot()
    for name, ranking in rankings.items():
        axes.plot(
            ranking.fractions, [v / 1000 for v in ranking.rmse_mm], marker=".", label=f"{name} ({ranking.method})"
        )
    axes.set(
        xlabel="fraction of pixels removed (most uncertain first)",
        ylabel="RMSE of D_final left (m)",
        title="Sparsification of D_final (per-frame mean)",
    )
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=dpi, facecolor="white")


def tile_panels(panels: list[tuple[str, Path]]) -> Image.Image:
    """One frame's panels of several models in a grid (TILE_COLUMNS wide, half size), each labelled."""
    images = []
    for label, path in panels:
        with Image.open(path) as image:
            small = image.convert("RGB").resize(
                (round(image.width * TILE_SCALE), round(image.height * TILE_SCALE)), Image.Resampling.LANCZOS
            )
        ImageDraw.Draw(small).text((8, 4), label, fill="black")
        images.append(small)
    width, height = max(i.width for i in images), max(i.height for i in images)
    columns = min(TILE_COLUMNS, len(images))
    grid = Image.new("RGB", (columns * width, math.ceil(len(images) / columns) * height), "white")
    for k, image in enumerate(images):
        grid.paste(image, ((k % columns) * width, (k // columns) * height))
    return grid
