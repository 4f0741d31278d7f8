"""`mtdepth evaluate --input DIR` on a tiny hand-made KITTI-layout folder with groundtruth/."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from mtdepth.cli import cli
from mtdepth.pipeline import kitti_io
from mtdepth.pipeline.baselines import nearest_fill
from mtdepth.pipeline.metrics import error_sums, rmse_mae_mm

SIZES = [(40, 70), (36, 90), (40, 70)]


def labelled_folder(root, sparse_folder="velodyne_raw", truth_folder="groundtruth"):
    """Three frames in KITTI's naming: ..._image_N.png, ..._velodyne_raw_N.png, ..._groundtruth_depth_N.png."""
    rng = np.random.default_rng(0)
    for sub in ("image", sparse_folder, truth_folder):
        (root / sub).mkdir(parents=True, exist_ok=True)
    truths, samples = {}, {}
    for i, (h, w) in enumerate(SIZES):
        name = f"2011_09_26_drive_0002_sync_image_{i:010d}_image_02"
        truth = np.where(rng.random((h, w)) < 0.3, rng.uniform(2, 60, (h, w)), 0).astype(np.float32)
        sparse = np.where(rng.random((h, w)) < 0.1, rng.uniform(2, 60, (h, w)), 0).astype(np.float32)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / "image" / f"{name}.png")
        kitti_io.write_depth_png(root / sparse_folder / f"{name.replace('_image_', '_velodyne_raw_', 1)}.png", sparse)
        truth_file = root / truth_folder / f"{name.replace('_image_', '_groundtruth_depth_', 1)}.png"
        kitti_io.write_depth_png(truth_file, truth)
        truths[name] = kitti_io.read_depth_png(truth_file)
        samples[name] = kitti_io.decode_depth(kitti_io.encode_depth(sparse))
    return truths, samples


def test_a_baseline_scored_on_labelled_frames(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no params.yaml here: defaults
    truths, samples = labelled_folder(tmp_path / "kitti")
    result = CliRunner().invoke(
        cli, ["evaluate", "--input", str(tmp_path / "kitti"), "--baseline", "nearest", "--out", str(tmp_path / "eval")]
    )
    assert result.exit_code == 0, result.output
    sums = sum(
        error_sums(
            nearest_fill(torch.from_numpy(samples[n])[None, None]), torch.from_numpy(truths[n])[None, None], 80.0
        )
        for n in sorted(truths)
    )
    expected = rmse_mae_mm(sums)
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["frames"] == 3 and metrics["pooled"]["final"]["all"]["rmse_mm"] == pytest.approx(expected["rmse_mm"])
    assert metrics["pooled"]["final"]["all"]["mae_mm"] == pytest.approx(expected["mae_mm"])
    assert metrics["pooled"]["final"]["object"]["pixels"] == 0  # no instance ground truth in a KITTI folder
    with open(tmp_path / "eval" / "per_frame.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [row["name"] for row in rows] == sorted(truths)
    assert sorted(p.name for p in (tmp_path / "eval" / "panels").iterdir()) == [f"{sorted(truths)[0]}.png"]
    assert "evaluate: nearest baseline: 3 frames" in result.output
    sparsification = json.loads((tmp_path / "eval" / "sparsification.json").read_text())
    assert sparsification["frames"] == 3 and sparsification["methods"] == ["distance", "spread"]
    assert (tmp_path / "eval" / "sparsification.csv").is_file() and "AUSE (RMSE, pooled)" in result.output


def test_a_checkpoint_and_its_onnx_score_alike(tmp_path, monkeypatch):
    from factories import make_checkpoint

    monkeypatch.chdir(tmp_path)
    labelled_folder(tmp_path / "kitti", sparse_folder="sparse", truth_folder="groundtruth_depth")  # KITTI's name
    checkpoint = make_checkpoint(tmp_path / "tiny.pt")
    assert (
        CliRunner()
        .invoke(cli, ["export", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "tiny.onnx")])
        .exit_code
        == 0
    )
    scores = {}
    for path in (checkpoint, tmp_path / "tiny.onnx"):
        out = tmp_path / f"eval-{path.suffix[1:]}"
        result = CliRunner().invoke(
            cli,
            [
                "evaluate",
                "--input",
                str(tmp_path / "kitti"),
                "--checkpoint",
                str(path),
                "--out",
                str(out),
                "--device",
                "cpu",
            ],
        )
        assert result.exit_code == 0, result.output
        scores[path.suffix] = json.loads((out / "metrics.json").read_text())["pooled"]["final"]["all"]["rmse_mm"]
    assert scores[".pt"] == pytest.approx(scores[".onnx"], rel=1e-3)


@pytest.mark.parametrize(
    "damage, fragment",
    [
        (lambda root: (root / "groundtruth").rename(root / "gt"), "no groundtruth/ folder"),
        (lambda root: next((root / "groundtruth").iterdir()).unlink(), "no ground truth groundtruth/"),
        (
            lambda root: kitti_io.write_depth_png(next((root / "groundtruth").iterdir()), np.ones((5, 5))),
            "size 5x5 differs from the image's",
        ),
    ],
)
def test_bad_folders_are_one_line_exit_2(tmp_path, monkeypatch, damage, fragment):
    monkeypatch.chdir(tmp_path)
    labelled_folder(tmp_path / "kitti")
    damage(tmp_path / "kitti")
    result = CliRunner().invoke(
        cli, ["evaluate", "--input", str(tmp_path / "kitti"), "--baseline", "ipbasic", "--out", str(tmp_path / "eval")]
    )
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and not (tmp_path / "eval").exists()
