"""The JSON report of a shipped depth model: what made it, how it was trained, and its validation
metrics per sparse pattern and region beside a reference model and IP-Basic (depthmodel/dvc.yaml's `card`).

Reads the evaluations `mtdepth evaluate` wrote, named `<source>-on-<pattern>` in one folder
(`<source>`: a training run's name, or `ipbasic`), and the training run's dvclive metrics.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from mtdepth.errors import MtDepthError
from mtdepth.pipeline.checkpoint import CheckpointInfo
from mtdepth.pipeline.files import finite
from mtdepth.pipeline.segmenter import sha256_file

PATTERNS = ("uniform", "keypoints", "lidar", "mixed")
METRICS = ("rmse_mm", "mae_mm", "irmse_per_km")
BASELINE = "ipbasic"
UNIFORM_MARGIN = 0.05  # the target: the mixed-trained model within 5% of the uniform-trained one on uniform


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise MtDepthError(f"{path}: not found (run `mtdepth evaluate` first)") from None
    except (OSError, ValueError) as exc:
        raise MtDepthError(f"{path}: not a readable JSON file ({exc})") from None


def regions(metrics: dict) -> dict:
    """{group: {rmse_mm, mae_mm, irmse_per_km}} of D_final, pooled, for every group an evaluation scored."""
    table = metrics["pooled"]["final"]
    return {group: {k: table[group].get(k) for k in METRICS} for group in table}


def evaluations(folder: Path, source: str) -> dict:
    """{pattern: per-region metrics} of `source` from `folder/<source>-on-<pattern>/metrics.json`."""
    found = {}
    for pattern in PATTERNS:
        path = folder / f"{source}-on-{pattern}" / "metrics.json"
        if path.is_file():
            found[pattern] = regions(_read_json(path))
    if not found:
        raise MtDepthError(f"{folder}: no evaluation named {source}-on-<pattern> ({', '.join(PATTERNS)})")
    return found


def training(run: Path) -> dict:
    """Epochs, best epoch and validation RMSE, and the training's wall time from a run folder's dvclive logs."""
    seconds_file = run / "live" / "plots" / "metrics" / "epoch_seconds.tsv"
    try:
        with open(seconds_file, newline="") as fh:
            seconds = [float(row["epoch_seconds"]) for row in csv.DictReader(fh, delimiter="\t")]
    except (OSError, KeyError, ValueError) as exc:
        raise MtDepthError(f"{seconds_file}: not a dvclive log of `mtdepth train` ({exc})") from None
    return {"epochs": len(seconds), "train_seconds": round(sum(seconds), 1)}


def targets(shipped: dict, reference: dict, name: str, reference_name: str) -> dict:
    """The two targets of the shipped model against the uniform-trained reference (RMSE, all pixels)."""
    tests = {
        "uniform": ("uniform_within_5_percent", lambda ours, theirs: ours <= (1 + UNIFORM_MARGIN) * theirs),
        "lidar": ("lidar_beats_reference", lambda ours, theirs: ours < theirs),
    }
    result = {}
    for pattern, (target, met) in tests.items():
        if pattern in shipped and pattern in reference:
            ours, theirs = shipped[pattern]["all"]["rmse_mm"], reference[pattern]["all"]["rmse_mm"]
            result[target] = {
                f"{name}_rmse_mm": ours,
                f"{reference_name}_rmse_mm": theirs,
                "ratio": round(ours / theirs, 4),
                "met": met(ours, theirs),
            }
    return result


def file_entry(path: Path, name: str) -> dict:
    """The name a file ships under, its size and sha256."""
    if not path.is_file():
        raise MtDepthError(f"{path}: not found")
    return {"file": name, "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def model_card(
    command: str,
    params: dict,
    info: CheckpointInfo,
    files: dict[str, tuple[Path, str]],
    run: Path,
    evals: Path,
    reference: str,
) -> dict:
    """The report: `command` (what remakes the model), the params that made it, the network, its training,
    its files (kind -> (path, the name it ships under)),
    and per pattern the validation metrics of the model, of `reference` (a run trained the same way on
    another pattern) and of IP-Basic, with the targets' verdicts."""
    name = run.name
    shipped, other, fill = evaluations(evals, name), evaluations(evals, reference), evaluations(evals, BASELINE)
    return {
        "command": command,
        "params": finite(params),
        "network": info.model_config,
        "trained_on": {
            "pattern": info.store_provenance.get("sparse", {}).get("pattern"),
            "resolution": [info.height, info.width],
            "max_depth_m": info.max_depth,
            "best_epoch": info.epoch,
            "best_val_rmse_mm": info.best_val_rmse_mm,
            **training(run),
        },
        "files": {kind: file_entry(*where) for kind, where in files.items()},
        "onnx_check": onnx_check(files["onnx"][0]) if "onnx" in files else None,
        "validation": {
            pattern: {f"{name}_trained": shipped[pattern], **_beside(other, fill, pattern, reference)}
            for pattern in shipped
        },
        "targets": targets(shipped, other, f"{name}_trained", f"{reference}_trained"),
    }


def _beside(other: dict, fill: dict, pattern: str, reference: str) -> dict:
    entries = {}
    if pattern in other:
        entries[f"{reference}_trained"] = other[pattern]
    if pattern in fill:
        entries[BASELINE] = fill[pattern]
    return entries


def onnx_check(path: Path) -> dict | None:
    """The torch-vs-onnxruntime check `mtdepth export` stored in an export's metadata (None if absent)."""
    import onnx

    from mtdepth.pipeline.onnx_export import METADATA_KEY, read_onnx

    read_onnx(path)  # an mtdepth export, or one line naming the file
    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return json.loads(props[METADATA_KEY]).get("check")
