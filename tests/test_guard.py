"""The do-no-harm guard: held-out samples, and the per-frame choice between the net and its fill."""

import json
import math

import numpy as np
import pytest
from PIL import Image

from factories import checkpoint_info, make_checkpoint, run
from mtdepth.pipeline import kitti_io
from mtdepth.pipeline.guard import Guard, holdout, judge


def frame(seed=0, shape=(40, 60)):
    rng = np.random.default_rng(seed)
    depth = rng.uniform(2.0, 40.0, shape).astype(np.float32)
    sparse = np.where(rng.random(shape) < 0.2, depth, 0).astype(np.float32)
    return depth, sparse


def test_holdout_takes_a_seeded_fraction_of_the_samples_only():
    _, sparse = frame()
    held = holdout(sparse, Guard(holdout=0.25), key="a")
    assert held.dtype == bool and not (held & (sparse == 0)).any()
    assert 0.18 < held.sum() / (sparse > 0).sum() < 0.32
    assert np.array_equal(held, holdout(sparse, Guard(holdout=0.25), key="a"))
    assert not np.array_equal(held, holdout(sparse, Guard(holdout=0.25), key="b"))


def test_a_net_better_than_its_fill_is_kept_and_a_worse_one_is_not():
    depth, sparse = frame()
    held = holdout(sparse, Guard(), key="f")
    fill = depth * 1.10  # 10% off everywhere
    verdict = judge(sparse, held, depth * 1.02, fill, Guard())
    assert verdict.keep_net and verdict.choice == "net" and verdict.net_mae < verdict.fill_mae
    verdict = judge(sparse, held, depth * 1.30, fill, Guard())
    assert not verdict.keep_net and verdict.choice == "fill"
    assert verdict.held == held.sum()


def test_the_margin_tolerates_a_net_slightly_worse_than_the_fill():
    depth, sparse = frame()
    held = holdout(sparse, Guard(), key="f")
    fill, net = depth * 1.10, depth * 1.105  # the net's error is 1.05x the fill's
    assert judge(sparse, held, net, fill, Guard(margin=1.1)).keep_net
    assert not judge(sparse, held, net, fill, Guard(margin=1.0)).keep_net


def test_too_few_held_out_samples_keep_the_net():
    depth, sparse = frame()
    held = np.zeros_like(sparse, dtype=bool)
    held[np.nonzero(sparse)[0][:5], np.nonzero(sparse)[1][:5]] = True
    verdict = judge(sparse, held, depth * 3, depth, Guard(min_held=20))
    assert verdict.keep_net and verdict.held == 5 and math.isnan(verdict.net_mae)


# --- complete_guarded, predict --guard, evaluate --input: a stand-in net far from the truth falls back.


def constant_net(metres: float, prefill: str = "ipbasic"):
    """A stand-in DepthNet that predicts `metres` everywhere (a net that learned nothing of this frame)."""
    from mtdepth.pipeline.inference import DepthNet

    info = checkpoint_info({"name": "unet", "prefill": prefill}, size=(8, 16))
    return DepthNet(info, lambda inputs: np.full(inputs["sparse"].shape, metres, np.float32), "torch")


def plane(name="a", shape=(60, 90), metres=5.0):
    """A frame of a wall `metres` away, 5% of its pixels sampled."""
    from mtdepth.pipeline.inference import Frame

    rng = np.random.default_rng(1)
    sparse = np.where(rng.random(shape) < 0.05, np.float32(metres), np.float32(0))
    return Frame(name, rng.integers(0, 256, (*shape, 3), dtype=np.uint8), sparse)


def test_a_frame_the_net_gets_wrong_falls_back_to_the_fill():
    from mtdepth.pipeline.inference import complete_guarded
    from mtdepth.pipeline.prefill import prefill_frame

    frame = plane()
    ((dense, error, dropped, verdict),) = complete_guarded(constant_net(20.0), [frame], Guard())
    assert not verdict.keep_net and verdict.net_mae == pytest.approx(15.0) and verdict.fill_mae < 0.5
    assert np.allclose(dense, np.clip(prefill_frame("ipbasic", frame.sparse), 1 / 256, 80.0))
    assert error is None and dropped == 0


def test_a_net_as_good_as_its_fill_is_kept():
    from mtdepth.pipeline.inference import complete_guarded

    ((dense, _, _, verdict),) = complete_guarded(constant_net(5.0), [plane()], Guard())
    assert verdict.keep_net and np.allclose(dense, 5.0)


def test_a_confidence_net_that_falls_back_reports_the_fills_measured_error():
    from mtdepth.pipeline.inference import DepthNet, complete_guarded

    info = constant_net(20.0).info
    net = DepthNet(
        info,
        lambda inputs: np.concatenate([np.full(inputs["sparse"].shape, v, np.float32) for v in (20.0, 0.5)], axis=1),
        "torch",
    )
    ((_, error, _, verdict),) = complete_guarded(net, [plane()], Guard())
    assert not verdict.keep_net and np.allclose(error, max(verdict.fill_mae, 0.01))


def write_plane(root, name="wall", truth=True):
    frame = plane(name)
    (root / "image").mkdir(parents=True, exist_ok=True)
    (root / "sparse").mkdir(exist_ok=True)
    Image.fromarray(frame.rgb).save(root / "image" / f"{name}.png")
    kitti_io.write_depth_png(root / "sparse" / f"{name}.png", frame.sparse)
    if truth:
        (root / "groundtruth").mkdir(exist_ok=True)
        kitti_io.write_depth_png(root / "groundtruth" / f"{name}.png", np.full(frame.sparse.shape, 5.0, np.float32))


def test_predict_guards_by_default_and_says_so(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "tiny.pt")  # an untrained absolute net: about 20 m everywhere
    write_plane(tmp_path / "in")
    guarded = run("predict", "--checkpoint", checkpoint, "--input", tmp_path / "in", "--out", tmp_path / "g")
    assert guarded.exit_code == 0, guarded.output
    assert "guard: the fill on 1 of 1" in guarded.output and "wall: the fill, not the net" in guarded.output
    plain = run(
        "predict", "--checkpoint", checkpoint, "--input", tmp_path / "in", "--out", tmp_path / "p", "--no-guard"
    )
    assert plain.exit_code == 0 and "guard:" not in plain.output
    wall = kitti_io.read_depth_png(tmp_path / "g" / "wall.png")
    assert np.abs(wall - 5.0).mean() < 0.5 < np.abs(kitti_io.read_depth_png(tmp_path / "p" / "wall.png") - 5.0).mean()


def test_evaluate_input_records_each_frames_verdict(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    checkpoint = make_checkpoint(tmp_path / "tiny.pt")
    write_plane(tmp_path / "kitti")
    result = run("evaluate", "--input", tmp_path / "kitti", "--checkpoint", checkpoint, "--out", tmp_path / "ev")
    assert result.exit_code == 0, result.output
    assert "guard: the fill on 1 of 1 frames (wall)" in result.output
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["guard"]["wall"]["choice"] == "fill" and metrics["guard"]["wall"]["held"] > 0
    assert metrics["pooled"]["final"]["all"]["mae_mm"] < 500


def test_the_guard_runs_the_segmenter_once_for_both_passes():
    from mtdepth.pipeline.inference import DepthNet, complete_guarded

    calls = []

    def masks(images):
        calls.append(len(images))
        return [np.zeros(image.shape[:2], np.uint8) for image in images]

    info = checkpoint_info({"name": "mtdepth", "prefill": "ipbasic"}, size=(8, 16))
    net = DepthNet(info, lambda inputs: np.full(inputs["sparse"].shape, 5.0, np.float32), "torch")
    assert net.uses_mask
    complete_guarded(net, [plane("a"), plane("b")], Guard(), masks=masks)
    assert calls == [2]
