"""The shipped default depth model (weights/depth-unet-mixed.*, `make depth-model`): predict uses it with no
--checkpoint from any folder, its files are small, its JSON report names the command and matches the files,
and the options added for its pipeline refuse bad input in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from factories import errors, make_checkpoint, run, write_frame
from mtdepth.errors import MtDepthError
from mtdepth.pipeline import shipped
from mtdepth.pipeline.checkpoint import model_from_checkpoint, read_checkpoint
from mtdepth.pipeline.model_card import model_card
from mtdepth.pipeline.onnx_export import read_onnx
from mtdepth.pipeline.segmenter import sha256_file

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "weights"
NAME = Path(shipped.SHIPPED_MODEL).stem
MAX_BYTES = 10 * 1024 * 1024


def test_shipped_model_is_found_from_the_package_not_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "weights").mkdir()
    (tmp_path / shipped.SHIPPED_MODEL).write_bytes(b"a decoy in the working folder")
    assert shipped.shipped_model().resolve() == (WEIGHTS / f"{NAME}.pt").resolve()


def test_no_shipped_model_is_one_line(monkeypatch):
    monkeypatch.setattr(shipped, "shipped_weights", lambda weights: None)
    with pytest.raises(MtDepthError, match=r"^--checkpoint: no shipped depth model"):
        shipped.shipped_model()


@pytest.mark.parametrize("suffix", [".pt", ".onnx", ".json"])
def test_shipped_files_are_under_10_mb(suffix):
    path = WEIGHTS / f"{NAME}{suffix}"
    assert path.is_file()
    assert path.stat().st_size < MAX_BYTES, f"{path.name}: {path.stat().st_size:,} bytes"


def test_the_shipped_model_is_the_default_configuration():
    info = read_onnx(WEIGHTS / f"{NAME}.onnx")
    config = read_checkpoint(WEIGHTS / f"{NAME}.pt")["model_config"]
    assert config == info.model_config
    assert (config["name"], config["prefill"], config["output"], config["keep_sparse"]) == (
        "unet",
        "ipbasic",
        "residual",
        True,
    )
    assert info.store_provenance["sparse"]["pattern"] == "mixed"


def test_the_report_names_the_command_and_describes_the_shipped_files():
    report = json.loads((WEIGHTS / f"{NAME}.json").read_text())
    assert report["command"] == "make depth-model"
    assert "depth-model:" in (ROOT / "Makefile").read_text()
    for kind, suffix in (("checkpoint", ".pt"), ("onnx", ".onnx")):
        entry = report["files"][kind]
        assert entry["file"] == f"{NAME}{suffix}"
        assert entry["sha256"] == sha256_file(WEIGHTS / entry["file"]), f"{entry['file']} is not the one reported"
    params = yaml.safe_load((ROOT / "depthmodel/params.yaml").read_text())
    assert report["params"]["train"]["epochs"] == params["train"]["epochs"]
    assert report["trained_on"]["pattern"] == "mixed"
    for pattern in ("uniform", "keypoints", "lidar"):
        rows = report["validation"][pattern]
        for source in ("mixed_trained", "uniform_trained", "ipbasic"):
            for region in ("all", "object", "boundary", "background"):
                assert rows[source][region]["rmse_mm"] > 0, (pattern, source, region)
    assert set(report["targets"]) == {"uniform_within_5_percent", "lidar_beats_reference"}


def test_predict_without_checkpoint_from_another_folder_uses_the_shipped_model(tmp_path):
    write_frame(tmp_path / "frames", "a", 48, 80)
    result = subprocess.run(
        [sys.executable, "-m", "mtdepth.cli", "predict", "--input", "frames", "--out", "out", "--device", "cpu"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert f"the shipped model {shipped.shipped_model()}" in result.stderr
    assert (tmp_path / "out/a.png").is_file() and (tmp_path / "out/a_preview.png").is_file()


def test_predict_one_pair_without_checkpoint(tmp_path):
    write_frame(tmp_path, "b", 40, 64)
    result = run(
        "predict", "--image", tmp_path / "image/b.png", "--sparse", tmp_path / "sparse/b.png", "--out", tmp_path / "o"
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o/b.png").is_file()


def test_train_refuses_an_unknown_pattern_in_one_line():
    result = run("train", "--pattern", "radar", "--epochs", "1")
    assert result.exit_code == 2
    assert len(errors(result)) == 1 and "--pattern" in errors(result)[0]


def test_evaluate_any_sparse_wants_a_checkpoint_on_a_store(tmp_path):
    result = run("evaluate", "--baseline", "ipbasic", "--any-sparse", "--out", tmp_path / "e")
    assert result.exit_code == 2
    assert errors(result) == [
        "mtdepth: error: --any-sparse: scores a --checkpoint on a store, not a --baseline or an --input folder"
    ]


def _fake_evaluation(folder: Path, rmse: float) -> None:
    groups = {g: {"rmse_mm": rmse, "mae_mm": rmse / 3, "irmse_per_km": 10.0} for g in ("all", "object")}
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"pooled": {"final": groups}}))


def test_model_card_compares_per_pattern_and_judges_the_targets(tmp_path):
    run_folder = tmp_path / "train" / "mixed"
    (run_folder / "live/plots/metrics").mkdir(parents=True)
    (run_folder / "live/plots/metrics/epoch_seconds.tsv").write_text("step\tepoch_seconds\n0\t10.5\n1\t11.0\n")
    checkpoint = make_checkpoint(run_folder / "best.pt", model="unet")
    _, info = model_from_checkpoint(checkpoint)
    evals = tmp_path / "eval"
    for pattern, (ours, reference) in {"uniform": (1040.0, 1000.0), "lidar": (900.0, 1000.0)}.items():
        _fake_evaluation(evals / f"mixed-on-{pattern}", ours)
        _fake_evaluation(evals / f"uniform-on-{pattern}", reference)
        _fake_evaluation(evals / f"ipbasic-on-{pattern}", 2000.0)
    card = model_card("make x", {}, info, {"checkpoint": (checkpoint, "x.pt")}, run_folder, evals, "uniform")
    assert card["command"] == "make x"
    assert card["trained_on"]["epochs"] == 2 and card["trained_on"]["train_seconds"] == 21.5
    assert card["validation"]["lidar"]["ipbasic"]["object"]["rmse_mm"] == 2000.0
    assert card["targets"]["uniform_within_5_percent"]["met"] is True  # 1040 <= 1.05 * 1000
    assert card["targets"]["lidar_beats_reference"]["met"] is True
    _fake_evaluation(evals / "mixed-on-keypoints", 1.0)
    (evals / "mixed-on-uniform/metrics.json").write_text(
        json.dumps({"pooled": {"final": {"all": {"rmse_mm": 1060.0}}}})
    )
    card = model_card("make x", {}, info, {}, run_folder, evals, "uniform")
    assert card["targets"]["uniform_within_5_percent"]["met"] is False
    assert "uniform_trained" not in card["validation"]["keypoints"]


def test_model_card_command_refuses_bad_input_in_one_line(tmp_path):
    common = ["model-card", "--run", tmp_path, "--evals", tmp_path, "--reference", "u", "--command", "c"]
    result = run(*common, "--out", tmp_path / "card.txt")
    assert result.exit_code == 2 and errors(result) == [
        f"mtdepth: error: {tmp_path / 'card.txt'}: --out must end in .json"
    ]
    result = run(*common, "--out", tmp_path / "card.json")
    assert result.exit_code == 2 and len(errors(result)) == 1 and "best.pt" in errors(result)[0]
    assert not (tmp_path / "card.json").exists()


def test_the_cards_params_are_json_with_infinity_as_null():
    from mtdepth.params import Params, to_dict
    from mtdepth.pipeline.files import finite

    params = finite(to_dict(Params()))
    assert params["evaluate"]["calibration_bins"][-1] is None  # the default's last edge is .inf
    json.dumps(params, allow_nan=False)
