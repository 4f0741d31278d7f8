"""Every stage-two command writing onto a read-only or a full file system: one line naming the path,
exit code 2, and the outputs of the previous run left as they were (tests/fs_faults.py: a real tmpfs)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from mtdepth.cli import cli
from mtdepth.pipeline import kitti_io
from fs_faults import needs_unshare, run_on_faulty_disk, snapshot
from factories import build_tiny_store

pytestmark = pytest.mark.slow  # minutes: real training subprocesses

TRAIN = {
    "model": "mtdepth",
    "mask_source": "gt",
    "epochs": 2,
    "workers": 0,
    "precision": "fp32",
    "warmup_steps": 2,
    "device": "cpu",
    "batch": 4,
    "compile": "off",
}
MODEL = {
    "unet_channels": [4, 8, 16],
    "attention_dim": 8,
    "attention_size": [4, 8],
    "fusion_channels": 16,
    "head_channels": 8,
    "se_reduction": 4,
}
LEFT_FOR_TRAIN = 16 << 10  # room for the logs' rows, none for a checkpoint: torch.save itself fails


def cli_ok(*args) -> None:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, synth_tree) -> Path:
    """A tiny store, a run trained 1 of 2 epochs, an evaluation, a report, two KITTI frames and their predictions,
    an ONNX export: the outputs each command is rerun over, under prior/<command>/out."""
    root = tmp_path_factory.mktemp("fs")
    params, _ = build_tiny_store(root, synth_tree(), model=MODEL, train=TRAIN)
    prior = root / "prior"
    cli_ok("train", "--params", params, "--out", prior / "train" / "out", "--epochs", "1")
    checkpoint = root / "model.pt"
    shutil.copyfile(prior / "train" / "out" / "best.pt", checkpoint)
    cli_ok(
        "evaluate", "--params", params, "--checkpoint", checkpoint, "--out", prior / "evaluate" / "out", "--frames", "2"
    )
    cli_ok("report", "--out", prior / "report" / "out", prior / "evaluate" / "out")
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (root / "kitti" / "image").mkdir(parents=True, exist_ok=True)
        (root / "kitti" / "sparse").mkdir(exist_ok=True)
        image = Image.fromarray(rng.integers(0, 256, (40, 72, 3), dtype=np.uint8))
        image.save(root / "kitti" / "image" / f"{name}.png")
        kitti_io.write_depth_png(
            root / "kitti" / "sparse" / f"{name}.png", (rng.random((40, 72)) < 0.05) * rng.uniform(1, 70, (40, 72))
        )
    cli_ok(
        "predict",
        "--checkpoint",
        checkpoint,
        "--input",
        root / "kitti",
        "--out",
        prior / "predict" / "out",
        "--mask-source",
        "none",
        "--npy",
        "--device",
        "cpu",
    )
    (prior / "export" / "out").mkdir(parents=True)
    cli_ok("export", "--checkpoint", checkpoint, "--out", prior / "export" / "out" / "model.onnx")
    return root


def command(inputs: Path, name: str, out: Path) -> list[str]:
    params, checkpoint = inputs / "params.yaml", inputs / "model.pt"
    args = {
        "train": ["train", "--params", params, "--out", out, "--resume"],
        "evaluate": ["evaluate", "--params", params, "--checkpoint", checkpoint, "--out", out, "--frames", "2"],
        "report": ["report", "--out", out, inputs / "prior" / "evaluate" / "out"],
        "predict": [
            "predict",
            "--checkpoint",
            checkpoint,
            "--input",
            inputs / "kitti",
            "--out",
            out,
            "--mask-source",
            "none",
            "--npy",
            "--device",
            "cpu",
        ],
        "export": ["export", "--checkpoint", checkpoint, "--out", out / "model.onnx"],
    }[name]
    return [sys.executable, "-m", "mtdepth.cli", *map(str, args)]


@needs_unshare
@pytest.mark.parametrize("fault", ["read-only", "full"])
@pytest.mark.parametrize("name", ["train", "evaluate", "report", "predict", "export"])
def test_a_read_only_or_full_disk_is_one_line_and_loses_nothing(inputs, tmp_path, name, fault):
    disk, prior = tmp_path / "disk", inputs / "prior" / name
    free = LEFT_FOR_TRAIN if name == "train" and fault == "full" else 0
    result = run_on_faulty_disk(command(inputs, name, disk / "out"), disk, prior, tmp_path / "after", fault, free)
    errors = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(errors) == 1 and errors[0].startswith("mtdepth: error: ") and str(disk) in errors[0], result.stderr
    assert ".tmp-" not in errors[0] and ".partial-" not in errors[0]  # the user's path, not a temporary's
    assert ("read-only" if fault == "read-only" else "disk is full") in errors[0]
    before, after = snapshot(prior), snapshot(tmp_path / "after")
    if name == "train":  # the checkpoints stay; the logs may hold the epoch that was never saved (a resume drops it)
        for checkpoint in ("out/last.pt", "out/best.pt"):
            assert after[checkpoint] == before[checkpoint]
        assert not [path for path in after if ".tmp-" in path]
    else:
        assert after == before


@pytest.mark.parametrize("name", ["train", "evaluate", "report", "predict", "export"])
def test_an_output_under_a_file_is_one_line(inputs, tmp_path, name):
    (tmp_path / "file").write_text("not a folder")
    result = CliRunner().invoke(cli, [str(a) for a in command(inputs, name, tmp_path / "file" / "out")[3:]])
    errors = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and len(errors) == 1 and str(tmp_path / "file") in errors[0], result.output
    assert (tmp_path / "file").read_text() == "not a folder"
