"""The frozen segmenter: weights that cannot serve are refused with one line naming the file."""

import numpy as np
import pytest

from mtdepth.errors import MtDepthError
from mtdepth.pipeline.segmenter import Segmenter, SegmenterConfig, import_ultralytics, segmenter_provenance


@pytest.fixture(scope="module")
def untrained_models(tmp_path_factory):
    """A detection and a segmentation checkpoint built from ultralytics' model definitions."""
    import_ultralytics()
    from ultralytics import YOLO

    folder = tmp_path_factory.mktemp("models")
    YOLO("yolo11n.yaml").save(str(folder / "detect.pt"))
    YOLO("yolo11n-seg.yaml").save(str(folder / "segment.pt"))
    return folder


def _config(path, **kw):
    return SegmenterConfig(weights=str(path), device="cpu", **kw)


def test_missing_weights(tmp_path):
    with pytest.raises(MtDepthError, match="absent.pt: weights file not found"):
        Segmenter(_config(tmp_path / "absent.pt"))


def test_wrong_suffix(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"x")
    with pytest.raises(MtDepthError, match=r"model.bin: weights must be a \.pt or \.onnx"):
        Segmenter(_config(path))


def test_corrupt_pt_and_onnx(tmp_path):
    for name in ("corrupt.pt", "corrupt.onnx"):
        path = tmp_path / name
        path.write_bytes(np.random.default_rng(0).bytes(4096))
        with pytest.raises(MtDepthError, match=f"{name}: not a (loadable ultralytics|readable ONNX) model") as info:
            Segmenter(_config(path))
        assert "\n" not in str(info.value)


def test_detection_model_is_not_a_segmenter(untrained_models):
    with pytest.raises(MtDepthError, match="detect.pt: model task is 'detect', not a segmentation model"):
        Segmenter(_config(untrained_models / "detect.pt"))


def test_unknown_class_is_a_param_error(untrained_models):
    with pytest.raises(MtDepthError, match=r"segmenter.classes: \[999\]"):
        Segmenter(_config(untrained_models / "segment.pt", classes=(999,)))


def test_untrained_segmenter_streams_one_map_per_frame(untrained_models):
    segmenter = Segmenter(_config(untrained_models / "segment.pt", imgsz=128, batch=2))
    frames = [np.full((64, 128, 3), v, dtype=np.uint8) for v in (0, 90, 180)]
    maps = list(segmenter.predict(iter(frames)))
    assert len(maps) == 3 and all(m.shape == (64, 128) and m.dtype == np.uint8 for m in maps)


def test_provenance_names_the_weights_without_loading(untrained_models):
    provenance = segmenter_provenance(_config(untrained_models / "segment.pt", imgsz=384))
    assert provenance["weights_name"] == "segment.pt" and len(provenance["weights_sha256"]) == 64
    assert provenance["imgsz"] == 384
