"""The shipped default segmenter on fresh synthetic frames: quality, letterbox alignment, .pt == .onnx."""

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mtdepth.cli import cli
from mtdepth.pipeline.masks import foreground, foreground_iou
from mtdepth.pipeline.segmenter import Segmenter, SegmenterConfig
from mtdepth.pipeline.vkitti2 import index_frames, load_frame

pytestmark = pytest.mark.slow  # minutes: end to end through YOLO, training or dvc repro

WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "yolo11n-seg-synth.pt"
IMGSZ = 384  # the shipped model's fitting size; 256x512 frames are scaled by 0.75
GREY = 114  # ultralytics' own letterbox fill


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """256x512 RGB and GT foreground of synthetic frames from a seed the segmenter never saw."""
    root = tmp_path_factory.mktemp("unseen")
    result = CliRunner().invoke(
        cli,
        [
            "synth",
            "--out",
            str(root / "d"),
            "--seed",
            "303",
            "--scenes",
            "Scene06,Scene18",
            "--conditions",
            "clone,rain",
            "--frames",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    decoded = [load_frame(r, 256, 512, 80.0) for r in index_frames(root / "d")]
    return [(f.rgb, foreground(f.instances)) for f in decoded]


def segmenter(weights: Path = WEIGHTS, imgsz: int = IMGSZ) -> Segmenter:
    return Segmenter(SegmenterConfig(weights=str(weights), imgsz=imgsz, batch=4, device="cpu"))


def dataset_iou(pairs) -> float:
    counts = np.array([foreground_iou(p, t) for p, t in pairs])
    return counts[:, 0].sum() / counts[:, 1].sum()


def test_shipped_segmenter_finds_the_objects_of_unseen_streets(frames):
    predicted = list(segmenter().predict(rgb for rgb, _ in frames))
    assert dataset_iou(zip(predicted, (gt for _, gt in frames))) >= 0.6


@pytest.mark.parametrize(
    "canvas, offset, imgsz",
    [
        ((512, 512), (128, 0), 384),  # tall: letterboxed with bands above and below
        ((256, 1024), (0, 256), 768),  # wide: bands left and right
    ],
)
def test_masks_land_where_the_objects_are_after_letterboxing(frames, canvas, offset, imgsz):
    """A frame pasted into a taller or wider canvas, seen at the same scale (0.75), gets the
    masks it gets alone, moved by exactly the paste offset, and they sit on the GT objects."""
    alone = list(segmenter().predict(rgb for rgb, _ in frames))
    (top, left), pasted = offset, []
    for rgb, _ in frames:
        image = np.full((*canvas, 3), GREY, dtype=np.uint8)
        image[top : top + 256, left : left + 512] = rgb
        pasted.append(image)
    crops = []
    for merged in segmenter(imgsz=imgsz).predict(iter(pasted)):
        assert merged.shape == canvas
        crops.append(merged[top : top + 256, left : left + 512])
    truths = [gt for _, gt in frames]
    assert dataset_iou(zip(crops, alone)) >= 0.8
    assert dataset_iou(zip(crops, truths)) >= 0.6
    shifted = [np.roll(c, 12, axis=(0, 1)) for c in crops]  # a misplaced mask scores clearly worse
    assert dataset_iou(zip(shifted, truths)) < dataset_iou(zip(crops, truths)) - 0.1


def test_pt_and_onnx_give_the_same_masks(frames):
    rgb = [f for f, _ in frames]
    from_pt = list(segmenter().predict(iter(rgb)))
    from_onnx = list(segmenter(WEIGHTS.with_suffix(".onnx")).predict(iter(rgb)))
    disagree = sum(int((a != b).sum()) for a, b in zip(from_pt, from_onnx))
    assert disagree <= 0.002 * len(rgb) * 256 * 512
    assert dataset_iou(zip(from_onnx, from_pt)) >= 0.97
