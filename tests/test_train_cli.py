"""`mtdepth train` end to end on a tiny store whose dataset is gone: every model and mask source,
resume (in process and after SIGKILL), DDP with gloo, and every bad input as one line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

from mtdepth.cli import cli
from mtdepth.pipeline import losses as losses_module
from mtdepth.pipeline.checkpoint import model_from_checkpoint, read_checkpoint, save_checkpoint

pytestmark = pytest.mark.slow  # minutes: end to end through YOLO, training or dvc repro

H, W = 32, 64
TRAIN_PARAMS = {
    "model": {
        "unet_channels": [4, 8, 16],
        "attention_dim": 8,
        "attention_size": [4, 8],
        "fusion_channels": 16,
        "head_channels": 8,
        "se_reduction": 4,
    },
    "train": {
        "epochs": 1,
        "workers": 0,
        "precision": "fp32",
        "warmup_steps": 2,
        "log_every": 1,
        "device": "cpu",
        "lr": 3e-3,
    },
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, synth_tree, tiny_yolo) -> Path:
    """A 16-frame store (12 train, 4 val) at 32x64 with yolo and gt masks; the dataset folder is then deleted."""
    root = tmp_path_factory.mktemp("train")
    shutil.copytree(synth_tree(frames=4), root / "data")
    shutil.copyfile(tiny_yolo, root / "seg.pt")
    params = {
        "synth": {
            "out": str(root / "data"),
            "scenes": ["Scene01", "Scene02"],
            "conditions": ["clone", "fog"],
            "frames": 4,
            "image_width": 310,
            "image_height": 94,
        },
        "data": {"root": str(root / "data"), "height": H, "width": W},
        "segmenter": {"weights": str(root / "seg.pt"), "imgsz": 64, "batch": 8, "device": "cpu"},
        "store": {"path": str(root / "store.zarr"), "shard_frames": 4, "val_fraction": 0.25},
        **TRAIN_PARAMS,
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    result = CliRunner().invoke(cli, ["segment", "--params", str(root / "params.yaml")])
    assert result.exit_code == 0, result.output
    shutil.rmtree(root / "data")  # stage two reads the store alone
    return root


def write_params(workspace: Path, name: str, **sections) -> Path:
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    for section, values in sections.items():
        params[section] = {**params.get(section, {}), **values} if isinstance(values, dict) else values
    path = workspace / f"{name}.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def train(params: Path, *args: str):
    return CliRunner().invoke(cli, ["train", "--params", str(params), *args])


def weights(path: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(path)["model"]


def assert_same_weights(a: Path, b: Path, atol: float = 0.0) -> None:
    first, second = weights(a), weights(b)
    assert first.keys() == second.keys()
    for key in first:
        assert torch.allclose(first[key].float(), second[key].float(), rtol=1e-5 if atol else 0, atol=atol), key


@pytest.mark.parametrize(
    "model,mask_source,precision",
    [("unet", "none", "fp32"), ("mtdepth", "yolo", "bf16"), ("mtdepth", "gt", "fp32"), ("mtdepth", "none", "fp32")],
)
def test_train_each_model_and_mask_source(workspace, tmp_path, model, mask_source, precision):
    out = tmp_path / "run"
    result = train(
        workspace / "params.yaml",
        "--model",
        model,
        "--mask-source",
        mask_source,
        "--precision",
        precision,
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert f"on cpu, {precision}{' channels_last' if precision == 'bf16' else ''}," in result.output
    assert "epoch 1/1: loss" in result.output and "val RMSE" in result.output
    net, info = model_from_checkpoint(out / "best.pt")
    assert info.model_name == model and info.epoch == 1 and (info.height, info.width) == (H, W)
    assert info.mask_source == (mask_source if model == "mtdepth" else "none")
    assert (info.segmenter is not None) == (model == "mtdepth" and mask_source == "yolo")
    assert "sparse" in info.store_provenance and info.best_val_rmse_mm > 0
    metrics = json.loads((out / "live" / "metrics.json").read_text())
    assert metrics["val"]["final_rmse_mm"] == pytest.approx(info.best_val_rmse_mm)
    assert 0 <= metrics["data_wait_fraction"] < 1
    assert (out / "live" / "plots" / "metrics" / "train" / "loss.tsv").is_file()


def test_resume_continues_exactly_where_the_run_stopped(workspace, tmp_path):
    params = write_params(workspace, "two", train={"epochs": 2})
    assert train(params, "--out", str(tmp_path / "straight")).exit_code == 0
    assert train(params, "--out", str(tmp_path / "resumed"), "--epochs", "1").exit_code == 0
    result = train(params, "--out", str(tmp_path / "resumed"), "--resume")
    assert result.exit_code == 0, result.output
    assert "epoch 2/2" in result.output and "epoch 1/2" not in result.output
    assert_same_weights(tmp_path / "straight" / "last.pt", tmp_path / "resumed" / "last.pt")
    straight, resumed = (read_checkpoint(tmp_path / d / "last.pt")["history"] for d in ("straight", "resumed"))
    assert [h["val/final_rmse_mm"] for h in straight] == [h["val/final_rmse_mm"] for h in resumed]
    lines = (tmp_path / "resumed" / "live" / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()
    assert [line.split("\t")[0] for line in lines[1:]] == ["0", "1"]  # one point per epoch, no restart


PROBE = """
import sys
from mtdepth.cli import cli
try:
    cli.main(sys.argv[1:], prog_name="mtdepth", standalone_mode=False)
finally:
    print("IMPORTED:", [m for m in ("ultralytics",) if m in sys.modules], flush=True)  # OpenCV: the prefill's
"""


def run_train_process(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", PROBE, "train", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(workspace, tmp_path):
    params = write_params(workspace, "three", train={"epochs": 3})
    reference = run_train_process(["--params", str(params), "--out", str(tmp_path / "reference")])
    output = reference.communicate(timeout=300)[0]
    assert reference.returncode == 0, output
    assert "IMPORTED: []" in output  # not the segmenter library: the store alone

    killed = run_train_process(["--params", str(params), "--out", str(tmp_path / "killed")])
    last = tmp_path / "killed" / "last.pt"
    deadline = time.time() + 300
    while not last.exists() and time.time() < deadline and killed.poll() is None:
        time.sleep(0.02)
    os.kill(killed.pid, signal.SIGKILL)  # during epoch 2 (or later, if the machine is fast)
    killed.wait()
    done = read_checkpoint(last)["epoch"]
    assert killed.returncode == -signal.SIGKILL and 1 <= done <= 3
    if done < 3:
        result = train(params, "--out", str(tmp_path / "killed"), "--resume")
        assert result.exit_code == 0, result.output
    assert_same_weights(tmp_path / "reference" / "last.pt", last, atol=1e-6)


def test_resume_if_compatible_continues_keeps_or_restarts(workspace, tmp_path):
    """dvc.yaml's mode: an interrupted run continues, a finished one is kept, another plan starts afresh."""
    params, run = write_params(workspace, "two", train={"epochs": 2}), tmp_path / "run"
    stopped = train(params, "--out", str(run), "--epochs", "1", "--resume-if-compatible")  # a fresh folder: starts
    assert stopped.exit_code == 0, stopped.output
    state = read_checkpoint(run / "last.pt")
    state["params"]["train"]["epochs"] = 2  # as a 2-epoch run killed after its first epoch leaves it
    save_checkpoint(run / "last.pt", state)

    resumed = train(params, "--out", str(run), "--resume-if-compatible")
    assert resumed.exit_code == 0 and "epoch 1/2" not in resumed.output and "epoch 2/2:" in resumed.output
    assert f"resuming {run / 'last.pt'} after its epoch 1" in resumed.output
    history = read_checkpoint(run / "last.pt")["history"]
    assert len(history) == 2 and history[0] == state["history"][0]
    finished = train(params, "--out", str(run), "--resume-if-compatible")
    assert finished.exit_code == 0 and "has finished its 2 epochs; nothing to train" in finished.output
    assert read_checkpoint(run / "last.pt")["history"] == history

    changed = train(params, "--out", str(run), "--lr", "1e-3", "--resume-if-compatible")
    assert changed.exit_code == 0, changed.output
    assert "starting afresh" in changed.output and "train.lr=0.003, now 0.001" in changed.output
    assert "epoch 1/2:" in changed.output and read_checkpoint(run / "last.pt")["params"]["train"]["lr"] == 1e-3
    both = one_line_error(train(params, "--out", str(run), "--resume", "--resume-if-compatible"))
    assert "--resume and --resume-if-compatible exclude each other" in both


def test_ddp_with_gloo_on_two_processes_matches_one_process_accumulating_two(workspace, tmp_path):
    params = write_params(workspace, "ddp", train={"epochs": 2, "batch": 2})
    single = train(
        params,
        "--out",
        str(tmp_path / "single"),
        "--params",
        str(write_params(workspace, "accumulate", train={"epochs": 2, "batch": 2, "accumulate": 2})),
    )
    assert single.exit_code == 0, single.output
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "mtdepth.cli",
            "train",
            "--params",
            str(params),
            "--out",
            str(tmp_path / "ddp"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert ddp.returncode == 0, ddp.stdout + ddp.stderr
    assert "2 process(es)" in ddp.stdout and ddp.stdout.count("epoch 2/2:") == 1  # rank 0 alone reports
    one, two = (read_checkpoint(tmp_path / d / "last.pt") for d in ("single", "ddp"))
    for a, b in zip(one["history"], two["history"]):
        assert a["train/loss"] == pytest.approx(b["train/loss"], rel=1e-4)
    parameters = {name for name, _ in model_from_checkpoint(tmp_path / "single" / "last.pt")[0].named_parameters()}
    for name in parameters:  # BN running statistics differ by design (DDP keeps rank 0's)
        assert torch.allclose(one["model"][name], two["model"][name], rtol=1e-4, atol=1e-5), name


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mtdepth: error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "changes,args,message",
    [
        ({"sparse": {"keep_prob": 0.1}}, [], r"array 'sparse' was made with keep_prob=0.05, params say 0.1"),
        ({}, ["--batch", "0"], r"train.batch must be >= 1, got 0"),
        ({}, ["--lr", "0"], r"train.lr must be > 0"),
        ({}, ["--flip", "1.5"], r"train.flip must be in \[0, 1\], got 1.5"),
        (
            {"model": {"attention_size": [64, 128]}},
            [],
            r"model.attention_size \[64, 128\] is larger than the store's 32x64",
        ),
        ({"train": {"device": "cuda:0"}}, [], r"train.device: 'cuda:0' asked for, but this machine has no CUDA"),
    ],
)
def test_bad_params_are_refused_in_one_line(workspace, tmp_path, changes, args, message):
    params = write_params(workspace, "bad", **changes)
    if "cuda" in str(changes) and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    line = one_line_error(train(params, "--out", str(tmp_path / "run"), *args))
    assert __import__("re").search(message, line), line
    assert not (tmp_path / "run").exists()


def test_a_store_without_the_mask_source_is_refused(workspace, tmp_path):
    store = tmp_path / "gt-only.zarr"
    shutil.copytree(workspace / "store.zarr", store)
    shutil.rmtree(store / "mask" / "yolo")
    line = one_line_error(train(workspace / "params.yaml", "--store", str(store), "--out", str(tmp_path / "run")))
    assert "has no mask source 'yolo' (it has: gt; or use 'none')" in line


def test_out_and_resume_mistakes_overwrite_nothing(workspace, tmp_path):
    params = workspace / "params.yaml"
    (tmp_path / "file").write_text("x")
    assert "--out is a file" in one_line_error(train(params, "--out", str(tmp_path / "file")))
    assert "nothing to resume" in one_line_error(train(params, "--out", str(tmp_path / "empty"), "--resume"))
    run = tmp_path / "run"
    assert train(params, "--model", "unet", "--out", str(run)).exit_code == 0
    before = (run / "last.pt").read_bytes()
    assert "holds a run already" in one_line_error(train(params, "--model", "unet", "--out", str(run)))
    line = one_line_error(train(params, "--model", "mtdepth", "--epochs", "2", "--out", str(run), "--resume"))
    assert "cannot resume, its params differ: train.model=unet, now mtdepth" in line
    assert "already trained for 1 epochs" in one_line_error(
        train(params, "--model", "unet", "--out", str(run), "--resume")
    )
    state = read_checkpoint(run / "last.pt")
    state["info"]["height"] = 16
    (tmp_path / "sized").mkdir()
    save_checkpoint(tmp_path / "sized" / "last.pt", state)
    line = one_line_error(
        train(params, "--model", "unet", "--epochs", "2", "--out", str(tmp_path / "sized"), "--resume")
    )
    assert "trained at 16x64, the store is 32x64" in line
    state = read_checkpoint(run / "last.pt")
    state["info"]["store_provenance"]["rgb"]["source"] = "another-dataset"
    (tmp_path / "other-store").mkdir()
    save_checkpoint(tmp_path / "other-store" / "last.pt", state)
    line = one_line_error(
        train(params, "--model", "unet", "--epochs", "2", "--out", str(tmp_path / "other-store"), "--resume")
    )
    assert "the store differs from the one it trained on: rgb.source=another-dataset, now " in line
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "last.pt").write_bytes(before[: len(before) // 2])
    line = one_line_error(train(params, "--model", "unet", "--epochs", "2", "--out", str(tmp_path / "cut"), "--resume"))
    assert "not a readable checkpoint" in line
    assert (run / "last.pt").read_bytes() == before


def test_a_non_finite_loss_stops_with_the_last_good_checkpoint_kept(workspace, tmp_path, monkeypatch):
    run = tmp_path / "run"
    params = write_params(workspace, "nan", train={"epochs": 3})
    calls = {"n": 0}
    original = losses_module.MultiTaskLoss.__call__

    def poisoned(self, outputs, depth, gt_mask):
        calls["n"] += 1
        terms = original(self, outputs, depth, gt_mask)
        if calls["n"] > 4:  # epoch 1 has 3 steps of 4 frames: poison epoch 2
            terms["loss"] = terms["loss"] * float("nan")
        return terms

    monkeypatch.setattr(losses_module.MultiTaskLoss, "__call__", poisoned)
    line = one_line_error(train(params, "--out", str(run)))
    assert "training loss became nan" in line and "(epoch 2)" in line and "last.pt" in line
    state = read_checkpoint(run / "last.pt")
    assert state["epoch"] == 1 and all(
        torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point()
    )
