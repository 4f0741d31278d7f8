"""Stage one end to end through the real CLI: store contents, incrementality, resume, bad input."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from mtdepth.cache.dataset import CachedDepthDataset
from mtdepth.cache.requirements import required_provenance
from mtdepth.cache.store import open_store
from mtdepth.cli import cli
from mtdepth.errors import MtDepthError
from mtdepth.params import params_from_dict
from mtdepth.pipeline import segmenter as segmenter_module
from mtdepth.pipeline.masks import foreground
from mtdepth.pipeline.segmenter import import_ultralytics
from mtdepth.pipeline.vkitti2 import index_frames, load_frame

pytestmark = pytest.mark.slow  # minutes: end to end through YOLO, training or dvc repro

HEIGHT, WIDTH = 64, 128


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, synth_tree, tiny_yolo):
    """A tiny synthetic dataset, two untrained segmentation checkpoints and a params file."""
    root = tmp_path_factory.mktemp("segment")
    import_ultralytics()
    from ultralytics import YOLO

    shutil.copyfile(tiny_yolo, root / "seg_a.pt")
    shutil.copytree(synth_tree(), root / "data")
    YOLO("yolo11n.yaml").save(str(root / "detect.pt"))
    other = YOLO("yolo11n-seg.yaml")
    next(other.model.parameters()).data.add_(1.0)  # other weights, other sha256
    other.save(str(root / "seg_b.pt"))
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
        "segmenter": {"weights": str(root / "seg_a.pt"), "imgsz": 128, "batch": 4, "device": "cpu"},
        "store": {"path": str(root / "store.zarr"), "shard_frames": 4},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def run(workspace: Path, *args: str):
    return CliRunner().invoke(cli, ["segment", "--params", str(workspace / "params.yaml"), *args])


@pytest.fixture
def yolo_calls(monkeypatch):
    """Counts the frames the segmenter is asked to predict."""
    calls = []
    original = segmenter_module.Segmenter.predict_batch

    def counting(self, images):
        calls.append(len(images))
        return original(self, images)

    monkeypatch.setattr(segmenter_module.Segmenter, "predict_batch", counting)
    return calls


def fingerprints(store: Path) -> dict[str, str]:
    reader = open_store(str(store))
    return {name: reader.array(name).attrs["fingerprint"] for name in reader.arrays()}


def test_store_holds_exactly_what_the_reader_decodes(workspace, tmp_path, yolo_calls):
    store = tmp_path / "s.zarr"
    result = run(workspace, "--store", str(store))
    assert result.exit_code == 0, result.output
    assert sum(yolo_calls) == 12
    reader = open_store(str(store))
    assert reader.verify() == []
    assert set(reader.arrays()) >= {"rgb", "depth", "sparse", "mask/yolo", "mask/gt"}
    refs = index_frames(workspace / "data")
    frames = reader.frames
    assert [
        f"{s}/{c}/{cam}/{i:05d}" for s, c, cam, i in zip(frames.scene, frames.condition, frames.camera, frames.index)
    ] == [r.key for r in refs]
    assert sorted(frames.split).count(1) == 2  # round(0.2 * 12) validation frames
    for row in (0, 7, 11):
        decoded = load_frame(refs[row], HEIGHT, WIDTH, 80.0)
        assert np.array_equal(reader.array("rgb")[row], decoded.rgb)
        depth_m = reader.array("depth")[row] * reader.scale("depth")
        assert np.allclose(depth_m, decoded.depth, atol=1e-4)
        sparse = reader.array("sparse")[row]
        sampled = sparse > 0
        assert sampled.any() and np.array_equal(sparse[sampled], reader.array("depth")[row][sampled])
        assert np.array_equal(reader.array("mask/gt")[row], foreground(decoded.instances))
    item = CachedDepthDataset(str(store), split="all", mask_source="yolo")[0]
    assert item["rgb"].shape == (3, HEIGHT, WIDTH) and item["mask"].shape == (1, HEIGHT, WIDTH)


def test_only_changed_arrays_are_rewritten(workspace, tmp_path, yolo_calls):
    store = tmp_path / "s.zarr"
    assert run(workspace, "--store", str(store)).exit_code == 0
    first = fingerprints(store)
    yolo_calls.clear()

    result = run(workspace, "--store", str(store), "--keep-prob", "0.1")
    assert result.exit_code == 0, result.output
    assert yolo_calls == []  # a new keep_prob does not rerun YOLO
    second = fingerprints(store)
    assert {n for n in first if first[n] != second[n]} == {"sparse"}
    assert open_store(str(store)).provenance("sparse")["keep_prob"] == 0.1

    result = run(workspace, "--store", str(store), "--keep-prob", "0.1")
    assert "nothing (store up to date)" in result.output and yolo_calls == []

    result = run(workspace, "--store", str(store), "--keep-prob", "0.1", "--weights", str(workspace / "seg_b.pt"))
    assert result.exit_code == 0, result.output
    third = fingerprints(store)
    assert {n for n in second if second[n] != third[n]} == {"mask/yolo"} and sum(yolo_calls) == 12


def test_a_pattern_change_rewrites_sparse_only(workspace, tmp_path, yolo_calls):
    store = tmp_path / "s.zarr"
    assert run(workspace, "--store", str(store)).exit_code == 0
    first, uniform = fingerprints(store), open_store(str(store)).array("sparse")[:]
    yolo_calls.clear()
    for pattern in ("lidar", "mixed"):
        result = run(workspace, "--store", str(store), "--pattern", pattern)
        assert result.exit_code == 0, result.output
        assert "wrote sparse;" in result.output and yolo_calls == []  # never reruns YOLO
        second = fingerprints(store)
        assert {n for n in first if first[n] != second[n]} == {"sparse"}
        reader = open_store(str(store))
        assert reader.provenance("sparse")["pattern"] == pattern and "intrinsics" in reader.provenance("sparse")
        sparse, depth = reader.array("sparse")[:], reader.array("depth")[:]
        assert not np.array_equal(sparse, uniform) and (sparse > 0).any()
        assert np.all(depth[sparse > 0] > 0)  # samples only where the depth is valid
        info = CliRunner().invoke(cli, ["cache", "info", str(store)])
        realised = f"density {np.count_nonzero(sparse) / sparse.size:.2%} of pixels"
        assert info.exit_code == 0 and realised in info.output and f"(pattern {pattern})" in info.output
    assert run(workspace, "--store", str(store), "--pattern", "uniform").exit_code == 0
    assert np.array_equal(open_store(str(store)).array("sparse")[:], uniform)  # back to the same samples


def test_a_store_made_with_other_params_is_refused_by_readers(workspace, tmp_path):
    store = tmp_path / "s.zarr"
    assert run(workspace, "--store", str(store), "--mask-sources", "gt").exit_code == 0
    reader = open_store(str(store))
    wanted = dict(reader.provenance("sparse"), keep_prob=0.07)
    with pytest.raises(MtDepthError, match=r"array 'sparse' was made with keep_prob=0.05, params say 0.07"):
        CachedDepthDataset(str(store), split="train", mask_source="gt", required={"sparse": wanted})
    with pytest.raises(MtDepthError, match="yolo"):
        CachedDepthDataset(str(store), split="train", mask_source="yolo")
    lidar = required_provenance(reader, params_from_dict({"sparse": {"pattern": "lidar"}}), ["sparse"])
    with pytest.raises(MtDepthError, match=r"array 'sparse' was made with .*pattern=uniform, params say lidar"):
        CachedDepthDataset(str(store), split="train", mask_source="gt", required=lidar)


def _kill_when(store: Path, process: subprocess.Popen, timeout: float = 120.0) -> None:
    """SIGKILL `process` as soon as the first YOLO mask shard is on disk."""
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        if any((store / "mask" / "yolo").glob("v-*/c/*")):
            process.send_signal(signal.SIGKILL)
            process.wait()
            return
        time.sleep(0.01)
    raise AssertionError("stage one finished or stalled before it could be killed")


def test_kill_mid_write_then_resume_equals_an_uninterrupted_run(workspace, tmp_path):
    killed, clean = tmp_path / "killed.zarr", tmp_path / "clean.zarr"
    command = [
        sys.executable,
        "-m",
        "mtdepth.cli",
        "segment",
        "--params",
        str(workspace / "params.yaml"),
        "--imgsz",
        "320",
        "--batch",
        "1",
    ]
    process = subprocess.Popen([*command, "--store", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _kill_when(killed, process)
    reader = open_store(str(killed))
    assert not reader.is_committed("mask/yolo")  # really interrupted mid-run
    with pytest.raises(MtDepthError, match="mask/yolo"):
        reader.require("mask/yolo")

    for store in (killed, clean):
        done = subprocess.run([*command, "--store", str(store)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    a, b = open_store(str(killed)), open_store(str(clean))
    assert a.verify() == [] and sorted(a.arrays()) == sorted(b.arrays())
    for name in a.arrays():
        assert np.array_equal(a.array(name)[:], b.array(name)[:]), name
        assert a.array(name).attrs["fingerprint"] == b.array(name).attrs["fingerprint"]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--data", "/nonexistent/vkitti"], "/nonexistent/vkitti"),
        (["--weights", "/nonexistent/w.pt"], "/nonexistent/w.pt: weights file not found"),
        (["--weights", "{ws}/detect.pt"], "detect.pt: model task is 'detect', not a segmentation model"),
        (["--mask-sources", "yolo,depthanything"], "store.mask_sources must be a subset"),
        (["--keep-prob", "0"], "sparse.keep_prob must be in (0, 1]"),
        (["--pattern", "radar"], "sparse.pattern must be 'uniform', 'keypoints', 'lidar' or 'mixed'"),
    ],
)
def test_bad_input_is_one_line_and_leaves_the_store_intact(workspace, tmp_path, args, fragment):
    store = tmp_path / "s.zarr"
    assert run(workspace, "--store", str(store), "--mask-sources", "gt").exit_code == 0
    before = fingerprints(store)
    result = run(workspace, "--store", str(store), *[a.format(ws=workspace) for a in args])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in result.output
    assert fingerprints(store) == before and open_store(str(store)).verify() == []


def test_store_path_that_is_a_file_is_refused(workspace, tmp_path):
    target = tmp_path / "not-a-store"
    target.write_text("precious")
    result = run(workspace, "--store", str(target), "--mask-sources", "gt")
    assert result.exit_code == 2 and "not-a-store" in result.output
    assert target.read_text() == "precious"


def test_fsspec_url_store(workspace):
    url = f"memory://segment-{os.getpid()}/s.zarr"
    result = run(workspace, "--store", url, "--mask-sources", "gt")
    assert result.exit_code == 0, result.output
    assert open_store(url).verify() == []


def test_decoding_on_a_dask_distributed_cluster_gives_the_same_store(workspace, tmp_path):
    from distributed import LocalCluster

    local, distributed = tmp_path / "local.zarr", tmp_path / "distributed.zarr"
    assert run(workspace, "--store", str(local), "--mask-sources", "gt").exit_code == 0
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        result = run(
            workspace, "--store", str(distributed), "--mask-sources", "gt", "--scheduler", cluster.scheduler_address
        )
    assert result.exit_code == 0, result.output
    a, b = open_store(str(local)), open_store(str(distributed))
    for name in a.arrays():
        assert np.array_equal(a.array(name)[:], b.array(name)[:]), name
