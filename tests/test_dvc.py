"""`dvc repro` of the project's own dvc.yaml on tiny data: runs, then reruns exactly what changed."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from mtdepth.pipeline.segmenter import import_ultralytics

REPO = Path(__file__).resolve().parents[1]


def dvc(workdir: Path, *args: str) -> str:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run([str(Path(sys.executable).parent / "dvc"), *args], cwd=workdir, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_dvc_repro_reruns_only_what_changed(tmp_path):
    for name in ("dvc.yaml", "pipeline", "cache", "stages"):
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / name)
    import_ultralytics()
    from ultralytics import YOLO

    (tmp_path / "weights").mkdir()
    YOLO("yolo11n-seg.yaml").save(str(tmp_path / "weights" / "seg.pt"))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["synth"].update(scenes=["Scene01"], conditions=["clone", "fog"], frames=2, image_width=310, image_height=94)
    params["data"].update(height=64, width=128)
    params["segmenter"].update(weights="weights/seg.pt", imgsz=64, device="cpu")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    dvc(tmp_path, "init", "--no-scm", "-q")

    first = dvc(tmp_path, "repro")
    assert "Running stage 'synth'" in first and "Running stage 'segment'" in first
    assert "YOLO on 4 frames" in first
    assert "Running stage" not in dvc(tmp_path, "repro")

    params["sparse"]["keep_prob"] = 0.1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    second = dvc(tmp_path, "repro")
    assert "Running stage 'synth'" not in second and "Running stage 'segment'" in second
    assert "wrote sparse;" in second and "YOLO on 0 frames" in second
