"""A tiny synthetic dataset and its stage-one store, built through the real CLI (shared by test files)."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from mtdepth.cli import cli


def build_tiny_store(root: Path, **sections: dict) -> tuple[Path, Path]:
    """(params file, store) for 2 scenes x 2 conditions x 3 frames at 64x128 in 4-frame shards, gt masks only.

    Each keyword replaces or extends one params section (e.g. `segmenter={"device": "cpu"}`).
    """
    params = {
        "synth": {"out": str(root / "data"), "scenes": ["Scene01", "Scene02"], "conditions": ["clone", "fog"],
                  "frames": 3, "image_width": 310, "image_height": 94},
        "data": {"root": str(root / "data"), "height": 64, "width": 128},
        "store": {"path": str(root / "store.zarr"), "shard_frames": 4, "mask_sources": ["gt"]},
    }
    for name, values in sections.items():
        params[name] = {**params.get(name, {}), **values}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    for command in ("synth", "segment"):
        result = CliRunner().invoke(cli, [command, "--params", str(root / "params.yaml")])
        assert result.exit_code == 0, result.output
    return root / "params.yaml", root / "store.zarr"
