"""Checkpoints that describe themselves, written atomically, read without unpickling code.

A checkpoint is a plain dict saved with torch.save and loaded with
`torch.load(weights_only=True)` (tensors, numbers, strings, lists, dicts only):

    format, version         "mtdepth-checkpoint", 1
    model_config            build_model(model_config) remakes the network
    model                   its state_dict (never a compiled or DDP-wrapped module's)
    info                    CheckpointInfo minus model_config: what the model was trained on
    epoch                   epochs completed
    best_val_rmse_mm        best validation RMSE of D_final so far (None before validation)
    optimizer, scaler, rng, history, best_epoch   training state, for --resume (train only)

    save_checkpoint(path, state)                    temp file + fsync + rename: never half-written
    state = read_checkpoint(path)                   MtDepthError (one line) if missing, corrupt or not ours
    state = read_resumable(last, best, echo)        last.pt, or best.pt when last.pt is unreadable
    model, info = model_from_checkpoint(path)       the network in eval mode, and what it needs
"""

from __future__ import annotations

import dataclasses
import errno
import io
import os
import pickle
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from mtdepth.errors import MtDepthError
from mtdepth.pipeline.files import atomic_write
from mtdepth.pipeline.models import DepthCompletionNet, build_model

FORMAT = "mtdepth-checkpoint"
VERSION = 1
FULL_DISK_BYTES = 1 << 20  # a failed torch.save with less free space than this is reported as a full disk


@dataclass(frozen=True)
class CheckpointInfo:
    """What a trained model needs from its inputs, and where it came from."""

    model_config: dict  # build_model(model_config)
    mask_source: str  # "yolo", "gt" or "none": which store mask it was trained with
    height: int  # training resolution
    width: int
    max_depth: float  # metres; GT beyond it was invalid in training
    store_url: str
    store_provenance: dict  # array name -> provenance it was committed with (rgb, depth, sparse, mask/<source>)
    segmenter: dict | None  # SegmenterConfig fields (weights, imgsz, conf, iou, classes) when mask_source is "yolo"
    epoch: int = 0
    best_val_rmse_mm: float | None = None

    @property
    def model_name(self) -> str:
        return self.model_config["name"]


def checkpoint_state(model: DepthCompletionNet, info: CheckpointInfo, **training: object) -> dict:
    """The dict to save: model, its config, `info`, plus any training state given as keywords."""
    fields = dataclasses.asdict(info)
    return {
        "format": FORMAT,
        "version": VERSION,
        "model_config": model.config,
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "info": {k: v for k, v in fields.items() if k not in ("model_config", "epoch", "best_val_rmse_mm")},
        "epoch": info.epoch,
        "best_val_rmse_mm": info.best_val_rmse_mm,
        **training,
    }


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write `state` to `path` atomically: a temporary file beside it, fsync, then rename over.
    A failed write (torch.save's C++ writer raises RuntimeError on a full disk) is one line naming `path`."""

    def write(temporary: Path) -> None:
        try:
            torch.save(state, temporary)
        except RuntimeError as exc:
            full = shutil.disk_usage(temporary.parent).free < FULL_DISK_BYTES
            reason = (str(exc).strip().splitlines() or ["write failed"])[0][:120]
            raise OSError(errno.ENOSPC if full else errno.EIO, f"torch.save failed ({reason})") from None

    atomic_write(path, write, durable=True)


_UNREADABLE = (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile, KeyError)


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """The checkpoint dict at `path`; MtDepthError naming the file if it is missing, damaged or not ours."""
    path = Path(path)
    if not path.is_file():
        raise MtDepthError(f"{path}: checkpoint not found")
    try:
        data = path.read_bytes()
        state = torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except _UNREADABLE as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise MtDepthError(f"{path}: not a readable checkpoint (truncated or corrupt: {reason})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise MtDepthError(f"{path}: not an mtdepth checkpoint")
    if state.get("version") != VERSION:
        raise MtDepthError(f"{path}: checkpoint format version {state.get('version')!r}, this mtdepth reads {VERSION}")
    return state


def read_resumable(last: Path, fallback: Path, echo: Callable[[str], None]) -> dict:
    """The checkpoint at `last` or, when that one is unreadable (truncated, corrupt), the training
    checkpoint at `fallback` (best.pt: the whole training state of its epoch, from which training is
    deterministic), copied over `last` and announced through `echo`; `last`'s error if neither reads."""
    try:
        return read_checkpoint(last)
    except MtDepthError as exc:
        try:
            state = read_checkpoint(fallback)
        except MtDepthError:
            raise exc from None
        if "optimizer" not in state:
            raise exc from None
        echo(f"train: {exc}; resuming from {fallback} (epoch {state['epoch']}), copied over it")
        atomic_write(last, lambda temporary: shutil.copyfile(fallback, temporary), durable=True)
        return state


def checkpoint_info(state: dict) -> CheckpointInfo:
    """The CheckpointInfo of a checkpoint dict."""
    return CheckpointInfo(
        model_config=dict(state["model_config"]),
        epoch=int(state["epoch"]),
        best_val_rmse_mm=state["best_val_rmse_mm"],
        **state["info"],
    )


def model_from_state(state: dict, path: str | os.PathLike = "checkpoint") -> DepthCompletionNet:
    """The network of a checkpoint dict with its weights loaded (train mode)."""
    model = build_model(state["model_config"])
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise MtDepthError(f"{path}: weights do not fit the model config ({str(exc).splitlines()[0][:120]})") from None
    return model


def model_from_checkpoint(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[DepthCompletionNet, CheckpointInfo]:
    """The trained network (eval mode, on `device`) and its CheckpointInfo."""
    state = read_checkpoint(path)
    model = model_from_state(state, path).to(device).eval()
    return model, checkpoint_info(state)
