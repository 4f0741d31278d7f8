"""Every user error of stage one and synth is one line and exit 2; killed synth runs leave nothing behind."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mtdepth.cli import cli

SYNTH = {"scenes": ["Scene01", "Scene02"], "conditions": ["clone"], "frames": 2, "image_width": 124, "image_height": 38}


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("errors")
    params = {
        "synth": {"out": str(root / "data"), **SYNTH},
        "data": {"root": str(root / "data"), "height": 32, "width": 64},
        "segmenter": {"device": "cpu", "weights": str(Path("weights/yolo11n-seg-synth.pt").absolute())},
        "store": {"path": str(root / "store.zarr"), "shard_frames": 2, "mask_sources": ["gt"]},
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    assert CliRunner().invoke(cli, ["synth", "--params", str(root / "params.yaml")]).exit_code == 0
    (root / "a-file").write_text("not a folder")
    (root / "params-folder").mkdir()
    (root / "latin1.yaml").write_bytes("store: {path: caf\xe9}\n".encode("latin-1"))
    return root


def invoke(ws: Path, *args: str):
    command, *rest = args
    return CliRunner().invoke(cli, [command, "--params", str(ws / "params.yaml"), *rest])


def one_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.output, result.output
    assert lines[0].startswith("mtdepth: error: ")
    return lines[0]


def broken_dataset(ws: Path, tmp_path: Path, how: str) -> Path:
    """A copy of the dataset with one depth PNG made unreadable in the way `how` says."""
    data = tmp_path / "data"
    subprocess.run(["cp", "-r", str(ws / "data"), str(data)], check=True)
    depth = sorted(data.rglob("depth_00001.png"))[0]
    if how == "zero-byte":
        depth.write_bytes(b"")
    elif how == "text":
        depth.write_text("this is not a PNG\n")
    else:
        depth.unlink()
        depth.symlink_to(depth.name if how == "loop" else tmp_path / "nowhere.png")
    return data


@pytest.mark.parametrize("how", ["zero-byte", "text", "dangling", "loop"])
def test_an_unreadable_dataset_file_is_one_line_naming_it(ws, tmp_path, how):
    data = broken_dataset(ws, tmp_path, how)
    line = one_line(
        invoke(ws, "segment", "--data", str(data), "--store", str(tmp_path / "s.zarr"), "--mask-sources", "yolo,gt")
    )
    assert "depth_00001.png" in line


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--params", "{ws}/params-folder"], "is a folder, not a params file"),
        (["--params", "{ws}/latin1.yaml"], "not a UTF-8 text file"),
        (["--keep-prob", "abc"], "Invalid value for '--keep-prob'"),
        (["--device", "bogus", "--mask-sources", "yolo"], "segmenter.device: 'bogus' is not a device"),
        (["--device", "cuda:9", "--mask-sources", "yolo"], "segmenter.device: 'cuda:9' asked"),
        (["--weights", "{ws}/params-folder", "--mask-sources", "yolo"], "is a folder, not a weights file"),
        (["--store", "{ws}/a-file/s.zarr"], "a-file is a file, so no store folder can be made under it"),
        (["--scheduler", "not-an-address"], "--scheduler not-an-address: cannot reach"),
        (["--split", "scene", "--data", "{ws}/one-scene"], "store.split: 'scene' needs at least two scenes"),
    ],
)
def test_segment_user_errors_are_one_line(ws, tmp_path, args, fragment):
    if "{ws}/one-scene" in args and not (ws / "one-scene").exists():
        result = CliRunner().invoke(
            cli, ["synth", "--params", str(ws / "params.yaml"), "--out", str(ws / "one-scene"), "--scenes", "Scene01"]
        )
        assert result.exit_code == 0
    args = [a.format(ws=ws) for a in args]
    if args[0] == "--params":
        result = CliRunner().invoke(cli, ["segment", *args])
    else:
        result = invoke(ws, "segment", "--store", str(tmp_path / "s.zarr"), *args)
    assert fragment in one_line(result)
    assert not (tmp_path / "s.zarr").exists()


@pytest.mark.parametrize(
    "out, fragment",
    [
        (".", "is the current folder or one above it"),
        ("{ws}/a-file/data", "a-file is a file, so no folder can be made under it"),
        ("{ws}/a-file", "output path exists and is a file; choose another --out"),
    ],
)
@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]], ids=["plain", "overwrite"])
def test_synth_output_path_errors_are_one_line_and_touch_nothing(ws, out, fragment, overwrite):
    before = sorted(os.listdir("."))
    line = one_line(invoke(ws, "synth", "--out", out.format(ws=ws), *overwrite))
    assert fragment in line and "--overwrite" not in line.replace("choose another --out", "")
    assert sorted(os.listdir(".")) == before and (ws / "a-file").read_text() == "not a folder"


def test_synth_disk_full_is_one_line_and_leaves_no_partial_folder(ws, tmp_path, monkeypatch):
    from mtdepth.pipeline import vkitti2_format

    def full(path, *args):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(vkitti2_format, "write_depth_units", full)
    line = one_line(invoke(ws, "synth", "--out", str(tmp_path / "out")))
    assert "disk is full" in line and str(tmp_path / "out") in line
    assert os.listdir(tmp_path) == []


KILLER = textwrap.dedent(
    """
    import os, pathlib, signal, sys
    from PIL import Image

    where, kill_at, calls = sys.argv[1], int(sys.argv[2]), [0]
    owner, name = (pathlib.Path, "rename") if where == "rename" else (Image.Image, "save")
    original = getattr(owner, name)

    def counted(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, *args, **kwargs)

    setattr(owner, name, counted)
    sys.argv = ["mtdepth", *sys.argv[3:]]
    from mtdepth.cli import main
    main()
    """
)


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    "where, kill_at",
    [("save", 5), ("rename", 1), ("rename", 2)],
    ids=["mid-write", "before-the-renames", "between-the-renames"],
)
def test_a_killed_synth_overwrite_is_recovered_by_the_next_run(ws, tmp_path, where, kill_at):
    out = tmp_path / "out"
    args = ["synth", "--params", str(ws / "params.yaml"), "--out", str(out)]
    assert CliRunner().invoke(cli, [*args, "--seed", "5"]).exit_code == 0
    old = tree(out)
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, where, str(kill_at), *args, "--overwrite"], capture_output=True, timeout=120
    )
    assert killed.returncode == -signal.SIGKILL
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name != "out")
    assert leftovers and all(n.startswith(("out.partial-", "out.old-")) for n in leftovers)
    assert (tree(out) == old) if out.exists() else where == "rename" and kill_at == 2

    refused = CliRunner().invoke(cli, args)  # the next run first puts a retired dataset back
    assert refused.exit_code == 2 and tree(out) == old
    assert CliRunner().invoke(cli, [*args, "--overwrite"]).exit_code == 0
    assert sorted(os.listdir(tmp_path)) == ["out"]
    assert tree(out) == tree(ws / "data")
