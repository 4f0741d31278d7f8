"""The wheel installs and works: built from a clean copy, installed NOT editable into a fresh venv outside
the repository, then `mtdepth --help`, synth, segment, train (one step) and predict run from that copy.

The venv gets the dependencies through a .pth file naming this interpreter's site-packages (no
reinstall of torch); the project itself comes only from the wheel (`pip install --no-deps`).
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from factories import write_frame

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def sh(*args, cwd: Path, env=None) -> str:
    result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, env=env)
    assert result.returncode == 0, f"{args}: {result.stdout[-2000:]}{result.stderr[-4000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(venv bin folder, wheel) of the project installed from its wheel."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    files = sh("git", "ls-files", "-co", "--exclude-standard", cwd=ROOT).splitlines()
    for name in files:
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", work / "dist", source, cwd=work)
    (wheel,) = (work / "dist").glob("mtdepth-*.whl")
    sh(sys.executable, "-m", "venv", work / "venv", cwd=work)
    purelib = Path(
        sh(
            work / "venv/bin/python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=work
        ).strip()
    )
    # every site-packages of this interpreter, the project's own .venv inside the repository included: a
    # path named in a .pth file is not a site dir, so the editable install's finder there never runs, and
    # the wheel's copy in the new venv's purelib comes first on sys.path (asserted below)
    dependencies = sorted(
        {
            p
            for p in {*site.getsitepackages(), *(p for p in sys.path if p.endswith("site-packages"))}
            if Path(p).is_dir()
        }
    )
    (purelib / "dependencies.pth").write_text("\n".join(dependencies) + "\n")
    sh(work / "venv/bin/python", "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel, cwd=work)
    return work / "venv/bin", wheel


def test_the_wheel_holds_every_subpackage_and_the_shipped_weights(installed):
    names = zipfile.ZipFile(installed[1]).namelist()
    for folder in ("pipeline/models", "pipeline/synth", "cache", "stages"):
        assert any(n.startswith(f"mtdepth/{folder}/") for n in names), folder
    assert "mtdepth/weights/yolo11n-seg-synth.pt" in names
    for suffix in (".pt", ".onnx", ".json"):  # the shipped depth model (pipeline/shipped.py)
        assert f"mtdepth/weights/depth-unet-mixed{suffix}" in names


def test_the_installed_copy_runs_the_pipeline_outside_the_repository(installed, tmp_path):
    bin_dir, _ = installed
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": ""}
    where = sh(
        bin_dir / "python", "-c", "import mtdepth.pipeline.models as m; print(m.__file__)", cwd=tmp_path, env=env
    )
    assert Path(where.strip()).is_relative_to(bin_dir.parent), where  # the wheel's copy, not the repository
    assert "synth" in sh("mtdepth", "--help", cwd=tmp_path, env=env)
    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump(
            {
                "synth": {
                    "out": "data",
                    "scenes": ["Scene01", "Scene02"],
                    "conditions": ["clone"],
                    "frames": 2,
                    "image_width": 310,
                    "image_height": 94,
                },
                "data": {"root": "data", "height": 32, "width": 64},
                "store": {"path": "store.zarr", "shard_frames": 2, "mask_sources": ["gt"], "val_fraction": 0.25},
                "model": {
                    "unet_channels": [4, 8],
                    "attention_dim": 8,
                    "attention_size": [4, 8],
                    "fusion_channels": 8,
                    "head_channels": 8,
                    "se_reduction": 2,
                },
                "train": {
                    "epochs": 1,
                    "batch": 4,
                    "workers": 0,
                    "device": "cpu",
                    "precision": "fp32",
                    "compile": "off",
                    "mask_source": "gt",
                    "out": "runs/train",
                },
            }
        )
    )
    sh("mtdepth", "synth", cwd=tmp_path, env=env)
    sh("mtdepth", "segment", cwd=tmp_path, env=env)
    assert "epoch 1/1" in sh("mtdepth", "train", cwd=tmp_path, env=env)
    write_frame(tmp_path / "frames", "a", 40, 70)
    sh(
        "mtdepth",
        "predict",
        "--checkpoint",
        "runs/train/last.pt",
        "--input",
        "frames",
        "--out",
        "dense",
        "--mask-source",
        "none",
        "--device",
        "cpu",
        cwd=tmp_path,
        env=env,
    )
    assert (tmp_path / "dense/a.png").is_file()
    sh("mtdepth", "predict", "--input", "frames", "--out", "shipped", "--device", "cpu", cwd=tmp_path, env=env)
    assert (tmp_path / "shipped/a.png").is_file()  # no --checkpoint: the wheel's own depth model
