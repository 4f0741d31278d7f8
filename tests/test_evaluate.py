"""`mtdepth evaluate` end to end on a tiny store: a checkpoint, both baselines, panels, every bad input."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from PIL import Image

from mtdepth.cache.dataset import CachedDepthDataset
from mtdepth.cache.store import FrameTable, open_for_write
from mtdepth.cli import cli
from mtdepth.errors import MtDepthError
from mtdepth.pipeline.baselines import nearest_fill
from mtdepth.pipeline.checkpoint import CheckpointInfo, checkpoint_state, save_checkpoint
from mtdepth.pipeline.metrics import error_sums, rmse_mae_mm
from mtdepth.pipeline.models import MTDepth, UNetBaseline
from mtdepth.pipeline.panels import PanelStyle, panel_size

N, H, W, SHARD = 8, 32, 64, 4
SPLIT = (0, 1, 0, 0, 1, 0, 1, 0)  # val rows 1, 4, 6
VAL_ROWS = [1, 4, 6]
PROVENANCE = {
    "rgb": {"source": "tiny", "height": H, "width": W},
    "depth": {"source": "tiny", "max_depth": 80.0},
    "sparse": {"source": "tiny", "keep_prob": 0.05, "seed": 0},
    "mask/yolo": {"source": "tiny", "segmenter": "yolo11n"},
    "mask/gt": {"source": "tiny", "instances": True},
}
PANEL_DPI = 20
EVALUATE = {"batch": 2, "workers": 0, "boundary_px": 2, "panel_frames": [0, 2, 50], "panel_dpi": PANEL_DPI}
GROUPS = ["all", "object", "boundary", "background", "d0-20", "d20-40", "d40-80"]
CALIBRATION = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, float("inf"))  # evaluate.calibration_bins' default


def make_store(url, arrays=tuple(PROVENANCE), split=SPLIT) -> None:
    """Streets of a sort: depth growing downwards-to-upwards, a box instance, 10% samples."""
    rng = np.random.default_rng(0)
    rows = np.arange(H)[:, None]
    depth = np.broadcast_to(np.where(rows > 4, 500 + 7000 * (H - rows) / H, 0), (N, H, W)).astype(np.uint16).copy()
    objects = np.zeros((N, H, W), np.uint8)
    for i in range(N):
        top, left = 8 + i % 4, 10 + 4 * i
        objects[i, top : top + 12, left : left + 16] = 1
        depth[i][objects[i] == 1] = 900 + 100 * i
    data = {
        "rgb": rng.integers(0, 256, (N, H, W, 3), dtype=np.uint8),
        "depth": depth,
        "sparse": np.where(rng.random((N, H, W)) < 0.1, depth, 0).astype(np.uint16),
        "mask/yolo": objects,
        "mask/gt": objects,
    }
    frames = FrameTable(("Scene01",) * N, ("clone",) * N, ("Camera_0",) * N, tuple(range(N)), split)
    writer = open_for_write(url, frames, H, W, SHARD)
    for name in arrays:
        for shard in writer.pending(name, PROVENANCE[name]):
            start, stop = writer.shard_bounds(shard)
            writer.write_shard(name, shard, data[name][start:stop])
        writer.commit(name)


def make_checkpoint(path, model=None, **changes) -> None:
    model = model or MTDepth(
        channels=(4, 8), attention_dim=8, attention_size=(4, 8), fusion_channels=8, head_channels=8, se_reduction=2
    )
    info = dict(
        model_config=model.config,
        mask_source="yolo",
        height=H,
        width=W,
        max_depth=80.0,
        store_url="tiny",
        store_provenance={k: v for k, v in PROVENANCE.items() if k != "mask/gt"},
        segmenter=None,
    )
    save_checkpoint(path, checkpoint_state(model, CheckpointInfo(**{**info, **changes})))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    make_store(root / "store.zarr")
    make_checkpoint(root / "mtdepth.pt")
    (root / "params.yaml").write_text(yaml.safe_dump({"evaluate": EVALUATE}))
    return root


def run(workspace, *args):
    return CliRunner().invoke(
        cli, ["evaluate", "--params", str(workspace / "params.yaml"), "--store", str(workspace / "store.zarr"), *args]
    )


def val_batch(workspace, mask_source="none"):
    dataset = CachedDepthDataset(workspace / "store.zarr", split="val", mask_source=mask_source)
    items = [dataset[i] for i in range(len(dataset))]
    return {k: torch.stack([item[k] for item in items]) for k in ("rgb", "sparse", "valid", "mask", "depth")}


def test_checkpoint_end_to_end(workspace, tmp_path):
    out = tmp_path / "eval"
    result = run(workspace, "--checkpoint", str(workspace / "mtdepth.pt"), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "evaluate: mtdepth checkpoint" in result.output and "3 frames" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["frames"] == 3 and metrics["split"] == "val"
    for average, count in (("pooled", "pixels"), ("frame_mean", "frames")):
        assert set(metrics[average]) == {"init", "final"}
        assert list(metrics[average]["final"]) == GROUPS
        assert set(metrics[average]["final"]["all"]) == {
            "rmse_mm",
            "mae_mm",
            "irmse_per_km",
            "imae_per_km",
            "rel",
            "delta1",
            "delta2",
            "delta3",
            count,
        }
    # the same numbers as the model scored by hand with the training loop's sums
    from mtdepth.pipeline.checkpoint import model_from_checkpoint

    model, _ = model_from_checkpoint(workspace / "mtdepth.pt")
    batch = val_batch(workspace, "yolo")
    with torch.no_grad():
        final = model(batch["rgb"], batch["sparse"], batch["valid"], batch["mask"])["final"]
    expected = rmse_mae_mm(error_sums(final, batch["depth"], 80.0))
    assert metrics["pooled"]["final"]["all"]["rmse_mm"] == pytest.approx(expected["rmse_mm"], rel=1e-5)
    assert metrics["pooled"]["final"]["all"]["pixels"] == int(((batch["depth"] > 0) & (batch["depth"] <= 80)).sum())
    assert metrics["frame_mean"]["final"]["object"]["frames"] == 3
    with open(out / "per_frame.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["row"]) for r in rows] == VAL_ROWS and rows[0]["scene"] == "Scene01"
    assert "init.boundary.rmse_mm" in rows[0] and "final.d40-80.delta1" in rows[0]
    panels = sorted(p.name for p in (out / "panels").iterdir())
    assert panels == ["row00001.png", "row00006.png"]  # positions 0 and 2; 50 is beyond the 3 frames
    with Image.open(out / "panels" / panels[0]) as image:
        assert image.size == panel_size(PanelStyle(max_depth=80.0, dpi=PANEL_DPI))


def test_sparsification_files_of_a_model_without_confidence(workspace, tmp_path):
    out = tmp_path / "eval"
    result = run(workspace, "--checkpoint", str(workspace / "mtdepth.pt"), "--out", str(out))
    assert result.exit_code == 0, result.output
    found = json.loads((out / "sparsification.json").read_text())
    assert found["output"] == "final" and found["frames"] == 3 and found["steps"] == 50
    assert found["methods"] == ["distance", "spread"] and found["spread_window_px"] == 21
    for average in ("frame_mean", "pooled"):
        assert set(found[average]) == {"distance", "spread"}
        for areas in found[average].values():
            assert set(areas) == {"ause_rmse_mm", "aurg_rmse_mm", "ause_mae_mm", "aurg_mae_mm"}
            assert areas["ause_rmse_mm"] >= 0 and areas["ause_mae_mm"] >= 0
    assert found["calibration"] is None and not (out / "calibration.csv").exists()
    for name in ("sparsification.csv", "sparsification_pooled.csv"):
        with open(out / name) as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == 50 and float(rows[0]["fraction"]) == 0 and float(rows[-1]["fraction"]) == 0.98
        assert {"oracle_rmse_mm", "distance_rmse_mm", "spread_mae_mm", "random_rmse_mm"} <= set(rows[0])
        assert all(float(r["oracle_rmse_mm"]) <= float(r["distance_rmse_mm"]) + 1e-6 for r in rows)
    metrics = json.loads((out / "metrics.json").read_text())
    with open(out / "sparsification.csv") as fh:
        first = next(csv.DictReader(fh))
    assert float(first["random_rmse_mm"]) == pytest.approx(metrics["frame_mean"]["final"]["all"]["rmse_mm"])
    assert "final AUSE (RMSE, per-frame mean): distance " in result.output and "spread " in result.output
    report = CliRunner().invoke(cli, ["report", "--out", str(tmp_path / "report"), str(out)])
    assert report.exit_code == 0, report.output
    assert (tmp_path / "report" / "sparsification.png").is_file()
    assert "| eval | - | " in (tmp_path / "report" / "report.md").read_text()  # no learned AUSE, then distance


class WithConfidence(torch.nn.Module):
    """A tiny real model plus a log_scale output (the interface of a model with `confidence: on`)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, *inputs):
        out = self.model(*inputs)
        return {**out, "log_scale": torch.log(0.5 + out["final"].abs() / 10)}


def test_a_model_with_a_confidence_output_is_ranked_and_calibrated(workspace, tmp_path, monkeypatch):
    import mtdepth.cache.evaluate_run as evaluate_run

    real = evaluate_run.model_from_checkpoint
    monkeypatch.setattr(
        evaluate_run,
        "model_from_checkpoint",
        lambda path, device: (WithConfidence(real(path, device)[0]), real(path, device)[1]),
    )
    out = tmp_path / "eval"
    result = run(workspace, "--checkpoint", str(workspace / "mtdepth.pt"), "--out", str(out))
    assert result.exit_code == 0, result.output
    found = json.loads((out / "sparsification.json").read_text())
    assert found["methods"] == ["learned", "distance", "spread"]
    assert found["frame_mean"]["learned"]["ause_rmse_mm"] >= 0
    with open(out / "calibration.csv") as fh:
        bins = list(csv.DictReader(fh))
    assert [(float(b["lo_m"]), float(b["hi_m"])) for b in bins] == list(zip(CALIBRATION[:-1], CALIBRATION[1:]))
    metrics = json.loads((out / "metrics.json").read_text())
    assert sum(int(b["pixels"]) for b in bins) == metrics["pooled"]["final"]["all"]["pixels"]  # last edge inf
    filled = [b for b in bins if int(b["pixels"])]
    assert found["calibration"]["worst_factor"] == pytest.approx(
        max(max(float(b["ratio"]), 1 / float(b["ratio"])) for b in filled)
    )
    assert found["calibration"]["bins"][-1]["hi_m"] is None  # inf: JSON has none
    with open(out / "sparsification.csv") as fh:
        assert "learned_rmse_mm" in next(csv.DictReader(fh))
    assert "final AUSE (RMSE, per-frame mean): learned " in result.output and "calibration: every bin" in result.output


def test_a_unet_without_mask_scores_init_equal_to_final(workspace, tmp_path):
    make_checkpoint(tmp_path / "unet.pt", model=UNetBaseline(channels=(4, 8)), mask_source="none")
    result = run(workspace, "--checkpoint", str(tmp_path / "unet.pt"), "--out", str(tmp_path / "eval"))
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["pooled"]["init"] == metrics["pooled"]["final"]
    assert "mask none" in metrics["source"]


@pytest.mark.parametrize("name", ["nearest", "ipbasic"])
def test_baselines_through_the_same_evaluator(workspace, tmp_path, name):
    out = tmp_path / name
    result = run(workspace, "--baseline", name, "--out", str(out), "--split", "all", "--frames", "5")
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["frames"] == 5 and set(metrics["pooled"]) == {"final"}
    assert metrics["source"] == f"{name} baseline"
    assert len(list((out / "panels").iterdir())) == 2
    overall = metrics["pooled"]["final"]["all"]
    assert 0 < overall["mae_mm"] <= overall["rmse_mm"] and 0 <= overall["delta1"] <= 1


def test_nearest_metrics_equal_a_direct_computation_and_repeat_exactly(workspace, tmp_path):
    runs = [tmp_path / "a", tmp_path / "b"]
    for out in runs:
        assert run(workspace, "--baseline", "nearest", "--out", str(out)).exit_code == 0
    first, second = ((out / "metrics.json").read_text() for out in runs)
    assert first == second
    assert (runs[0] / "sparsification.json").read_text() == (runs[1] / "sparsification.json").read_text()
    batch = val_batch(workspace)
    expected = rmse_mae_mm(error_sums(nearest_fill(batch["sparse"]), batch["depth"], 80.0))
    assert json.loads(first)["pooled"]["final"]["all"]["mae_mm"] == pytest.approx(expected["mae_mm"], rel=1e-6)


def test_a_successful_run_replaces_an_old_output_folder(workspace, tmp_path):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    assert run(workspace, "--baseline", "nearest", "--out", str(out)).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "metrics.json",
        "panels",
        "per_frame.csv",
        "sparsification.csv",
        "sparsification.json",
        "sparsification_pooled.csv",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval"]  # no temporary folder left


def test_a_failure_while_writing_leaves_the_old_output_and_no_partial_folder(workspace, tmp_path, monkeypatch):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "metrics.json").write_text("{}")

    def full_disk(*args, **kwargs):
        raise MtDepthError("panels: no space left on device")

    monkeypatch.setattr("mtdepth.cache.evaluate_run.render_panel", full_disk)
    result = run(workspace, "--baseline", "nearest", "--out", str(out))
    assert result.exit_code == 2 and "no space left" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval"]
    assert [p.name for p in out.iterdir()] == ["metrics.json"] and (out / "metrics.json").read_text() == "{}"


def bad_checkpoints(root):
    """name -> (checkpoint path, fragment of the one-line error)."""
    (root / "text.pt").write_text("not a checkpoint")
    make_checkpoint(root / "size.pt", height=64, width=128)
    make_checkpoint(root / "depth.pt", max_depth=60.0)
    make_checkpoint(
        root / "provenance.pt", store_provenance={**PROVENANCE, "sparse": {**PROVENANCE["sparse"], "keep_prob": 0.07}}
    )
    make_checkpoint(root / "unet.pt", model=UNetBaseline(channels=(4, 8)))
    state = torch.load(root / "unet.pt", weights_only=True)
    state["model_config"]["channels"] = [4, 16]  # weights of another architecture
    torch.save(state, root / "mismatch.pt")
    return {
        "not a checkpoint": (root / "text.pt", "not a readable checkpoint"),
        "missing": (root / "absent.pt", "checkpoint not found"),
        "incompatible model": (root / "mismatch.pt", "weights do not fit the model config"),
        "resolution": (root / "size.pt", "frames are 32x64, the checkpoint was trained at 64x128"),
        "max depth": (root / "depth.pt", "trained with max_depth 60 m, data.max_depth is 80"),
        "provenance": (root / "provenance.pt", "array 'sparse' was made with"),
    }


def test_every_bad_input_is_one_line_exit_2_and_writes_nothing(workspace, tmp_path):
    bad = bad_checkpoints(tmp_path)
    make_store(tmp_path / "gt-only.zarr", arrays=("rgb", "depth", "sparse", "mask/gt"), split=(0,) * N)
    make_store(tmp_path / "no-gt.zarr", arrays=("rgb", "depth", "sparse"))
    (tmp_path / "a-file").write_text("")
    cases = [(["--checkpoint", str(path)], fragment) for path, fragment in bad.values()] + [
        (
            ["--checkpoint", str(workspace / "mtdepth.pt"), "--store", str(tmp_path / "gt-only.zarr")],
            "has no array 'mask/yolo'",
        ),
        (["--baseline", "nearest", "--store", str(tmp_path / "gt-only.zarr")], "split 'val' has no frames"),
        (["--baseline", "nearest", "--store", str(tmp_path / "no-gt.zarr")], "has no mask/gt"),
        (["--baseline", "nearest", "--store", str(tmp_path / "absent.zarr")], "absent.zarr"),
        (["--baseline", "nearest", "--checkpoint", str(workspace / "mtdepth.pt")], "exactly one of"),
        ([], "exactly one of"),
    ]
    for args, fragment in cases:
        out = tmp_path / "out"
        result = run(workspace, *args, "--out", str(out))
        assert result.exit_code == 2, (args, result.output)
        assert fragment in result.output, (args, result.output)
        assert result.output.count("\n") == 1 and "Traceback" not in result.output
        assert not out.exists()
    result = run(workspace, "--baseline", "nearest", "--out", str(tmp_path / "a-file"))
    assert result.exit_code == 2 and "output path exists and is a file" in result.output
    result = run(
        workspace,
        "--baseline",
        "ipbasic",
        "--out",
        str(tmp_path / "out"),
        "--params",
        str(_params(tmp_path, ipbasic_max_depth=60.0)),
    )
    assert result.exit_code == 2 and "evaluate.ipbasic_max_depth (60) must exceed data.max_depth" in result.output
    result = run(
        workspace,
        "--baseline",
        "nearest",
        "--out",
        str(tmp_path / "out"),
        "--params",
        str(_params(tmp_path, distance_bins=[0.0, 40.0, 20.0])),
    )
    assert result.exit_code == 2 and "evaluate.distance_bins must be two or more increasing edges" in result.output
    for bad, message in (
        ({"spread_window": 4}, "evaluate.spread_window must be an odd number of pixels >= 3, got 4"),
        ({"calibration_bins": [0.0, 1.0, 0.5]}, "evaluate.calibration_bins must be two or more increasing edges"),
        ({"pooled_pixels": 0}, "evaluate.pooled_pixels must be >= 1 pixels, got 0"),
    ):
        args = ("--baseline", "nearest", "--out", str(tmp_path / "out"), "--params", str(_params(tmp_path, **bad)))
        result = run(workspace, *args)
        assert result.exit_code == 2 and message in result.output and result.output.count("\n") == 1, result.output
    assert [p.name for p in tmp_path.iterdir() if ".partial-" in p.name or ".old-" in p.name] == []


def _params(root, **evaluate):
    path = root / "params-bad.yaml"
    path.write_text(yaml.safe_dump({"evaluate": {**EVALUATE, **evaluate}}))
    return path
