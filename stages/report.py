"""`mtdepth report`: the comparison of every scored model, as the DAG's last word on a run.

    mtdepth report --runs runs/train --out runs/report runs/eval/nearest runs/eval/ipbasic runs/eval/unet ...

Each EVAL folder is one `mtdepth evaluate --out`; its folder name labels its row. Writes, all or
nothing (built beside DIR, then swapped in):
    DIR/report.md       the table (pooled D_final errors per region, mm), the AUSE table, what was scored
    DIR/report.json     the same rows, for `dvc metrics show` / `dvc metrics diff`
    DIR/regions.csv     RMSE and MAE per model and region, for `dvc plots`
    DIR/curves.png      validation RMSE per epoch of each trained model (from --runs)
    DIR/sparsification.png, DIR/sparsification.csv
                        the sparsification curve (RMSE left vs fraction removed) of each model whose EVAL has
                        sparsification.json: its learned confidence where present, else the distance map
    DIR/panels/*.png    each panel frame with the panels of all models side by side
and prints the table.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import click

from mtdepth.errors import MtDepthError
from mtdepth.pipeline.files import check_target, write_csv, write_folder, write_json
from mtdepth.pipeline.report import (
    CURVE,
    Ranking,
    Training,
    curves_figure,
    markdown_table,
    metrics_problem,
    model_row,
    ranking_columns,
    ranking_problem,
    ranking_table,
    read_ranking,
    read_training,
    region_rows,
    sparsification_figure,
    sparsification_rows,
    tile_panels,
)


@click.command("report")
@click.argument("evals", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--runs",
    type=click.Path(path_type=Path),
    help="Folder of `mtdepth train` runs named as the EVAL folders: adds epochs, minutes and curves.",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Report folder (replaced whole).")
def report(evals: tuple[Path, ...], runs: Path | None, out: Path) -> None:
    """Tabulate `mtdepth evaluate` outputs (one row per EVAL folder) and tile their panels side by side."""
    names = [folder.name for folder in evals]
    if len(set(names)) != len(names):
        raise MtDepthError(
            f"two EVAL folders share a name ({', '.join(sorted({n for n in names if names.count(n) > 1}))}):"
            " each row is labelled by its folder's name"
        )
    check_target(out)
    if runs is not None and not runs.is_dir():
        raise MtDepthError(f"{runs}: --runs folder not found (the `mtdepth train` runs, named as the EVAL folders)")
    metrics = {folder.name: read_metrics(folder) for folder in evals}
    curves = {
        name: read_training(runs / name) for name in names if runs is not None and (runs / name / CURVE).is_file()
    }
    rankings = {folder.name: read_sparsification(folder) for folder in evals}
    rankings = {name: ranking for name, ranking in rankings.items() if ranking is not None}
    if len({ranking.fractions for ranking in rankings.values()}) > 1:
        raise MtDepthError(
            f"sparsification.csv: the EVAL folders ({', '.join(rankings)}) remove different fractions; "
            "re-evaluate them with one mtdepth version"
        )
    rows = [model_row(name, metrics[name], curves.get(name)) for name in names]
    for row in rows:
        if row["model"] in rankings:
            row.update(ranking_columns(rankings[row["model"]]))
    table = markdown_table(rows)
    write_folder(out, lambda folder: write_report(folder, evals, metrics, rows, table, curves, rankings))
    click.echo(table, nl=False)
    if rankings:
        click.echo(f"AUSE of D_final's RMSE (mm, lower is better):\n{ranking_table(rankings)}", nl=False)
    click.echo(f"report: {len(rows)} models on {rows[0]['frames']} frames; {out}/report.md, panels in {out}/panels")


def read_metrics(folder: Path) -> dict:
    """An evaluate folder's metrics.json, or one line naming what is wrong with it."""
    path = folder / "metrics.json"
    if not folder.is_dir():
        raise MtDepthError(f"{folder}: not a folder (each EVAL is an `mtdepth evaluate --out` folder)")
    try:
        metrics = json.loads(path.read_text())
    except FileNotFoundError:
        raise MtDepthError(f"{path}: not found (is {folder} an `mtdepth evaluate --out` folder?)") from None
    except ValueError:  # not JSON (or not text)
        metrics = None
    problem = metrics_problem(metrics)
    if problem:
        raise MtDepthError(f"{path}: not a metrics.json written by `mtdepth evaluate` ({problem})")
    return metrics


def read_sparsification(folder: Path) -> Ranking | None:
    """An evaluate folder's sparsification.json and .csv (None for a folder written before them), or one line
    naming what is wrong with them."""
    path = folder / "sparsification.json"
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text())
        with open(folder / "sparsification.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        problem = ranking_problem(summary, rows)
        if problem is None:
            return read_ranking(summary, rows)
    except FileNotFoundError:
        problem = "sparsification.csv not found"
    except (ValueError, TypeError, csv.Error, UnicodeDecodeError) as exc:  # not JSON, not CSV, not a number
        problem = f"{type(exc).__name__}: {exc}"[:80]
    raise MtDepthError(f"{folder}: not the sparsification files of `mtdepth evaluate` ({problem})")


def write_report(
    folder: Path,
    evals: tuple[Path, ...],
    metrics: dict,
    rows: list[dict],
    table: str,
    curves: dict[str, Training],
    rankings: dict[str, Ranking],
) -> None:
    """Every report file into `folder`."""
    scored = "\n".join(
        f"- **{name}**: {m['source']} ({m['split']} split, {m['frames']} frames of {m['store']})"
        for name, m in metrics.items()
    )
    ranked = (
        "\n## Ranking by uncertainty: AUSE of D_final's RMSE (mm, lower is better)\n\nPer frame then the mean over "
        "frames, and pooled; learned = the model's own confidence, distance = to the nearest sparse sample, "
        "spread = std of the sparse depths around the pixel (docs/confidence.md). Curves: sparsification.png.\n\n"
        f"{ranking_table(rankings)}"
        if rankings
        else ""
    )
    (folder / "report.md").write_text(
        "# Depth completion: pooled errors of D_final\n\nRMSE and MAE in mm, iRMSE in 1/km; obj = object pixels, "
        "bnd = instance boundaries, bg = background (the regions of `mtdepth evaluate`).\n\n"
        f"{table}\n{scored}\n{ranked}"
    )
    write_json(folder / "report.json", {row["model"]: {k: v for k, v in row.items() if k != "model"} for row in rows})
    write_csv(folder / "regions.csv", region_rows(rows))
    if curves:
        curves_figure(folder / "curves.png", curves)
    if rankings:
        sparsification_figure(folder / "sparsification.png", rankings)
        write_csv(folder / "sparsification.csv", sparsification_rows(rankings))
    panels = folder / "panels"
    panels.mkdir()
    for panel in sorted(p.name for p in (evals[0] / "panels").glob("*.png")):
        present = [(f.name, f / "panels" / panel) for f in evals if (f / "panels" / panel).is_file()]
        tile_panels(present).save(panels / panel)
