"""One writer at a time, and failed reruns that leave every committed array as it was."""

from __future__ import annotations

import errno
import os
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
from zarr.storage import LocalStore

from mtdepth.cache.store import open_store
from mtdepth.cli import cli

pytestmark = pytest.mark.slow  # minutes: end to end through YOLO, training or dvc repro

HOLDER = textwrap.dedent(
    """
    import sys
    from mtdepth.cache import lock
    from mtdepth.cache.location import Location

    lock.acquire(Location.parse(sys.argv[1]))
    print("holding", flush=True)
    sys.stdin.read()  # hold the lock until the test closes stdin (or kills this process)
    """
)


@pytest.fixture(scope="module")
def built(tiny_store) -> tuple[Path, Path]:
    return tiny_store("tiny", segmenter={"device": "cpu"})


@pytest.fixture
def store(built, tmp_path) -> Path:
    copy = tmp_path / "store.zarr"
    shutil.copytree(built[1], copy)
    return copy


def segment(built, store: Path, *extra: str):
    return CliRunner().invoke(cli, ["segment", "--params", str(built[0]), "--store", str(store), *extra])


def one_line_error(result) -> str:
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def snapshot(store: Path) -> dict[str, np.ndarray]:
    reader = open_store(store)
    return {name: reader.array(name)[:] for name in reader.arrays()}


def hold_lock(store: Path) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(store)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "holding"
    return holder


def test_a_second_writer_is_refused_naming_the_store_and_the_holder(built, store):
    holder = hold_lock(store)
    try:
        line = one_line_error(segment(built, store, "--keep-prob", "0.2"))
        assert str(store) in line and f"pid {holder.pid}" in line and "another writer" in line
    finally:
        holder.stdin.close()
        holder.wait()
    result = segment(built, store, "--keep-prob", "0.2")
    assert result.exit_code == 0, result.output
    assert open_store(store).provenance("sparse")["keep_prob"] == 0.2


def test_a_lock_of_a_killed_writer_does_not_block(built, store):
    holder = hold_lock(store)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert segment(built, store, "--keep-prob", "0.3").exit_code == 0
    assert not Path(f"{store}.lock").exists()


def test_a_source_file_damaged_after_the_build_fails_the_rerun_and_keeps_the_committed_arrays(built, store, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(Path(yaml.safe_load(built[0].read_text())["data"]["root"]), data)
    before = snapshot(store)
    depth = sorted(data.rglob("depth_00002.png"))[-1]
    depth.write_bytes(depth.read_bytes()[:200])  # truncated: its size, hence the depth fingerprint, changes
    line = one_line_error(segment(built, store, "--data", str(data), "--keep-prob", "0.1"))
    assert str(depth) in line
    after = snapshot(store)
    assert after.keys() == before.keys() and all(np.array_equal(after[n], before[n]) for n in before)
    assert open_store(store).verify() == []


@pytest.mark.parametrize("device", ["bogus", "cuda:7"])
def test_an_unusable_device_is_refused_before_the_store_is_touched(built, store, device):
    before = {p: p.read_bytes() for p in store.rglob("*") if p.is_file()}
    line = one_line_error(
        segment(
            built,
            store,
            "--mask-sources",
            "yolo,gt",
            "--device",
            device,
            "--weights",
            "weights/yolo11n-seg-synth.pt",
            "--keep-prob",
            "0.1",
        )
    )
    assert "segmenter.device" in line and device in line
    assert {p: p.read_bytes() for p in store.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("code, advice", [(errno.ENOSPC, "disk is full"), (errno.EACCES, "writable")])
def test_a_full_disk_or_a_read_only_store_mid_rewrite_is_one_line_and_keeps_the_committed_arrays(
    built, store, monkeypatch, code, advice
):
    before = snapshot(store)
    original, calls = LocalStore.set, []

    async def failing(self, key, value):
        calls.append(key)
        if len(calls) > 6:  # a few writes land, then the disk is full (or the folder read-only)
            raise OSError(code, "injected", str(Path(str(self.root)) / key))
        return await original(self, key, value)

    monkeypatch.setattr(LocalStore, "set", failing)
    line = one_line_error(segment(built, store, "--keep-prob", "0.1"))
    assert advice in line and str(store) in line
    monkeypatch.undo()
    after = snapshot(store)
    assert all(np.array_equal(after[n], before[n]) for n in before)
    assert segment(built, store, "--keep-prob", "0.1").exit_code == 0  # the rerun finishes the rewrite


PAUSER = textwrap.dedent(
    """
    import os, signal, sys
    from zarr.storage import LocalStore

    stop_at, calls = int(sys.argv[1]), [0]
    original = LocalStore.set

    async def counted(self, key, value):
        calls[0] += 1
        if calls[0] == stop_at:
            os.kill(os.getpid(), signal.SIGSTOP)  # paused mid-rewrite, holding the lock
        return await original(self, key, value)

    LocalStore.set = counted
    sys.argv = ["mtdepth", *sys.argv[2:]]
    from mtdepth.cli import main
    main()
    """
)


def test_two_real_segment_runs_at_once_the_second_is_refused_and_the_first_commits_its_own_data(built, store, tmp_path):
    first = subprocess.Popen(
        [
            sys.executable,
            "-c",
            PAUSER,
            "8",
            "segment",
            "--params",
            str(built[0]),
            "--store",
            str(store),
            "--keep-prob",
            "0.1",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    _, status = os.waitpid(first.pid, os.WUNTRACED)
    assert os.WIFSTOPPED(status)
    try:
        line = one_line_error(segment(built, store, "--keep-prob", "0.2"))
        assert f"pid {first.pid}" in line
    finally:
        first.send_signal(signal.SIGCONT)
    assert first.wait(timeout=120) == 0, first.stderr.read()
    clean = tmp_path / "clean.zarr"
    assert segment(built, clean, "--keep-prob", "0.1").exit_code == 0
    reader = open_store(store)
    assert reader.provenance("sparse")["keep_prob"] == 0.1 and reader.verify() == []
    assert np.array_equal(reader.array("sparse")[:], open_store(clean).array("sparse")[:])
