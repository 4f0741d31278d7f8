"""The Zarr store: round trips, provenance-driven incremental writes, kill-and-resume, refusals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import zarr

from mtdepth.cache.fingerprint import describe_differences, fingerprint
from mtdepth.cache.schema import ARRAYS, SCHEMA_VERSION
from mtdepth.cache.store import FrameTable, open_for_write, open_store
from mtdepth.errors import MtDepthError

N, H, W, SHARD = 10, 32, 64, 4  # 3 shards, the last one holding 2 frames
KILL_WAIT_S = 60.0


def frame_table(n: int = N, first_index: int = 0, val_every: int = 5) -> FrameTable:
    return FrameTable(
        scene=tuple("Scene01" if i < n // 2 else "Scene02" for i in range(n)),
        condition=("clone",) * n,
        camera=("Camera_0",) * n,
        index=tuple(range(first_index, first_index + n)),
        split=tuple(int(i % val_every == val_every - 1) for i in range(n)),
    )


def frame_data(seed: int = 0, keep_prob: float = 0.05) -> dict[str, np.ndarray]:
    """Random but reproducible content for every schema array; one mask frame left empty."""
    rng = np.random.default_rng(seed)
    depth = rng.integers(1, 8000, (N, H, W), dtype=np.uint16)
    depth[:, : H // 4] = 0
    masks = {name: (rng.random((N, H, W)) < 0.2).astype(np.uint8) for name in ("mask/yolo", "mask/gt")}
    masks["mask/yolo"][3] = 0
    return {
        "rgb": rng.integers(0, 256, (N, H, W, 3), dtype=np.uint8),
        "depth": depth,
        "sparse": np.where(rng.random((N, H, W)) < keep_prob, depth, 0).astype(np.uint16),
        **masks,
    }


def provenances(keep_prob: float = 0.05) -> dict[str, dict]:
    source = {"source": "digest-1", "height": H, "width": W, "schema_version": SCHEMA_VERSION}
    return {
        "rgb": source,
        "depth": {**source, "max_depth": 80.0},
        "sparse": {**source, "max_depth": 80.0, "keep_prob": keep_prob, "seed": 0},
        "mask/yolo": {**source, "weights_sha256": "ab" * 32, "conf": 0.25, "classes": [0, 2]},
        "mask/gt": {**source, "classes": ["Car"]},
    }


def write_all(url, data=None, provs=None, overwrite=False) -> dict[str, list[int]]:
    """Write every array that pending() asks for; return what it asked for."""
    data = frame_data() if data is None else data
    provs = provenances() if provs is None else provs
    asked = {}
    with open_for_write(url, frame_table(), H, W, SHARD, overwrite=overwrite) as writer:
        for name, provenance in provs.items():
            asked[name] = writer.pending(name, provenance)
            for shard in asked[name]:
                start, stop = writer.shard_bounds(shard)
                writer.write_shard(name, shard, data[name][start:stop])
            writer.commit(name)
    return asked


def store_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_round_trip_is_bit_exact_including_the_partial_last_shard(tmp_path):
    url = tmp_path / "s.zarr"
    data = frame_data()
    writer = open_for_write(url, frame_table(), H, W, SHARD)
    assert writer.n_shards == 3
    assert [writer.shard_bounds(i) for i in range(3)] == [(0, 4), (4, 8), (8, 10)]
    write_all(url, data)

    reader = open_store(url)
    assert reader.frames == frame_table()
    assert reader.arrays() == list(ARRAYS)
    for name, expected in data.items():
        stored = reader.array(name)
        assert stored.dtype == expected.dtype and stored.shape == expected.shape
        assert np.array_equal(stored[:], expected), name
        assert stored.shards[0] == SHARD and stored.chunks[0] == 1
    assert reader.scale("depth") == reader.scale("sparse") == 0.01
    assert reader.provenance("sparse") == provenances()["sparse"]
    assert reader.array("sparse").attrs["fingerprint"] == fingerprint(provenances()["sparse"])
    assert reader.verify() == []
    # one file per shard, not per frame
    assert sorted(p.name for p in (url / reader.array("rgb").path / "c").iterdir()) == ["0", "1", "2"]


def test_same_provenance_writes_nothing_and_new_keep_prob_rewrites_only_sparse(tmp_path):
    url = tmp_path / "s.zarr"
    assert all(shards == [0, 1, 2] for shards in write_all(url).values())
    before = {p: p.stat().st_mtime_ns for p in url.rglob("*") if p.is_file() and "sparse" not in p.parts}
    time.sleep(0.01)

    assert all(shards == [] for shards in write_all(url).values())

    asked = write_all(url, frame_data(keep_prob=0.1), provenances(keep_prob=0.1))
    assert asked == {"rgb": [], "depth": [], "sparse": [0, 1, 2], "mask/yolo": [], "mask/gt": []}
    after = {p: p.stat().st_mtime_ns for p in url.rglob("*") if p.is_file() and "sparse" not in p.parts}
    assert after == before
    reader = open_store(url)
    assert reader.provenance("sparse")["keep_prob"] == 0.1
    assert np.array_equal(reader.array("sparse")[:], frame_data(keep_prob=0.1)["sparse"])
    with pytest.raises(MtDepthError, match=r"array 'sparse' was made with keep_prob=0.1, params say 0.05"):
        reader.require("sparse", provenances(keep_prob=0.05)["sparse"])
    reader.require("sparse", provenances(keep_prob=0.1)["sparse"])
    reader.require("rgb", provenances()["rgb"])


def test_require_names_nested_keys_and_both_values(tmp_path):
    url = tmp_path / "s.zarr"
    write_all(url, provs={**provenances(), "mask/yolo": {"segmenter": {"conf": 0.25, "iou": 0.7}, "weights": "aa"}})
    reader = open_store(url)
    with pytest.raises(MtDepthError) as caught:
        reader.require("mask/yolo", {"segmenter": {"conf": 0.5, "iou": 0.7}, "weights": "bb"})
    message = str(caught.value)
    assert "segmenter.conf=0.25, params say 0.5" in message
    assert "weights=aa, params say bb" in message
    assert "iou" not in message
    assert str(url) in message


def test_interrupted_array_resumes_only_missing_shards_and_is_refused_meanwhile(tmp_path):
    url = tmp_path / "s.zarr"
    data, provs = frame_data(), provenances()
    writer = open_for_write(url, frame_table(), H, W, SHARD)
    assert writer.pending("depth", provs["depth"]) == [0, 1, 2]
    writer.write_shard("depth", 0, data["depth"][0:4])
    writer.write_shard("depth", 2, data["depth"][8:10])
    with pytest.raises(RuntimeError, match=r"shards \[1\] not written"):
        writer.commit("depth")

    reader = open_store(url)
    with pytest.raises(MtDepthError, match="array 'depth' is incomplete"):
        reader.require("depth", provs["depth"])
    assert "array 'depth' is not committed (2 of 3 shards written)" in reader.verify()

    again = open_for_write(url, frame_table(), H, W, SHARD)
    assert again.pending("depth", provs["depth"]) == [1]
    # another target restarts from nothing
    assert again.pending("depth", {**provs["depth"], "max_depth": 50.0}) == [0, 1, 2]
    assert open_for_write(url, frame_table(), H, W, SHARD).pending("depth", provs["depth"]) == [0, 1, 2]


def test_write_shard_checks_shape_dtype_and_order_of_calls(tmp_path):
    url = tmp_path / "s.zarr"
    writer = open_for_write(url, frame_table(), H, W, SHARD)
    with pytest.raises(RuntimeError, match="call pending"):
        writer.write_shard("rgb", 0, frame_data()["rgb"][:4])
    writer.pending("rgb", provenances()["rgb"])
    with pytest.raises(MtDepthError, match=r"shard 2 needs \(2, 32, 64, 3\) uint8, got \(4, 32, 64, 3\) uint8"):
        writer.write_shard("rgb", 2, frame_data()["rgb"][:4])
    with pytest.raises(MtDepthError, match="uint16"):
        writer.write_shard("rgb", 0, frame_data()["rgb"][:4].astype(np.uint16))
    with pytest.raises(MtDepthError, match="unknown store array 'mask/sam'"):
        writer.pending("mask/sam", {})
    with pytest.raises(IndexError):
        writer.shard_bounds(3)


WRITER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {tests!r})
    from test_store import H, SHARD, W, frame_data, frame_table, provenances
    from mtdepth.cache.store import open_for_write

    url, pause = sys.argv[1], float(sys.argv[2])
    data, provs = frame_data(), provenances()
    with open_for_write(url, frame_table(), H, W, SHARD) as writer:
        for name in ("rgb", "depth", "sparse"):
            for shard in writer.pending(name, provs[name]):
                start, stop = writer.shard_bounds(shard)
                writer.write_shard(name, shard, data[name][start:stop])
                time.sleep(pause)
            writer.commit(name)
    """
)


def test_sigkill_mid_write_then_rerun_equals_an_uninterrupted_run(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER_SCRIPT.format(tests=str(Path(__file__).parent)))
    reference, resumed = tmp_path / "reference.zarr", tmp_path / "resumed.zarr"
    subprocess.run([sys.executable, str(script), str(reference), "0"], check=True, timeout=KILL_WAIT_S)

    process = subprocess.Popen([sys.executable, str(script), str(resumed), "0.4"])
    marker = resumed / "_progress" / "depth" / "c" / "0"  # depth's first shard is done
    deadline = time.monotonic() + KILL_WAIT_S
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL

    reader = open_store(resumed)
    assert reader.is_committed("rgb") and not reader.is_committed("depth") and "sparse" not in reader.arrays()
    # what a non-atomic store (or a kill mid-rename) could leave: a torn next shard, a temp file
    (version,) = [p for p in (resumed / "depth").iterdir() if p.is_dir()]
    torn = version / "c" / "2" / "0" / "0"
    torn.parent.mkdir(parents=True, exist_ok=True)
    torn.write_bytes(b"torn shard")
    (version / "c" / "0.0123.partial").write_bytes(b"leftover")

    subprocess.run([sys.executable, str(script), str(resumed), "0"], check=True, timeout=KILL_WAIT_S)
    assert store_files(resumed) == store_files(reference)
    assert open_store(resumed).verify() == []


def test_other_schema_version_is_refused_naming_both_versions(tmp_path):
    url = tmp_path / "s.zarr"
    write_all(url)
    other = SCHEMA_VERSION + 41
    zarr.open_group(str(url), mode="r+").attrs["schema_version"] = other
    for attempt in (lambda: open_store(url), lambda: open_for_write(url, frame_table(), H, W, SHARD)):
        with pytest.raises(MtDepthError) as caught:
            attempt()
        assert f"schema version {other}" in str(caught.value)
        assert f"schema version {SCHEMA_VERSION}" in str(caught.value)
    assert write_all(url, overwrite=True)["rgb"] == [0, 1, 2]
    assert open_store(url).verify() == []


def test_other_frames_or_geometry_refused_unless_overwrite(tmp_path):
    url = tmp_path / "s.zarr"
    write_all(url)
    with pytest.raises(MtDepthError, match="another set of frames"):
        open_for_write(url, frame_table(first_index=5), H, W, SHARD)
    with pytest.raises(MtDepthError, match="height is 32 in the store, 64 now"):
        open_for_write(url, frame_table(), 2 * H, W, SHARD)
    with pytest.raises(MtDepthError, match="shard_frames is 4 in the store, 8 now"):
        open_for_write(url, frame_table(), H, W, 2 * SHARD)

    writer = open_for_write(url, frame_table(first_index=5), H, W, SHARD, overwrite=True)
    assert writer.pending("rgb", provenances()["rgb"]) == [0, 1, 2]
    reader = open_store(url)
    assert reader.frames == frame_table(first_index=5)
    assert reader.arrays() == ["rgb"]


def test_a_new_split_is_rewritten_in_place_keeping_the_arrays(tmp_path):
    url = tmp_path / "s.zarr"
    write_all(url)
    resplit = frame_table(val_every=2)
    writer = open_for_write(url, resplit, H, W, SHARD)
    assert writer.pending("rgb", provenances()["rgb"]) == []
    reader = open_store(url)
    assert reader.frames == resplit
    assert reader.frames.split_counts() == {"train": 5, "val": 5}
    assert reader.verify() == []


def test_a_file_is_refused_and_so_is_a_folder_of_other_things(tmp_path):
    a_file = tmp_path / "store.zarr"
    a_file.write_text("not a store")
    for attempt in (lambda: open_store(a_file), lambda: open_for_write(a_file, frame_table(), H, W, SHARD)):
        with pytest.raises(MtDepthError, match=f"{a_file}: is a file"):
            attempt()

    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep me")
    with pytest.raises(MtDepthError, match="exists and is not an mtdepth store"):
        open_for_write(folder, frame_table(), H, W, SHARD, overwrite=True)
    assert (folder / "precious.txt").read_text() == "keep me"
    with pytest.raises(MtDepthError, match="not a zarr v3 store"):
        open_store(folder)
    with pytest.raises(MtDepthError, match="not found"):
        open_store(tmp_path / "absent.zarr")

    empty = tmp_path / "empty"
    empty.mkdir()
    write_all(empty)
    assert open_store(empty).verify() == []


def test_memory_and_file_urls(tmp_path):
    data = frame_data(seed=3)
    for url in (f"memory://mtdepth-test-{uuid.uuid4().hex}/s.zarr", f"file://{tmp_path / 'f.zarr'}"):
        write_all(url, data)
        reader = open_store(url)
        assert all(np.array_equal(reader.array(name)[:], data[name]) for name in data)
        assert reader.verify() == []
        assert write_all(url)["sparse"] == []
    assert (tmp_path / "f.zarr" / "zarr.json").is_file()


def test_unknown_protocol_is_a_user_error():
    with pytest.raises(MtDepthError, match=r"store nosuchproto://x/s.zarr: cannot open nosuchproto:// locations"):
        open_store("nosuchproto://x/s.zarr")


def test_store_creation_interrupted_before_the_frame_table_commits_is_rebuilt(tmp_path):
    url = tmp_path / "s.zarr"
    write_all(url)
    root = zarr.open_group(str(url), mode="r+")
    del root.attrs["frames_fingerprint"]
    with pytest.raises(MtDepthError, match="incomplete"):
        open_store(url)
    assert write_all(url)["rgb"] == [0, 1, 2]
    assert open_store(url).verify() == []


def test_fingerprint_is_canonical():
    assert fingerprint({"a": (1, 2), "b": 0.05}) == fingerprint({"b": 0.05, "a": [1, 2]})
    assert fingerprint({"a": 1}) != fingerprint({"a": 1.5})
    assert describe_differences({"x": 1, "y": {"z": 2}}, {"x": 1, "y": {"z": 3}, "w": 4}) == (
        "w=<absent>, params say 4; y.z=2, params say 3"
    )


def test_empty_frame_table_is_refused(tmp_path):
    empty = FrameTable((), (), (), (), ())
    with pytest.raises(MtDepthError, match="no frames"):
        open_for_write(tmp_path / "s.zarr", empty, H, W, SHARD)
    assert not os.path.exists(tmp_path / "s.zarr")


def test_an_array_with_every_shard_written_but_no_commit_is_committed_by_the_rerun(tmp_path):
    url, data, provs = tmp_path / "s.zarr", frame_data(), provenances()
    with open_for_write(url, frame_table(), H, W, SHARD) as writer:
        todo = writer.pending("depth", provs["depth"])
        for shard in todo:
            writer.write_shard("depth", shard, data["depth"][slice(*writer.shard_bounds(shard))])
        # killed here: every shard is in, the commit is not
    with open_for_write(url, frame_table(), H, W, SHARD) as writer:
        again = writer.pending("depth", provs["depth"])
        assert again == [] and again.commit
        writer.commit("depth")
        done = writer.pending("depth", provs["depth"])
        assert done == [] and not done.commit
    assert np.array_equal(open_store(url).array("depth")[:], data["depth"])


def test_a_rewrite_is_copy_on_write_and_the_old_version_goes_only_after_the_commit(tmp_path):
    url = tmp_path / "s.zarr"
    write_all(url)
    old_version = zarr.open_group(str(url / "sparse")).attrs["version"]
    new = frame_data(keep_prob=0.2)["sparse"]
    with open_for_write(url, frame_table(), H, W, SHARD) as writer:
        for shard in writer.pending("sparse", provenances(keep_prob=0.2)["sparse"]):
            writer.write_shard("sparse", shard, new[slice(*writer.shard_bounds(shard))])
            reader = open_store(url)  # meanwhile readers see the committed version, whole
            assert reader.provenance("sparse")["keep_prob"] == 0.05
            assert np.array_equal(reader.array("sparse")[:], frame_data()["sparse"])
        writer.commit("sparse")
    assert np.array_equal(open_store(url).array("sparse")[:], new)
    assert not (url / "sparse" / old_version).exists() and not (url / "_progress" / "sparse").exists()


def test_one_writer_at_a_time_per_store_and_none_for_object_stores(tmp_path):
    url = tmp_path / "s.zarr"
    with open_for_write(url, frame_table(), H, W, SHARD):
        assert (tmp_path / "s.zarr.lock").exists()
        holder = subprocess.run(
            [
                sys.executable,
                "-c",
                textwrap.dedent(f"""
            import sys
            sys.path.insert(0, {str(Path(__file__).parent)!r})
            from test_store import H, SHARD, W, frame_table
            from mtdepth.cache.store import open_for_write
            from mtdepth.errors import MtDepthError
            try:
                open_for_write({str(url)!r}, frame_table(), H, W, SHARD)
            except MtDepthError as exc:
                print(exc)
            """),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"store {url}: another writer holds it (pid {os.getpid()}" in holder
    assert not (tmp_path / "s.zarr.lock").exists()
    memory = f"memory://mtdepth-test-{uuid.uuid4().hex}/s.zarr"
    with open_for_write(memory, frame_table(), H, W, SHARD), open_for_write(memory, frame_table(), H, W, SHARD):
        pass  # not locked: see docs/store.md on object stores
