"""A real `mtdepth train` SIGKILLed at chosen moments, then resumed; two writers into one run folder.

The kill points are named in the code (mtdepth/halt.py: MTDEPTH_HALT=POINT:N makes the child
SIGKILL itself the N-th time it reaches POINT): before an epoch's log row, inside it, after it and before
the checkpoints, inside a checkpoint write (temporary written, not renamed), between best.pt and
last.pt, and after last.pt. After each kill a resume must end with the uninterrupted run's
weights, optimizer state and logged curves (every point once), and no debris.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mtdepth.pipeline.checkpoint import read_checkpoint
from factories import build_tiny_store

pytestmark = pytest.mark.slow  # minutes: real training subprocesses

EPOCHS = 3
TIMING = ("epoch_seconds", "data_wait_fraction")  # logged metrics that measure the machine, not the model
TRAIN = {
    "model": "unet",
    "epochs": EPOCHS,
    "workers": 0,
    "precision": "fp32",
    "warmup_steps": 2,
    "log_every": 1,
    "device": "cpu",
    "batch": 4,
    "compile": "off",
}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, synth_tree) -> Path:
    """A tiny store, its params and the uninterrupted reference run."""
    root = tmp_path_factory.mktemp("train-kills")
    params, _ = build_tiny_store(root, synth_tree(), model={"unet_channels": [4, 8, 16]}, train=TRAIN)
    result = train(params, root / "reference")
    assert result.returncode == 0, result.stderr
    return root


def train(params: Path, out: Path, *extra: str, halt: str | None = None, wait: bool = True):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("MTDEPTH_HALT", None)
    if halt:
        env["MTDEPTH_HALT"] = halt
    command = [sys.executable, "-m", "mtdepth.cli", "train", "--params", str(params), "--out", str(out), *extra]
    if not wait:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def curves(run: Path) -> dict[str, list[tuple[int, float | None]]]:
    """Every dvclive curve of a run: metric -> [(step, value)] (timing metrics: steps only)."""
    found = {}
    for path in sorted((run / "live" / "plots" / "metrics").rglob("*.tsv")):
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        name = path.relative_to(run / "live").as_posix()
        found[name] = [(int(r["step"]), None if path.stem in TIMING else float(r[path.stem])) for r in rows]
    return found


def assert_same_state(reference: Path, run: Path) -> None:
    a, b = read_checkpoint(reference), read_checkpoint(run)
    assert a["epoch"] == b["epoch"] == EPOCHS
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for (ka, va), (kb, vb) in zip(sorted(a["optimizer"]["state"].items()), sorted(b["optimizer"]["state"].items())):
        assert ka == kb and all(torch.equal(va[k], vb[k]) for k in va), ka
    strip = [{k: v for k, v in h.items() if k not in TIMING} for h in a["history"]]
    assert strip == [{k: v for k, v in h.items() if k not in TIMING} for h in b["history"]]


def assert_no_debris(run: Path) -> None:
    assert not [p.name for p in run.iterdir() if ".tmp-" in p.name]
    assert not run.with_name(run.name + ".lock").exists()


@pytest.mark.parametrize(
    "point,resume",
    [
        ("train.log:2", "--resume"),  # epoch 2 trained, nothing of it written
        ("train.checkpoint:2", "--resume"),  # epoch 2 logged, not checkpointed (the duplicated point)
        ("atomic_write.rename:3", "--resume-if-compatible"),  # inside epoch 2's first checkpoint write: a temporary
        ("train.last:2", "--resume"),  # between best.pt and last.pt
        ("train.epoch:2", "--resume-if-compatible"),  # after last.pt
    ],
)
def test_kill_then_resume_equals_an_uninterrupted_run(workspace, tmp_path, point, resume):
    params, out = workspace / "params.yaml", tmp_path / "run"
    killed = train(params, out, halt=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    if point.startswith("atomic_write"):
        assert [p for p in out.iterdir() if ".tmp-" in p.name]  # the kill left a temporary behind
    result = train(params, out, resume)
    assert result.returncode == 0, result.stderr
    assert_same_state(workspace / "reference" / "last.pt", out / "last.pt")
    assert curves(out) == curves(workspace / "reference")  # every epoch once, the same values
    assert_no_debris(out)


@pytest.mark.parametrize("resume", ["--resume", "--resume-if-compatible"])
def test_kill_inside_a_log_row_then_resume(workspace, tmp_path, resume):
    params, out = workspace / "params.yaml", tmp_path / "run"
    per_epoch = len(read_checkpoint(workspace / "reference" / "last.pt")["history"][0]) - 1  # metrics in a row
    killed = train(params, out, halt=f"run_log.metric:{per_epoch + per_epoch // 2}")  # half of epoch 2's row
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    result = train(params, out, resume)
    assert result.returncode == 0, result.stderr
    assert_same_state(workspace / "reference" / "last.pt", out / "last.pt")
    assert curves(out) == curves(workspace / "reference")


@pytest.mark.parametrize("resume", ["--resume", "--resume-if-compatible"])
def test_an_empty_metrics_json_left_by_a_kill_does_not_stop_the_resume(workspace, tmp_path, resume):
    params, out = workspace / "params.yaml", tmp_path / "run"
    assert train(params, out, halt="train.checkpoint:2").returncode == -signal.SIGKILL
    (out / "live" / "metrics.json").write_text("")  # what a kill inside dvclive's rewrite of it leaves
    result = train(params, out, resume)
    assert result.returncode == 0, result.stderr
    assert curves(out) == curves(workspace / "reference")
    assert json.loads((out / "live" / "metrics.json").read_text())["step"] == EPOCHS - 1


def test_a_truncated_last_pt_resumes_from_best_pt_and_keeps_it(workspace, tmp_path):
    params, out = workspace / "params.yaml", tmp_path / "run"
    assert train(params, out, halt="train.epoch:2").returncode == -signal.SIGKILL
    best_before = (out / "best.pt").read_bytes()
    last = out / "last.pt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    result = train(params, out, "--resume-if-compatible")
    assert result.returncode == 0, result.stderr
    assert "resuming from" in result.stdout and "best.pt" in result.stdout
    assert_same_state(workspace / "reference" / "last.pt", last)
    best = read_checkpoint(out / "best.pt")
    reference_best = read_checkpoint(workspace / "reference" / "best.pt")
    assert best["epoch"] == reference_best["epoch"]
    if reference_best["epoch"] <= 2:  # nothing better came after it: the very file is kept
        assert (out / "best.pt").read_bytes() == best_before
    assert curves(out) == curves(workspace / "reference")


def stopped(process: subprocess.Popen, timeout: float = 120) -> bool:
    """Wait until `process` is stopped (state T) or has exited."""
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        if Path(f"/proc/{process.pid}/stat").read_text().split(") ")[1].startswith("T"):
            return True
        time.sleep(0.05)
    return False


def test_one_writer_per_run_folder_and_a_killed_holder_does_not_block(workspace, tmp_path):
    params, out = workspace / "params.yaml", tmp_path / "run"
    first = train(params, out, halt="train.epoch:1:STOP", wait=False)  # alive, frozen after epoch 1
    try:
        assert stopped(first), first.stderr.read() if first.stderr else ""
        for extra in ((), ("--resume",), ("--resume-if-compatible",)):
            second = train(params, out, *extra)
            assert second.returncode == 2, second.stderr
            lines = second.stderr.strip().splitlines()
            assert len(lines) == 1 and f"run folder {out}: another writer holds it (pid {first.pid} on" in lines[0]
    finally:
        first.kill()
        first.wait()
    assert out.with_name("run.lock").exists()  # what the killed holder left: it must not block
    result = train(params, out, "--resume")
    assert result.returncode == 0, result.stderr
    assert_same_state(workspace / "reference" / "last.pt", out / "last.pt")
    assert_no_debris(out)


def test_two_trains_started_together_one_is_refused(workspace, tmp_path):
    params, out = workspace / "params.yaml", tmp_path / "run"
    both = [train(params, out, "--epochs", "1", wait=False) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in both]
    codes = sorted(code for code, _ in results)
    # the lock makes them one after the other: the later refuses to overwrite (run there) or is refused (held)
    assert codes == [0, 2], results
    refused = next(err for code, err in results if code == 2).strip().splitlines()
    assert len(refused) == 1 and ("another writer holds it" in refused[0] or "holds a run already" in refused[0])
    assert [step for step, _ in curves(out)["plots/metrics/val/final_rmse_mm.tsv"]] == [0]  # one run's one epoch
