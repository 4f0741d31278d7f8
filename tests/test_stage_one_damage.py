"""Damaged stores: `cache verify` names the damage, readers refuse it, `segment` repairs it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from mtdepth.cache.dataset import CachedDepthDataset
from mtdepth.cache.layout import shard_key
from mtdepth.cache.store import open_store
from mtdepth.cli import cli
from mtdepth.errors import MtDepthError


@pytest.fixture(scope="module")
def built(tiny_store) -> tuple[Path, Path]:
    """(params file, a sound store of 12 frames in 3 shards) from a tiny synthetic dataset."""
    return tiny_store("tiny", segmenter={"device": "cpu"})


@pytest.fixture
def store(built, tmp_path) -> Path:
    copy = tmp_path / "store.zarr"
    shutil.copytree(built[1], copy)
    return copy


def files(store: Path) -> dict[str, bytes]:
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file()}


def shard_file(store: Path, name: str, shard: int) -> Path:
    group = zarr.open_group(str(store), mode="r")[name]
    return store / shard_key(group[group.attrs["version"]], shard)


def cli_run(*args: str):
    return CliRunner().invoke(cli, list(args))


def segment(built, store: Path, *extra: str):
    return cli_run("segment", "--params", str(built[0]), "--store", str(store), *extra)


def damage(path: Path, how: str) -> None:
    raw = path.read_bytes()
    if how == "missing":
        path.unlink()
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    else:  # corrupt: same size, one byte flipped in the middle of a chunk
        flipped = bytearray(raw)
        flipped[len(raw) // 3] ^= 0xFF
        path.write_bytes(bytes(flipped))


@pytest.mark.parametrize("how", ["missing", "empty", "truncated", "corrupt"])
def test_a_damaged_shard_is_named_by_verify_refused_by_the_reader_and_repaired_by_segment(built, store, how):
    sound = files(built[1])
    damage(shard_file(store, "depth", 1), how)

    result = cli_run("cache", "verify", str(store))
    assert result.exit_code == 2 and "Traceback" not in result.output
    finding = {
        "missing": "missing",
        "empty": "holds 0 bytes",
        "truncated": "bytes, committed with",
        "corrupt": "does not decode",
    }[how]
    assert "array 'depth' shard 1 (frames 4-7)" in result.output and finding in result.output

    with pytest.raises(MtDepthError) as refused:  # the reader never serves fill zeros or a raw ValueError
        dataset = CachedDepthDataset(store, split="all", mask_source="gt")
        [dataset[i] for i in range(len(dataset))]
    assert "array 'depth' shard 1 (frames 4-7)" in str(refused.value) and "\n" not in str(refused.value)

    repaired = segment(built, store, *(["--repair"] if how == "corrupt" else []))
    assert repaired.exit_code == 0, repaired.output
    assert "wrote depth;" in repaired.output
    assert files(store) == sound


def test_a_same_size_corruption_is_left_to_repair_and_verify_says_how(built, store):
    damage(shard_file(store, "rgb", 0), "corrupt")
    assert "up to date" in segment(built, store).output  # the cheap check sees sizes only
    result = cli_run("cache", "verify", str(store))
    assert result.exit_code == 2 and "mtdepth segment --repair" in result.output.splitlines()[-1]


@pytest.mark.parametrize("how", ["missing", "empty", "corrupt"])
def test_a_damaged_frame_column_is_one_line_everywhere_and_repaired_by_segment(built, store, how):
    sound = files(built[1])
    chunk = store / "frames" / "scene" / "c" / "0"
    if how == "corrupt":
        chunk.write_bytes(np.random.default_rng(0).bytes(chunk.stat().st_size))
    else:
        damage(chunk, how)
    info = cli_run("cache", "info", str(store))
    assert info.exit_code == 2 and len(info.output.strip().splitlines()) == 1 and "frame" in info.output
    verify = cli_run("cache", "verify", str(store))
    assert verify.exit_code == 2 and "Traceback" not in verify.output and "frame" in verify.output
    assert segment(built, store).exit_code == 0
    assert files(store) == sound


def test_a_missing_committed_version_is_refused_and_rewritten(built, store):
    sound = files(built[1])
    version = zarr.open_group(str(store), mode="r")["sparse"].attrs["version"]
    shutil.rmtree(store / "sparse" / version)
    with pytest.raises(MtDepthError, match="array 'sparse'.*missing"):
        open_store(store).array("sparse")
    assert "array 'sparse'" in cli_run("cache", "verify", str(store)).output
    assert segment(built, store).exit_code == 0
    assert files(store) == sound
