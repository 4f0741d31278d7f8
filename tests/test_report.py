"""`mtdepth report`: the table from evaluate's metrics.json, curves from dvclive logs, tiled panels,
and every bad input as one line with nothing written."""

import csv
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from mtdepth.cli import cli
from mtdepth.pipeline.report import REGIONS, markdown_table, model_row, read_training, region_rows

PANEL = (60, 50)


def fake_eval(folder: Path, rmse: float, panels=("row00003.png",)) -> Path:
    """An evaluate folder: metrics.json with pooled D_final errors (rmse per region + offsets) and panels."""
    final = {
        region: {"rmse_mm": rmse + k, "mae_mm": rmse / 2, "irmse_per_km": 12.34} for k, region in enumerate(REGIONS)
    }
    (folder / "panels").mkdir(parents=True)
    (folder / "metrics.json").write_text(
        json.dumps(
            {
                "source": f"{folder.name} source",
                "store": "s.zarr",
                "split": "val",
                "frames": 7,
                "pooled": {"final": final},
            }
        )
    )
    for name in panels:
        Image.new("RGB", PANEL, "red").save(folder / "panels" / name)
    return folder


def fake_sparsification(folder: Path, methods=("distance", "spread"), start: float = 3000.0) -> None:
    """evaluate's sparsification.json and .csv: per method AUSE = 100 x its position, curves falling from `start`
    (plus an offset per method)."""
    areas = {m: {"ause_rmse_mm": 100.0 * (k + 1), "aurg_rmse_mm": 50.0} for k, m in enumerate(methods)}
    (folder / "sparsification.json").write_text(json.dumps({"frame_mean": areas, "pooled": areas}))
    names = ("oracle", *methods)
    offset = {"oracle": 0, "learned": 10, "distance": 20, "spread": 30}  # mm, so each column is told apart
    lines = [",".join(["fraction", *(f"{m}_rmse_mm" for m in names)])] + [
        ",".join([str(i / 50), *(str(start * (1 - i / 100) + offset[m]) for m in names)]) for i in range(50)
    ]
    (folder / "sparsification.csv").write_text("\n".join(lines) + "\n")


def fake_run(folder: Path, rmse: list[float], seconds: list[float]) -> None:
    """The dvclive files of a `mtdepth train` run that `report --runs` reads."""
    val, top = folder / "live" / "plots" / "metrics" / "val", folder / "live" / "plots" / "metrics"
    val.mkdir(parents=True)
    (val / "final_rmse_mm.tsv").write_text("step\tfinal_rmse_mm\n" + "".join(f"{i}\t{v}\n" for i, v in enumerate(rmse)))
    (top / "epoch_seconds.tsv").write_text(
        "step\tepoch_seconds\n" + "".join(f"{i}\t{v}\n" for i, v in enumerate(seconds))
    )


def report(*args):
    return CliRunner().invoke(cli, ["report", *map(str, args)])


def test_rows_table_and_region_rows():
    metrics = {
        "frames": 7,
        "pooled": {"final": {r: {"rmse_mm": 1234.4, "mae_mm": 500.6, "irmse_per_km": 3.21} for r in REGIONS}},
    }
    baseline = model_row("nearest", metrics, None)
    assert baseline["all/rmse_mm"] == 1234.4 and "epochs" not in baseline
    table = markdown_table([baseline])
    assert table.splitlines()[0] == "| model | RMSE | MAE | iRMSE | obj RMSE | obj MAE | bnd RMSE | bg RMSE |"
    assert table.splitlines()[2] == "| nearest | 1,234 | 501 | 3.2 | 1,234 | 501 | 1,234 | 1,234 |"
    assert [r["bar"] for r in region_rows([baseline])] == [f"{r}: nearest" for r in REGIONS]


def test_report_writes_table_json_curves_and_tiled_panels(tmp_path):
    evals = [fake_eval(tmp_path / "eval" / name, rmse) for name, rmse in (("nearest", 4000.0), ("unet", 3000.0))]
    fake_run(tmp_path / "train" / "unet", [9000.0, 5000.0, 5500.0], [60.0, 60.0, 60.0])
    out = tmp_path / "report"
    result = report("--runs", tmp_path / "train", "--out", out, *evals)
    assert result.exit_code == 0, result.output
    assert "| unet | 3,000 | 1,500 | 12.3 | 3,001 | 1,500 | 3,002 | 3,003 | 3 | 2 | 3.0 |" in result.output
    assert "| nearest | 4,000 | 2,000 | 12.3 | 4,001 | 2,000 | 4,002 | 4,003 | - | - | - |" in result.output
    rows = json.loads((out / "report.json").read_text())
    assert list(rows) == ["nearest", "unet"] and rows["unet"]["best_epoch"] == 2
    assert "unet source" in (out / "report.md").read_text()
    assert (out / "regions.csv").read_text().splitlines()[1].startswith("all: nearest,nearest,all,4000.0")
    with Image.open(out / "panels" / "row00003.png") as tiled:
        assert tiled.size == (2 * PANEL[0] // 2, PANEL[1] // 2)  # two models side by side at half size
    with Image.open(out / "curves.png") as curves:
        assert curves.width > 100
    assert read_training(tmp_path / "train" / "unet").seconds == 180.0


def test_report_draws_every_models_sparsification_curve_and_tabulates_ause(tmp_path):
    evals = [fake_eval(tmp_path / "eval" / name, 3000.0) for name in ("nearest", "conf", "old")]
    fake_sparsification(evals[0])
    fake_sparsification(evals[1], methods=("learned", "distance", "spread"), start=2000.0)  # "old": none
    out = tmp_path / "report"
    result = report("--out", out, *evals)
    assert result.exit_code == 0, result.output
    md = (out / "report.md").read_text()
    assert "| nearest | - | 100 | 200 | - | 100 | 200 |" in md and "| conf | 100 | 200 | 300 | 100 | 200 | 300 |" in md
    assert "| old |" not in md.split("Ranking by uncertainty")[1]
    with open(out / "sparsification.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["fraction", "nearest", "conf"] and len(rows) == 50
    assert float(rows[1]["conf"]) == pytest.approx(2000.0 * 0.99 + 10)  # conf's learned curve
    assert float(rows[1]["nearest"]) == pytest.approx(3000.0 * 0.99 + 20)  # nearest's distance curve
    rows = json.loads((out / "report.json").read_text())
    assert (
        rows["conf"]["frame_mean/ause_rmse_mm/learned"] == 100.0
        and "frame_mean/ause_rmse_mm/learned" not in rows["old"]
    )
    with Image.open(out / "sparsification.png") as image:
        assert image.width > 100


def test_no_sparsification_files_no_plot(tmp_path):
    evals = [fake_eval(tmp_path / "eval" / "old", 3000.0)]
    assert report("--out", tmp_path / "report", *evals).exit_code == 0
    assert not (tmp_path / "report" / "sparsification.png").exists()
    assert "Ranking by uncertainty" not in (tmp_path / "report" / "report.md").read_text()


@pytest.mark.parametrize(
    "break_it,message",
    [
        (lambda folder: (folder / "sparsification.json").write_text("{oops"), "(JSONDecodeError"),
        (lambda folder: (folder / "sparsification.csv").unlink(), "(sparsification.csv not found)"),
        (
            lambda folder: _set(folder / "sparsification.json", ("pooled", "distance", "ause_rmse_mm"), "1"),
            "pooled.distance.ause_rmse_mm is '1', not a number",
        ),
        (lambda folder: (folder / "sparsification.csv").write_text("a,b\n1,2\n"), "no 'fraction' and"),
        (
            lambda folder: (folder / "sparsification.csv").write_text("fraction,distance_rmse_mm\n0,x\n"),
            "(ValueError",
        ),
    ],
)
def test_bad_sparsification_files_are_one_line(tmp_path, break_it, message):
    evals = [fake_eval(tmp_path / "eval" / name, 3000.0) for name in ("a", "b")]
    for folder in evals:
        fake_sparsification(folder)
    break_it(evals[1])
    result = report("--out", tmp_path / "report", *evals)
    errors = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(errors) == 1 and message in errors[0] and str(evals[1]) in errors[0], errors
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize(
    "break_it,message",
    [
        (lambda evals: (evals[1] / "metrics.json").unlink(), "metrics.json: not found (is "),
        (lambda evals: (evals[1] / "metrics.json").write_text("{}"), "metrics.json: not a metrics.json written by"),
        (lambda evals: (evals[1] / "metrics.json").write_text("{oops"), "metrics.json: not a metrics.json written by"),
    ],
)
def test_bad_eval_folders_are_refused_in_one_line_writing_nothing(tmp_path, break_it, message):
    evals = [fake_eval(tmp_path / name, 1000.0) for name in ("a", "b")]
    break_it(evals)
    result = report("--out", tmp_path / "report", *evals)
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr and str(evals[1]) in result.stderr
    assert not (tmp_path / "report").exists()


def test_two_eval_folders_with_one_name_are_refused(tmp_path):
    evals = [fake_eval(tmp_path / side / "unet", 1000.0) for side in ("x", "y")]
    result = report("--out", tmp_path / "report", *evals)
    assert result.exit_code == 2 and "two EVAL folders share a name (unet)" in result.stderr


def test_a_failed_report_keeps_the_previous_one(tmp_path):
    evals = [fake_eval(tmp_path / "a", 1000.0)]
    assert report("--out", tmp_path / "report", *evals).exit_code == 0
    before = (tmp_path / "report" / "report.json").read_text()
    (evals[0] / "metrics.json").write_text("[]")
    assert report("--out", tmp_path / "report", *evals).exit_code == 2
    assert (tmp_path / "report" / "report.json").read_text() == before


def _set(path: Path, keys: tuple, value) -> None:
    data = json.loads(path.read_text())
    node = data
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    path.write_text(json.dumps(data))


def _swap_for_a_file(folder: Path) -> None:
    for path in sorted(folder.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    folder.rmdir()
    folder.write_text("not a folder")


@pytest.mark.parametrize(
    "break_it,message",
    [
        (
            lambda root: _set(root / "eval" / "unet" / "metrics.json", ("pooled", "final", "all", "rmse_mm"), "3000"),
            "metrics.json: not a metrics.json written by `mtdepth evaluate` (pooled.final.all.rmse_mm is '3000'",
        ),
        (
            lambda root: _set(root / "eval" / "unet" / "metrics.json", ("frames",), "7"),
            "('frames' is '7', not a number)",
        ),
        (
            lambda root: _set(root / "eval" / "unet" / "metrics.json", ("pooled", "final", "object"), 5),
            "no pooled.final.object",
        ),
        (lambda root: _swap_for_a_file(root / "eval" / "unet"), "unet: not a folder (each EVAL is"),
        (
            lambda root: (
                root / "train" / "unet" / "live" / "plots" / "metrics" / "val" / "final_rmse_mm.tsv"
            ).write_text("garbage\nrows\n"),
            "final_rmse_mm.tsv: not a dvclive log of `mtdepth train` (KeyError",
        ),
        (
            lambda root: (
                root / "train" / "unet" / "live" / "plots" / "metrics" / "val" / "final_rmse_mm.tsv"
            ).write_text("step\tfinal_rmse_mm\n0\tnan-ish\n"),
            "final_rmse_mm.tsv: not a dvclive log of `mtdepth train` (ValueError",
        ),
        (
            lambda root: (
                root / "train" / "unet" / "live" / "plots" / "metrics" / "val" / "final_rmse_mm.tsv"
            ).write_text("step\tfinal_rmse_mm\n"),
            "final_rmse_mm.tsv: holds no epoch",
        ),
        (
            lambda root: (root / "train" / "unet" / "live" / "plots" / "metrics" / "epoch_seconds.tsv").unlink(),
            "epoch_seconds.tsv: not a dvclive log of `mtdepth train` (No such file",
        ),
        (lambda root: shutil.rmtree(root / "train"), "train: --runs folder not found"),
    ],
)
def test_malformed_inputs_are_one_line_and_the_old_report_stays(tmp_path, break_it, message):
    evals = [fake_eval(tmp_path / "eval" / name, rmse) for name, rmse in (("nearest", 4000.0), ("unet", 3000.0))]
    fake_run(tmp_path / "train" / "unet", [9000.0, 5000.0], [60.0, 60.0])
    out = tmp_path / "report"
    assert report("--runs", tmp_path / "train", "--out", out, *evals).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    break_it(tmp_path)
    result = report("--runs", tmp_path / "train", "--out", out, *evals)
    errors = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(errors) == 1 and message in errors[0], result.output
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
