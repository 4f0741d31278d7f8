"""Devices, one home: "auto" resolves to the GPU when present; a device this machine lacks is refused."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from mtdepth.errors import MtDepthError

if TYPE_CHECKING:
    import torch


def resolve_device(device: str, index: int = 0) -> str:
    """'auto' -> f'cuda:{index}' when a GPU is present, else 'cpu'; anything else passes through."""
    if device != "auto":
        return device
    import torch

    return f"cuda:{index}" if torch.cuda.is_available() else "cpu"


def torch_device(device: str, key: str, index: int = 0) -> torch.device:
    """The torch device `device` names ('auto' as `resolve_device`); MtDepthError naming param `key`
    for a device that is no torch device or a CUDA device on a machine without one."""
    import torch

    device = resolve_device(device, index)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MtDepthError(f"{key}: {device!r} asked for, but this machine has no CUDA device")
    try:
        return torch.device(device)
    except RuntimeError:
        raise MtDepthError(f"{key}: {device!r} is not a torch device (auto, cpu, cuda:0, ...)") from None


def check_segmenter_device(device: str) -> None:
    """Refuse a `segmenter.device` torch cannot use on this machine (ultralytics' "0,1" spelling included)."""
    if device == "auto":
        return
    import torch

    if re.fullmatch(r"\d+(,\d+)*", device):  # ultralytics' spelling of CUDA indices
        indices = [int(i) for i in device.split(",")]
        kind = "cuda"
    else:
        try:
            parsed = torch.device(device)
        except (RuntimeError, ValueError):
            raise MtDepthError(f"segmenter.device: {device!r} is not a device (auto, cpu, cuda, cuda:N, mps)") from None
        kind, indices = parsed.type, [parsed.index or 0]
    available = {
        "cpu": 1,
        "cuda": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "mps": int(torch.backends.mps.is_available()),
    }
    if kind not in available:
        raise MtDepthError(f"segmenter.device: {device!r} is not supported (auto, cpu, cuda, cuda:N, mps)")
    if max(indices) >= available[kind]:
        raise MtDepthError(
            f"segmenter.device: {device!r} asked, but this machine has {available[kind]} {kind} "
            "device(s); use cpu or auto"
        )
