"""A real `mtdepth segment` SIGKILLed before chosen store operations, then run again.

The kill points are store operations (every key write or delete of zarr's LocalStore is
counted in the child; the child SIGKILLs itself just before operation k), so they are
exact and include "after the last shard", "between two commits" and "after a commit,
before the old version is deleted". After each kill, the same command must end in a store
byte-identical to an uninterrupted run's, and a committed array must stay readable.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from mtdepth.cache.store import open_store
from mtdepth.cli import cli

pytestmark = pytest.mark.slow  # minutes: end to end through YOLO, training or dvc repro

HEIGHT, WIDTH = 64, 128
STRIDE = 12  # every STRIDE-th store operation is a kill point, plus every commit and the one after it

KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from zarr.storage import LocalStore

    kill_at, calls = int(sys.argv[1]), [0]

    def counted(name, method):
        async def wrapper(self, key, *args, **kwargs):
            calls[0] += 1
            if calls[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            print(f"op {calls[0]} {name} {key}", file=sys.stderr)
            return await method(self, key, *args, **kwargs)
        return wrapper

    for name in ("set", "delete", "delete_dir"):
        setattr(LocalStore, name, counted(name, getattr(LocalStore, name)))
    sys.argv = ["mtdepth", *sys.argv[2:]]
    from mtdepth.cli import main
    main()
    """
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, synth_tree) -> Path:
    root = tmp_path_factory.mktemp("kills")
    shutil.copytree(synth_tree(), root / "data")
    params = {
        "synth": {
            "out": str(root / "data"),
            "scenes": ["Scene01", "Scene02"],
            "conditions": ["clone", "fog"],
            "frames": 3,
            "image_width": 310,
            "image_height": 94,
        },
        "data": {"root": str(root / "data"), "height": HEIGHT, "width": WIDTH},
        "store": {"mask_sources": ["gt"]},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    (root / "killer.py").write_text(KILLER)
    return root


def segment_args(root: Path, store: Path, shard_frames: int, *extra: str) -> list[str]:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["store"]["shard_frames"] = shard_frames
    path = root / f"params-{shard_frames}.yaml"
    path.write_text(yaml.safe_dump(params))
    return ["segment", "--params", str(path), "--store", str(store), *extra]


def run_killed(root: Path, kill_at: int, args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(root / "killer.py"), str(kill_at), *args], capture_output=True, text=True, timeout=120
    )


def store_files(store: Path) -> dict[str, bytes]:
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file()}


def kill_points(trace: str) -> list[int]:
    """Every STRIDE-th operation, every commit (a data array group's zarr.json written) and the one after."""
    ops = [(line.split() + [""])[:4] for line in trace.splitlines() if line.startswith("op ")]
    points = {int(op[1]) for op in ops if int(op[1]) % STRIDE == 1}
    for _, number, kind, key in ops:
        if (
            kind == "set"
            and key.count("/") in (1, 2)
            and key.endswith("/zarr.json")
            and not key.startswith(("frames/", "_progress/"))
            and "/v-" not in key
        ):
            points |= {int(number), int(number) + 1}
    return sorted(p for p in points if p <= len(ops))


def reference(
    root: Path, tmp_path: Path, shard_frames: int, name: str, *extra: str, start: Path | None = None
) -> tuple[Path, str]:
    """An uninterrupted run (from a copy of `start` if given) and its trace of store operations."""
    store = tmp_path / name
    if start is not None:
        shutil.copytree(start, store)
    done = run_killed(root, 0, segment_args(root, store, shard_frames, *extra))
    assert done.returncode == 0, done.stderr
    return store, done.stderr


@pytest.mark.parametrize("shard_frames", [64, 4], ids=["one-shard", "three-shards"])
def test_a_kill_at_any_store_operation_then_the_same_command_equals_an_uninterrupted_run(
    dataset, tmp_path, shard_frames
):
    clean, trace = reference(dataset, tmp_path, shard_frames, "clean.zarr")
    expected = store_files(clean)
    points = kill_points(trace)
    assert len(points) >= 8
    for kill_at in points:
        store = tmp_path / f"killed-{kill_at}.zarr"
        args = segment_args(dataset, store, shard_frames)
        assert run_killed(dataset, kill_at, args).returncode == -signal.SIGKILL
        rerun = CliRunner().invoke(cli, args)
        assert rerun.exit_code == 0, (kill_at, rerun.output)
        assert store_files(store) == expected, f"killed before store operation {kill_at}"
        shutil.rmtree(store)


def test_a_killed_rewrite_keeps_the_committed_array_readable_then_finishes_it(dataset, tmp_path):
    """keep_prob 0.05 -> 0.1 killed anywhere: sparse reads as the old or the new version, never as neither."""
    before, _ = reference(dataset, tmp_path, 4, "before.zarr")
    after, trace = reference(dataset, tmp_path, 4, "after.zarr", "--keep-prob", "0.1", start=before)
    old, new = open_store(before).array("sparse")[:], open_store(after).array("sparse")[:]
    expected = store_files(after)
    for kill_at in kill_points(trace):
        store = tmp_path / f"killed-{kill_at}.zarr"
        shutil.copytree(before, store)
        args = segment_args(dataset, store, 4, "--keep-prob", "0.1")
        assert run_killed(dataset, kill_at, args).returncode == -signal.SIGKILL
        reader = open_store(store)
        keep_prob = reader.provenance("sparse")["keep_prob"]
        assert np.array_equal(reader.array("sparse")[:], {0.05: old, 0.1: new}[keep_prob]), kill_at
        assert reader.verify() == [], kill_at
        assert CliRunner().invoke(cli, args).exit_code == 0
        assert store_files(store) == expected, f"killed before store operation {kill_at}"
        shutil.rmtree(store)
