"""Builders the tests share: tiny synthetic trees and stores made through the real CLI, tiny
checkpoints, KITTI-layout frames. tests/conftest.py wraps the expensive ones in session fixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import yaml
from click.testing import CliRunner
from PIL import Image

from mtdepth.cli import cli
from mtdepth.pipeline import kitti_io
from mtdepth.pipeline.checkpoint import CheckpointInfo, checkpoint_state, save_checkpoint
from mtdepth.pipeline.models import MTDepth, UNetBaseline

TINY_SYNTH = {
    "scenes": ["Scene01", "Scene02"],
    "conditions": ["clone", "fog"],
    "frames": 3,
    "image_width": 310,
    "image_height": 94,
}  # 2 scenes x 2 conditions x 3 frames
TINY_NET = {"channels": (4, 8), "attention_size": (4, 8), "fusion_channels": 8, "head_channels": 4}
TRAINED_SIZE = (32, 64)
ODD_SIZES = [(375, 1242), (203, 377), (480, 640)]


def run(*args):
    """Invoke the real CLI in-process; returns click's Result (exit_code, stdout, stderr)."""
    return CliRunner().invoke(cli, [str(a) for a in args])


def errors(result):
    """The one-line errors a CLI run printed."""
    return [line for line in result.stderr.splitlines() if line.startswith("mtdepth: error:")]


def write_synth(out: Path, **synth) -> Path:
    """A synthetic tree at `out` (TINY_SYNTH, changed by `synth`), through `mtdepth synth`."""
    params = out.parent / f"{out.name}.params.yaml"
    params.write_text(yaml.safe_dump({"synth": {**TINY_SYNTH, **synth, "out": str(out)}}))
    result = run("synth", "--params", params)
    assert result.exit_code == 0, result.output
    return out


def build_tiny_store(root: Path, data: Path, **sections: dict) -> tuple[Path, Path]:
    """(params file, store): `data` at 64x128 in 4-frame shards, gt masks only, through `mtdepth segment`.

    Each keyword replaces or extends one params section (e.g. `segmenter={"device": "cpu"}`).
    """
    params = {
        "synth": {**TINY_SYNTH, "out": str(data)},
        "data": {"root": str(data), "height": 64, "width": 128},
        "store": {"path": str(root / "store.zarr"), "shard_frames": 4, "mask_sources": ["gt"]},
    }
    for name, values in sections.items():
        params[name] = {**params.get(name, {}), **values}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    result = run("segment", "--params", root / "params.yaml")
    assert result.exit_code == 0, result.output
    return root / "params.yaml", root / "store.zarr"


def checkpoint_info(model_config: dict, mask_source="none", size=TRAINED_SIZE, segmenter=None, provenance=None):
    """The CheckpointInfo of a net of `model_config` trained at `size` (80 m max depth, an in-memory store)."""
    return CheckpointInfo(
        model_config=model_config,
        mask_source=mask_source,
        height=size[0],
        width=size[1],
        max_depth=80.0,
        store_url="memory://test",
        store_provenance=provenance or {},
        segmenter=segmenter,
    )


def make_checkpoint(path, model="mtdepth", mask_source="none", segmenter=None, provenance=None):
    """A checkpoint of an untrained tiny net, trained size 32x64."""
    torch.manual_seed(0)
    net = MTDepth(**TINY_NET) if model == "mtdepth" else UNetBaseline(channels=(4, 8))
    info = checkpoint_info(net.config, mask_source, segmenter=segmenter, provenance=provenance)
    save_checkpoint(path, checkpoint_state(net, info))
    return path


def write_frame(root, name, height, width, sparse_folder="sparse", seed=0, suffix=".png"):
    """image/NAME.png and SPARSE/NAME.png|npy: noise RGB, 5% samples in 1..70 m; returns the sparse metres."""
    rng = np.random.default_rng(seed)
    (root / "image").mkdir(parents=True, exist_ok=True)
    (root / sparse_folder).mkdir(exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(root / "image" / f"{name}.png")
    metres = ((rng.random((height, width)) < 0.05) * rng.uniform(1, 70, (height, width))).astype(np.float32)
    if suffix == ".npy":
        np.save(root / sparse_folder / f"{name}.npy", metres)
    else:
        kitti_io.write_depth_png(root / sparse_folder / f"{name}.png", metres)
    return kitti_io.decode_depth(kitti_io.encode_depth(metres)) if suffix == ".png" else metres


def untrained_yolo(path: Path, definition: str = "yolo11n-seg.yaml") -> Path:
    """An untrained ultralytics model from its definition, saved as .pt (no download)."""
    from mtdepth.pipeline.segmenter import import_ultralytics

    import_ultralytics()
    from ultralytics import YOLO

    YOLO(definition).save(str(path))
    return path
