"""A training run's dvclive logs, kept the image of its checkpoint's history.

dvclive appends one row per metric and step to plots/metrics/**.tsv and rewrites metrics.json
at every step, neither atomically: a run killed between an epoch's log row and its checkpoint
leaves a row the checkpoint does not have, and one killed inside the rewrite an empty
metrics.json. So a resumed run rewrites the logs from its checkpoint's history before it
continues (no point duplicated or missing, nothing read back from a file a kill may have torn),
and a finished run found again repairs logs that do not match its history.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from mtdepth.halt import halt

CURVE = Path("plots/metrics/val/final_rmse_mm.tsv")  # one row per logged epoch


def open_log(folder: Path, logged_params: dict, history: list[dict]):
    """A dvclive Live writing into `folder` (emptied first), holding exactly `history`'s epochs."""
    from dvclive import Live

    shutil.rmtree(folder, ignore_errors=True)
    live = Live(dir=str(folder), resume=False, save_dvc_exp=False, dvcyaml=None)
    live.log_params(logged_params)
    for metrics in history:
        log_epoch(live, metrics)
    return live


def log_epoch(live, metrics: dict) -> None:
    """One epoch's metrics (`metrics["epoch"]` counts from 1) as dvclive step epoch - 1."""
    live.step = metrics["epoch"] - 1
    for key, value in metrics.items():
        if key != "epoch":
            live.log_metric(key, value)
            halt("run_log.metric")
    live.next_step()


def matches(folder: Path, history: list[dict]) -> bool:
    """Whether the logs in `folder` are readable and hold one curve point per epoch of `history`."""
    try:
        json.loads((folder / "metrics.json").read_text())
        with open(folder / CURVE, newline="") as fh:
            steps = [int(row["step"]) for row in csv.DictReader(fh, delimiter="\t")]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return steps == [m["epoch"] - 1 for m in history]


def repair_log(folder: Path, logged_params: dict, history: list[dict]) -> bool:
    """Rewrite the logs of a finished run from its history unless they already match it; True if rewritten."""
    if matches(folder, history):
        return False
    open_log(folder, logged_params, history).end()
    return True
