"""The project's real dvc.yaml, run with `dvc repro` in a temporary git repo on a tiny profile
(8 synthetic frames at 64x128, one epoch): every stage's outputs, `dvc metrics`/`plots`/`exp`,
the no-op rerun with a clean `git status`, the partial reruns after a keep_prob or segmenter
change, and a store shared through a DVC remote."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mtdepth.pipeline.segmenter import import_ultralytics

pytestmark = pytest.mark.slow  # minutes: end to end through YOLO, training or dvc repro

REPO = Path(__file__).resolve().parents[1]
VARIANTS = ("unet", "mtdepth-yolo", "mtdepth-gt", "mtdepth-none")  # dvc.yaml
QUERY_VARIANTS = ("mtdepth-yolo-mask_pos", "mtdepth-yolo-mask_feat")  # ablation/dvc.yaml
ROWS = ("nearest", "ipbasic", "unet", "mtdepth-yolo", "mtdepth-gt", "mtdepth-none")  # report: Table 3's comparison
ABLATION = ("unet", "mtdepth-yolo", "mtdepth-yolo-mask_pos", "mtdepth-yolo-mask_feat")
COPIED = ("dvc.yaml", ".gitignore", "mtdepth", "pipeline", "cache", "stages", "segmenter", "ablation")


def run(workdir: Path, *args: str) -> str:
    """A command of the venv (dvc, git) in `workdir`; its stdout, or the test fails showing both streams."""
    exe = shutil.which(args[0], path=str(Path(sys.executable).parent)) or args[0]
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run([exe, *args[1:]], cwd=workdir, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def tiny_params() -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["synth"].update(scenes=["Scene01"], conditions=["clone", "fog"], frames=4, image_width=310, image_height=94)
    params["data"].update(height=64, width=128)
    params["segmenter"].update(weights="weights/seg.pt", imgsz=64, device="cpu")
    params["train"].update(epochs=1, workers=0, compile="off")
    params["evaluate"].update(workers=0, panel_frames=[0], panel_dpi=40)
    return params


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A git repo holding the project's DAG, after its first `dvc repro` (and that repro's output)."""
    root = tmp_path_factory.mktemp("project")
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, root / name)
    import_ultralytics()
    from ultralytics import YOLO

    (root / "weights").mkdir()
    YOLO("yolo11n-seg.yaml").save(str(root / "weights" / "seg.pt"))
    (root / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    run(root, "git", "init", "-q")
    run(root, "git", "config", "user.name", "mtdepth test")  # dvc exp commits too: no global identity needed
    run(root, "git", "config", "user.email", "test@mtdepth.invalid")
    run(root, "dvc", "init", "-q")
    run(root, "git", "add", "-A")
    run(root, "git", "commit", "-qm", "project")
    first = run(root, "dvc", "repro")
    run(root, "git", "add", "dvc.lock")
    run(root, "git", "commit", "-qm", "first run")
    return root, first


def test_first_repro_runs_every_stage_but_the_segmenter_refit(project):
    root, first = project
    stages = [
        "synth",
        "segment",
        *(f"train@{v}" for v in VARIANTS),
        *(f"evaluate@{v}" for v in VARIANTS),
        "baseline@nearest",
        "baseline@ipbasic",
        "report",
        "export",
    ]
    for stage in stages:
        assert f"Running stage '{stage}'" in first
    assert "fit_segmenter" not in first and "fit-segmenter" not in first
    assert "ablation" not in first  # the query ablation is a pipeline of its own
    assert "YOLO on 8 frames" in first
    report = json.loads((root / "runs" / "report" / "report.json").read_text())
    assert list(report) == list(ROWS)
    for name in VARIANTS:
        assert report[name]["epochs"] == 1 and report[name]["all/rmse_mm"] > 0
    table = (root / "runs" / "report" / "report.md").read_text()
    assert all(f"| {name} |" in table for name in ROWS)
    assert "| mtdepth-yolo |" in first  # the table is printed by the run
    assert (root / "runs" / "report" / "curves.png").stat().st_size > 0
    assert (root / "runs" / "report" / "sparsification.png").stat().st_size > 0
    assert "Ranking by uncertainty" in table and all(
        (root / "runs" / "eval" / n / "sparsification.json").is_file() for n in ROWS
    )
    assert len(list((root / "runs" / "report" / "panels").glob("row*.png"))) == 1  # evaluate.panel_frames: [0]
    assert (root / "runs" / "mtdepth-yolo.onnx").stat().st_size > 0
    assert not (root / "runs" / "segmenter").exists()


def test_the_query_ablation_reuses_the_comparisons_runs(project):
    root, _ = project
    out = run(root, "dvc", "repro", "ablation/dvc.yaml")
    for name in QUERY_VARIANTS:
        assert f"Running stage 'ablation/dvc.yaml:train@{name}'" in out
        assert f"Running stage 'ablation/dvc.yaml:evaluate@{name}'" in out
    assert "Running stage 'ablation/dvc.yaml:ablation'" in out
    assert "Running stage 'train@unet'" not in out and "Running stage 'segment'" not in out
    ablation = json.loads((root / "runs" / "ablation" / "report.json").read_text())
    assert list(ablation) == list(ABLATION)
    assert all(ablation[name]["epochs"] == 1 and ablation[name]["all/rmse_mm"] > 0 for name in QUERY_VARIANTS)
    run(root, "git", "add", "ablation/dvc.lock")
    run(root, "git", "commit", "-qm", "ablation run")


def test_metrics_and_plots_show_the_run(project):
    root, _ = project
    shown = run(root, "dvc", "metrics", "show", "--json")
    assert '"mtdepth-yolo"' in shown and "rmse_mm" in shown
    plots = run(root, "dvc", "plots", "show", "--json")
    for title in (
        "Validation RMSE of D_final (mm) per epoch",
        "Training loss per epoch",
        "RMSE (mm) per model and region",
        "Per-frame RMSE of D_final (mm) on the validation split",
        "Sparsification of D_final - RMSE (mm) of the pixels left vs fraction removed (learned confidence else distance)",
        "Sparsification by distance to the nearest sparse sample - RMSE (mm) left vs fraction removed",
    ):
        assert title in plots


def test_second_repro_does_nothing_and_leaves_git_clean(project):
    root, _ = project
    again = run(root, "dvc", "repro")
    assert "Running stage" not in again
    assert run(root, "git", "status", "--porcelain") == ""


def test_a_store_pushed_to_a_dvc_remote_trains_in_a_second_clone_without_stage_one(project, tmp_path):
    root, _ = project
    run(root, "dvc", "remote", "add", "-d", "team", str(tmp_path / "remote"))
    run(root, "git", "commit", "-qam", "team remote")
    assert "pushed" in run(root, "dvc", "push", "segment")
    clone = tmp_path / "clone"
    run(tmp_path, "git", "clone", "-q", str(root), str(clone))
    assert "A       data/store.zarr" in run(clone, "dvc", "pull", "segment")
    info = [run(repo, "mtdepth", "cache", "info", "data/store.zarr") for repo in (root, clone)]
    assert info[0] == info[1] and "keep_prob = 0.05" in info[1]
    trained = run(clone, "mtdepth", "train", "--model", "mtdepth", "--out", "runs/shared")
    assert "train: mtdepth (mask yolo) on" in trained and "epoch 1/1:" in trained
    status = run(clone, "dvc", "status", "segment")  # the clone has no frames (deps), but the store is dvc.lock's
    assert "deleted:            data/synth" in status and "changed outs" not in status
    single = run(clone, "dvc", "repro", "--single-item", "train@unet")
    assert "Running stage 'train@unet'" in single and "segment" not in single


def test_keep_prob_reruns_sparse_sampling_and_training_never_yolo(project):
    root, _ = project
    params = tiny_params()
    params["sparse"]["keep_prob"] = 0.1
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    second = run(root, "dvc", "repro")
    assert "Running stage 'synth'" not in second and "Running stage 'segment'" in second
    assert "wrote sparse;" in second and "YOLO on 0 frames" in second
    assert "Running stage 'train@unet'" in second and "Running stage 'report'" in second
    diff = run(root, "dvc", "metrics", "diff", "--json")
    assert "mtdepth-yolo" in diff
    run(root, "git", "checkout", "params.yaml", "dvc.lock")  # the committed params for the next test


def test_a_new_segmenter_setting_retrains_only_the_variants_that_read_yolo_masks(project):
    root, _ = project
    params = tiny_params()
    params["segmenter"]["conf"] = 0.5
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    segmented = run(root, "dvc", "repro", "segment")  # keep_prob back at 0.05 too, as dvc.lock has it
    assert "YOLO on 8 frames" in segmented
    trains = [*(f"train@{v}" for v in VARIANTS), *(f"ablation/dvc.yaml:train@{v}" for v in QUERY_VARIANTS)]
    status = run(root, "dvc", "status", "--json", *trains)
    changed_deps = {
        stage.split("train@")[1]
        for stage, changes in json.loads(status).items()
        if any("changed deps" in change for change in changes if isinstance(change, dict))
    }
    assert changed_deps == {"mtdepth-yolo", "mtdepth-yolo-mask_pos", "mtdepth-yolo-mask_feat"}, status
    run(root, "git", "checkout", "params.yaml", "dvc.lock")


def test_exp_run_with_a_new_learning_rate(project):
    root, _ = project
    out = run(root, "dvc", "exp", "run", "-S", "train.lr=0.002", "evaluate@unet")
    assert "Running stage 'train@unet'" in out and "Running stage 'train@mtdepth-yolo'" not in out
    shown = run(root, "dvc", "exp", "show", "--json")
    assert "0.002" in shown
