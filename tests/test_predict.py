"""`mtdepth predict` end to end on tiny untrained nets: layouts, odd sizes, options, failures, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from factories import ODD_SIZES, checkpoint_info, errors, make_checkpoint, run, write_frame
from mtdepth.pipeline import kitti_io
from mtdepth.pipeline.inference import DepthNet, Frame, complete

K_LINE = "721.5377 0 609.5593 0 721.5377 172.854 0 0 1\n"


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint):
    return tiny_checkpoint


@pytest.fixture(scope="module")
def odd_folder(tmp_path_factory):
    """KITTI's velodyne_raw layout with intrinsics, three frames of sizes unlike the training size."""
    root = tmp_path_factory.mktemp("kitti")
    sparse = {}
    for i, (height, width) in enumerate(ODD_SIZES):
        name = f"frame{i}"
        sparse[name] = write_frame(root, name, height, width, "velodyne_raw", seed=i)
        (root / "intrinsics").mkdir(exist_ok=True)
        (root / "intrinsics" / f"{name}.txt").write_text(K_LINE)
    return root, sparse


def predict_folder(checkpoint, root, *extra):
    """`mtdepth predict` of `checkpoint` from root/in to root/out, with `extra` options."""
    return run("predict", "--checkpoint", checkpoint, "--input", root / "in", "--out", root / "out", *extra)


@pytest.mark.parametrize("size", ["trained", "native"])
def test_odd_sizes_give_dense_outputs_of_each_input_size(tiny, odd_folder, tmp_path, size):
    root, sparse = odd_folder
    out = tmp_path / "out"
    result = run(
        "predict",
        "--checkpoint",
        tiny,
        "--input",
        root,
        "--out",
        out,
        "--size",
        size,
        "--npy",
        "--ply",
        "--keep-sparse",
    )
    assert result.exit_code == 0, result.output
    for name, measured in sparse.items():
        dense = kitti_io.read_depth_png(out / f"{name}.png")
        assert dense.shape == measured.shape and (dense > 0).all()
        assert np.abs(np.load(out / f"{name}.npy") - dense).max() <= 1 / 512 + 1e-5
        has = measured > 0
        assert np.abs(dense[has] - measured[has]).max() <= 1 / 512 + 1e-5  # --keep-sparse
        with Image.open(out / f"{name}_preview.png") as preview:
            assert preview.width == measured.shape[1]
        assert f"element vertex {measured.size}".encode() in (out / f"{name}.ply").read_bytes()[:400]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_single_pair_npy_without_keep_sparse(tiny, tmp_path):
    measured = write_frame(tmp_path / "in", "pair", 203, 377, suffix=".npy")
    out = tmp_path / "out"
    result = run(
        "predict",
        "--checkpoint",
        tiny,
        "--image",
        tmp_path / "in/image/pair.png",
        "--sparse",
        tmp_path / "in/sparse/pair.npy",
        "--out",
        out,
        "--no-preview",
        "--ply",
        "--fx",
        300,
        "--fy",
        300,
        "--cx",
        188,
        "--cy",
        101,
    )
    assert result.exit_code == 0, result.output
    dense = kitti_io.read_depth_png(out / "pair.png")
    assert dense.shape == (203, 377)
    assert np.abs(dense - measured)[measured > 0].max() > 1.0  # the net's output, not the samples
    assert sorted(p.name for p in out.iterdir()) == ["pair.ply", "pair.png"]


def test_unet_checkpoint(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "unet.pt", model="unet", mask_source="none")
    write_frame(tmp_path / "in", "a", 50, 70)
    result = predict_folder(checkpoint, tmp_path)
    assert result.exit_code == 0, result.output
    assert kitti_io.read_depth_png(tmp_path / "out/a.png").shape == (50, 70)


class Recorder:
    """A stand-in net: records its inputs and returns 100 m everywhere."""

    def __init__(self):
        self.inputs = []

    def __call__(self, inputs):
        self.inputs.append(inputs)
        return np.full(inputs["sparse"].shape, 100.0, np.float32)


def _info():
    return checkpoint_info({"name": "mtdepth"}, size=(8, 16))


def test_far_samples_are_dropped_from_the_input_and_output_is_clipped():
    recorder = Recorder()
    sparse = np.zeros((30, 40), np.float32)
    sparse[::4, ::4] = 120.0
    sparse[1, 1] = 10.0
    frame = Frame("f", np.zeros((30, 40, 3), np.uint8), sparse)
    [(dense, dropped)] = complete(DepthNet(_info(), recorder, "fake"), [frame], "trained")
    assert dropped == int((sparse > 80).sum())
    assert recorder.inputs[0]["sparse"].shape == (1, 1, 8, 16) and recorder.inputs[0]["sparse"].max() <= 80
    assert dense.shape == (30, 40) and dense.max() == 80.0
    [(kept, _)] = complete(DepthNet(_info(), recorder, "fake"), [frame], "native", keep_sparse=True)
    assert kept[0, 0] == 120.0 and kept[1, 1] == 10.0 and kept[2, 2] == 80.0  # measured samples written back


def test_frames_batch_by_net_size():
    recorder = Recorder()
    frames = [
        Frame(str(i), np.zeros((h, w, 3), np.uint8), np.zeros((h, w), np.float32))
        for i, (h, w) in enumerate([(10, 20), (12, 20), (10, 20)])
    ]
    out = complete(
        DepthNet(_info(), recorder, "fake"),
        frames,
        "native",
        masks=lambda images: [np.ones(i.shape[:2], np.uint8) for i in images],
    )
    assert sorted(i["rgb"].shape[0] for i in recorder.inputs) == [1, 2]
    assert all(i["mask"].min() == 1.0 for i in recorder.inputs)
    assert [d.shape for d, _ in out] == [(10, 20), (12, 20), (10, 20)]
    big = [Frame(str(i), np.zeros((600, 1000, 3), np.uint8), np.zeros((600, 1000), np.float32)) for i in range(3)]
    complete(DepthNet(_info(), recorder, "fake"), big, "native")
    assert [i["rgb"].shape[0] for i in recorder.inputs[2:]] == [1, 1, 1]  # 600 x 1000 x 2 > NET_PIXELS


def test_far_sample_warning_names_the_frame(tiny, tmp_path):
    (tmp_path / "in/image").mkdir(parents=True)
    (tmp_path / "in/sparse").mkdir()
    Image.new("RGB", (40, 30)).save(tmp_path / "in/image/far.png")
    kitti_io.write_depth_png(tmp_path / "in/sparse/far.png", np.full((30, 40), 90.0))
    result = predict_folder(tiny, tmp_path, "--no-preview")
    assert result.exit_code == 0
    assert "far: 1200 sparse samples beyond max_depth 80 m" in result.stderr


def test_corrupt_file_in_a_folder_fails_alone(tiny, tmp_path):
    root = tmp_path / "in"
    for i, name in enumerate(["a", "b", "c", "d"]):
        write_frame(root, name, 40, 60, seed=i)
    (root / "sparse/b.png").write_bytes((root / "sparse/b.png").read_bytes()[:60])  # truncated
    Image.new("L", (60, 40)).save(root / "sparse/d.png")  # 8-bit
    out = tmp_path / "out"
    result = run("predict", "--checkpoint", tiny, "--input", root, "--out", out, "--batch", 2)
    assert result.exit_code == 2
    lines = errors(result)
    assert any("sparse/b.png: unreadable" in line for line in lines)
    assert any("sparse/d.png: sparse depth PNG must be 16-bit" in line for line in lines)
    assert lines[-1] == "mtdepth: error: 2 of 4 frames failed: b, d"
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "a_preview.png", "c.png", "c_preview.png"]


@pytest.fixture()
def sentinel(tmp_path):
    """An output folder holding an earlier a.png that a refused run must leave as it was."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"earlier")
    return out


def _refused(result, sentinel, *names):
    assert result.exit_code == 2, result.output
    [line] = errors(result)
    assert all(name in line for name in names), line
    assert "Traceback" not in result.output
    assert [p.name for p in sentinel.iterdir()] == ["a.png"] and (sentinel / "a.png").read_bytes() == b"earlier"
    return line


@pytest.mark.parametrize("case", ["8-bit", "rgb", "size"])
def test_bad_sparse_of_a_pair(tiny, tmp_path, sentinel, case):
    write_frame(tmp_path / "in", "a", 30, 40)
    bad = tmp_path / "in/sparse/a.png"
    if case == "size":
        kitti_io.write_depth_png(bad, np.ones((31, 40)))
    else:
        Image.new("L" if case == "8-bit" else "RGB", (40, 30)).save(bad)
    result = run(
        "predict", "--checkpoint", tiny, "--image", tmp_path / "in/image/a.png", "--sparse", bad, "--out", sentinel
    )
    line = _refused(result, sentinel, "sparse/a.png")
    assert ("differs from the image's 40x30" if case == "size" else "must be 16-bit grayscale") in line


def test_name_without_partner(tiny, tmp_path, sentinel):
    write_frame(tmp_path / "in", "a", 30, 40)
    Image.new("RGB", (40, 30)).save(tmp_path / "in/image/lonely.png")
    result = run("predict", "--checkpoint", tiny, "--input", tmp_path / "in", "--out", sentinel)
    _refused(result, sentinel, "image/lonely.png", "no sparse depth")


def test_empty_or_missing_folder(tiny, tmp_path, sentinel):
    (tmp_path / "in/image").mkdir(parents=True)
    (tmp_path / "in/velodyne_raw").mkdir()
    _refused(
        run("predict", "--checkpoint", tiny, "--input", tmp_path / "in", "--out", sentinel),
        sentinel,
        "no images in image/",
    )
    _refused(
        run("predict", "--checkpoint", tiny, "--input", tmp_path / "nowhere", "--out", sentinel),
        sentinel,
        "nowhere: input folder not found",
    )


def test_checkpoint_of_another_kind(tmp_path, sentinel):
    write_frame(tmp_path / "in", "a", 30, 40)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, other)
    _refused(
        run("predict", "--checkpoint", other, "--input", tmp_path / "in", "--out", sentinel),
        sentinel,
        "other.pt: not an mtdepth checkpoint",
    )
    (tmp_path / "cut.pt").write_bytes(b"PK\x03\x04 truncated")
    _refused(
        run("predict", "--checkpoint", tmp_path / "cut.pt", "--input", tmp_path / "in", "--out", sentinel),
        sentinel,
        "cut.pt: not a readable checkpoint",
    )


def test_option_errors(tiny, tmp_path, sentinel):
    write_frame(tmp_path / "in", "a", 30, 40)
    _refused(run("predict", "--checkpoint", tiny, "--out", sentinel), sentinel, "--input")
    _refused(
        run("predict", "--checkpoint", tiny, "--input", tmp_path / "in", "--out", sentinel, "--ply"),
        sentinel,
        "image/a.png: --ply needs intrinsics/a.txt",
    )
    _refused(
        run("predict", "--checkpoint", tiny, "--input", tmp_path / "in", "--out", sentinel, "--ply", "--fx", 1),
        sentinel,
        "--fx --fy --cx --cy: give all four",
    )


def test_masks_from_the_checkpoints_segmenter(tiny_yolo, tmp_path):
    segmenter = {"weights": str(tiny_yolo), "imgsz": 64, "conf": 0.25, "iou": 0.7, "classes": []}
    trained_with = {"mask/yolo": {"segmenter": {"weights_sha256": "0" * 64}}}
    checkpoint = make_checkpoint(tmp_path / "yolo.pt", mask_source="yolo", segmenter=segmenter, provenance=trained_with)
    write_frame(tmp_path / "in", "a", 203, 377)
    result = predict_folder(checkpoint, tmp_path, "--no-preview", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "masks yolo" in result.stdout
    assert "seg.pt: not the segmenter the model was trained with" in result.stderr
    assert kitti_io.read_depth_png(tmp_path / "out/a.png").shape == (203, 377)
    missing = predict_folder(checkpoint, tmp_path, "--weights", tmp_path / "none.pt")
    assert missing.exit_code == 2 and "none.pt: weights file not found" in missing.stderr


def test_gt_mask_checkpoint_needs_weights_or_none(tiny_yolo, tmp_path):
    checkpoint = make_checkpoint(tmp_path / "gt.pt", mask_source="gt")
    write_frame(tmp_path / "in", "a", 30, 40)
    refused = predict_folder(checkpoint, tmp_path)
    assert refused.exit_code == 2 and "--weights: the checkpoint was trained with 'gt' masks" in refused.stderr
    for extra in (["--mask-source", "none"], ["--weights", tiny_yolo, "--device", "cpu"]):
        result = predict_folder(checkpoint, tmp_path, "--no-preview", *extra)
        assert result.exit_code == 0, result.output


def test_a_checkpoint_finds_the_shipped_segmenter_from_any_folder(tmp_path):
    """The relative `weights/yolo11n-seg-synth.pt` a checkpoint records resolves to the shipped file, not the cwd."""
    import subprocess
    import sys

    segmenter = {"weights": "weights/yolo11n-seg-synth.pt", "imgsz": 64, "conf": 0.25, "iou": 0.7, "classes": []}
    checkpoint = make_checkpoint(tmp_path / "yolo.pt", mask_source="yolo", segmenter=segmenter)
    write_frame(tmp_path / "in", "a", 40, 70)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mtdepth.cli",
            "predict",
            "--checkpoint",
            str(checkpoint),
            "--input",
            str(tmp_path / "in"),
            "--out",
            "out",
            "--no-preview",
            "--device",
            "cpu",
        ],
        cwd=elsewhere,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "masks yolo" in done.stdout and kitti_io.read_depth_png(elsewhere / "out" / "a.png").shape == (40, 70)
    segmenter["weights"] = "weights/none.pt"  # a relative name shipped nowhere is still one clear line
    missing = make_checkpoint(tmp_path / "missing.pt", mask_source="yolo", segmenter=segmenter)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mtdepth.cli",
            "predict",
            "--checkpoint",
            str(missing),
            "--input",
            str(tmp_path / "in"),
            "--out",
            "out",
        ],
        cwd=elsewhere,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and done.stderr.strip().endswith(
        "weights/none.pt: weights file not found (segmenter.weights / --weights)"
    )
