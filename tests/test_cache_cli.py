"""`mtdepth cache info|verify` through the real CLI group."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from mtdepth.cache.layout import shard_key
from mtdepth.cache.store import FrameTable, open_for_write
from mtdepth.cli import cli

N, H, W, SHARD = 10, 32, 64, 4
PROVENANCE = {
    "rgb": {"source": {"root": "data/synth", "digest": "d1"}, "height": H, "width": W},
    "depth": {"source": {"root": "data/synth", "digest": "d1"}, "max_depth": 80.0},
    "sparse": {"source": {"root": "data/synth", "digest": "d1"}, "keep_prob": 0.05, "seed": 0},
    "mask/yolo": {"weights_sha256": "f" * 64, "conf": 0.25},
}


def make_store(url) -> None:
    rng = np.random.default_rng(0)
    frames = FrameTable(("Scene01",) * N, ("fog",) * N, ("Camera_0",) * N, tuple(range(N)), (0,) * 7 + (1,) * 3)
    writer = open_for_write(url, frames, H, W, SHARD)
    shapes = {"rgb": (N, H, W, 3), "depth": (N, H, W), "sparse": (N, H, W), "mask/yolo": (N, H, W)}
    dtypes = {"rgb": np.uint8, "depth": np.uint16, "sparse": np.uint16, "mask/yolo": np.uint8}
    for name, provenance in PROVENANCE.items():
        values = rng.integers(0, 2 if name.startswith("mask") else 200, shapes[name]).astype(dtypes[name])
        for shard in writer.pending(name, provenance):
            start, stop = writer.shard_bounds(shard)
            writer.write_shard(name, shard, values[start:stop])
        writer.commit(name)


def run_cli(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def store(tmp_path):
    url = tmp_path / "store.zarr"
    make_store(url)
    return url


def test_info_shows_arrays_sizes_codecs_fingerprints_provenance_and_splits(store):
    result = run_cli("cache", "info", str(store))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "frames 10 (train 7, val 3), 32x64, 4 frames per shard" in out
    assert "rgb  (10, 32, 64, 3) uint8  shards (4, 32, 64, 3)" in out
    assert "sparse  (10, 32, 64) uint16" in out
    assert "raw (" in out and "blosc" in out and "crc32c" in out
    assert "attr scale = 0.01" in out
    assert "source.root = data/synth" in out and "keep_prob = 0.05" in out
    assert f"weights_sha256 = {'f' * 64}" in out
    assert out.count("fingerprint ") >= len(PROVENANCE)

    as_json = json.loads(run_cli("cache", "info", "--json", str(store)).output)
    assert as_json["splits"] == {"train": 7, "val": 3}
    assert as_json["arrays"]["mask/yolo"]["provenance"] == PROVENANCE["mask/yolo"]
    assert as_json["arrays"]["rgb"]["raw_bytes"] == N * H * W * 3


def test_verify_ok(store):
    result = run_cli("cache", "verify", str(store))
    assert result.exit_code == 0, result.output
    assert "OK (10 frames; rgb, depth, sparse, mask/yolo)" in result.output


def shard_file(store, name: str, shard: int):
    """The file of shard `shard` of the committed version of `name`."""
    group = zarr.open_group(str(store), mode="r")[name]
    return store / shard_key(group[group.attrs["version"]], shard)


def test_verify_finds_a_deleted_shard_file(store):
    shard_file(store, "depth", 1).unlink()
    result = run_cli("cache", "verify", str(store))
    assert result.exit_code == 2
    version = zarr.open_group(str(store), mode="r")["depth"].attrs["version"]
    assert f"array 'depth' shard 1 (frames 4-7): shard file depth/{version}/c/1/0/0 missing" in result.output
    assert "1 problem(s) found" in result.output


def test_verify_finds_a_corrupted_shard(store):
    shard = shard_file(store, "rgb", 2)
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 3] ^= 0xFF
    shard.write_bytes(bytes(raw))
    result = run_cli("cache", "verify", str(store))
    assert result.exit_code == 2
    assert "array 'rgb' shard 2 (frames 8-9): does not decode" in result.output


def test_verify_finds_a_tampered_provenance(store):
    zarr.open_group(str(store / "sparse"), mode="r+").attrs["provenance"] = {"keep_prob": 0.5}
    result = run_cli("cache", "verify", str(store))
    assert result.exit_code == 2
    assert "array 'sparse': fingerprint is not the hash of its provenance" in result.output


def test_missing_store_is_one_line_and_exit_2(tmp_path):
    result = run_cli("cache", "info", str(tmp_path / "nope.zarr"))
    assert result.exit_code == 2
    assert result.output.strip() == f"mtdepth: error: store {tmp_path / 'nope.zarr'}: not found"
