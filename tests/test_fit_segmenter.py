"""`mtdepth fit-segmenter` on a tiny synthetic set: frozen .pt/.onnx + report that `segment` accepts."""

import json

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from mtdepth.cache.store import open_store
from mtdepth.cli import cli

pytestmark = pytest.mark.slow  # minutes: end to end through YOLO, training or dvc repro


def test_fitted_weights_serve_stage_one_as_pt_and_onnx(tmp_path):
    params = {
        "synth": {"scenes": ["Scene01"], "conditions": ["clone"], "frames": 3, "image_width": 310, "image_height": 94},
        "data": {"height": 64, "width": 128},
        "segmenter": {"imgsz": 64, "device": "cpu", "batch": 2},
        "store": {"mask_sources": ["yolo"], "shard_frames": 2},
    }
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    runner = CliRunner()
    for folder, seed in (("train", 1), ("val", 2)):
        result = runner.invoke(
            cli, ["synth", "--params", str(params_file), "--out", str(tmp_path / folder), "--seed", str(seed)]
        )
        assert result.exit_code == 0, result.output
    out = tmp_path / "weights" / "tiny"
    result = runner.invoke(
        cli,
        [
            "fit-segmenter",
            "--params",
            str(params_file),
            "--data",
            str(tmp_path / "train"),
            "--val-data",
            str(tmp_path / "val"),
            "--out",
            str(out),
            "--imgsz",
            "64",
            "--epochs",
            "1",
            "--batch",
            "2",
            "--device",
            "cpu",
            "--work-dir",
            str(tmp_path / "run"),
        ],
        prog_name="mtdepth",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["train_frames"] == 3 and report["val_frames"] == 3 and report["epochs_run"] == 1
    assert report["train_instances"] > 0 and report["classes"] == {"0": "vehicle", "1": "pedestrian"}
    assert 0.0 <= report["merged_foreground_iou"] <= 1.0 and "mask_map50" in report
    assert report["train_data_synth"]["seed"] == 1 and report["val_data_synth"]["seed"] == 2
    assert report["command"].startswith("mtdepth fit-segmenter --params ") and "--epochs 1" in report["command"]

    label_files = sorted((tmp_path / "run" / "yolo-data" / "labels" / "train").glob("*.txt"))
    first = label_files[0].read_text().splitlines()[0].split()
    coords = np.array(first[1:], dtype=float)
    assert first[0] in ("0", "1") and len(coords) >= 6 and len(coords) % 2 == 0
    assert ((coords >= 0) & (coords <= 1)).all()

    tuned = tmp_path / "weights" / "tuned"
    result = runner.invoke(
        cli,
        [
            "fit-segmenter",
            "--params",
            str(params_file),
            "--data",
            str(tmp_path / "train"),
            "--val-data",
            str(tmp_path / "val"),
            "--out",
            str(tuned),
            "--imgsz",
            "64",
            "--weights",
            str(out.with_suffix(".pt")),
            "--epochs",
            "1",
            "--batch",
            "2",
            "--device",
            "cpu",
            "--work-dir",
            str(tmp_path / "run-tuned"),
        ],
    )
    assert result.exit_code == 0, result.output
    tuned_report = json.loads(tuned.with_suffix(".json").read_text())
    assert tuned_report["start_model"] == str(out.with_suffix(".pt"))
    assert tuned_report["start_model_report"]["fit_seconds"] == report["fit_seconds"]

    for weights in (out.with_suffix(".pt"), out.with_suffix(".onnx")):
        store = tmp_path / f"store-{weights.suffix[1:]}.zarr"
        result = runner.invoke(
            cli,
            [
                "segment",
                "--params",
                str(params_file),
                "--data",
                str(tmp_path / "val"),
                "--store",
                str(store),
                "--weights",
                str(weights),
            ],
        )
        assert result.exit_code == 0, result.output
        reader = open_store(str(store))
        assert reader.verify() == [] and reader.provenance("mask/yolo")["segmenter"]["weights_name"] == weights.name
