"""The shipped model on real frames, when a folder of them is at hand (MTDEPTH_REAL_DATA; docs/lidar.md,
"Real frames"): guarded, it is never worse than IP-Basic on KITTI and stays within nearest fill's RMSE
indoors. Skips when the frames are absent (they cannot ship: KITTI is CC BY-NC-SA 3.0)."""

import json
import os
from pathlib import Path

import pytest

from factories import run

REAL = Path(os.environ.get("MTDEPTH_REAL_DATA", "/nonexistent"))
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not REAL.is_dir(), reason="no real frames: set MTDEPTH_REAL_DATA (docs/lidar.md)"),
]


def score(folder: Path, out: Path, *source: str) -> dict:
    result = run("evaluate", "--input", folder, "--out", out, "--device", "cpu", *source)
    assert result.exit_code == 0, result.output
    return json.loads((out / "metrics.json").read_text())["pooled"]["final"]["all"]


@pytest.mark.parametrize("subset", ["kitti", "indoor"])
def test_the_shipped_model_does_no_harm_on_real_frames(subset, tmp_path, monkeypatch):
    from mtdepth.pipeline.shipped import shipped_model

    folder = REAL / subset
    if not folder.is_dir():
        pytest.skip(f"no {folder}")
    monkeypatch.chdir(tmp_path)
    model = score(folder, tmp_path / "model", "--checkpoint", shipped_model())
    ipbasic = score(folder, tmp_path / "ipbasic", "--baseline", "ipbasic")
    nearest = score(folder, tmp_path / "nearest", "--baseline", "nearest")
    if subset == "kitti":
        assert model["rmse_mm"] <= ipbasic["rmse_mm"] * 1.001 and model["mae_mm"] <= ipbasic["mae_mm"] * 1.001
    else:
        assert model["rmse_mm"] <= nearest["rmse_mm"]
