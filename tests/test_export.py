"""`mtdepth export`: dynamic-size ONNX checked against torch; `predict` on the .onnx matches the .pt."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from factories import ODD_SIZES, checkpoint_info, errors, make_checkpoint, run, write_frame

from mtdepth.errors import MtDepthError
from mtdepth.pipeline import onnx_export
from mtdepth.pipeline.checkpoint import model_from_checkpoint
from mtdepth.pipeline.models import MTDepth


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    checkpoint = make_checkpoint(folder / "tiny.pt")
    result = run("export", "--checkpoint", checkpoint, "--out", folder / "tiny.onnx")
    assert result.exit_code == 0, result.output
    return checkpoint, folder / "tiny.onnx", result.stdout


def test_export_is_dynamic_and_carries_the_checkpoint_info(exported):
    checkpoint, path, stdout = exported
    assert "onnxruntime vs torch at 32x64, 375x1242, 203x377" in stdout
    graph = onnx.load(str(path))
    for value in graph.graph.input:
        dims = value.type.tensor_type.shape.dim
        assert [d.dim_param for d in dims[:1] + dims[2:]] == ["batch", "height", "width"]
    assert [v.name for v in graph.graph.input] == ["rgb", "sparse", "mask"]
    meta = json.loads({p.key: p.value for p in graph.metadata_props}["mtdepth"])
    _, info = model_from_checkpoint(checkpoint)
    assert meta["info"]["model_config"] == info.model_config and meta["info"]["height"] == 32
    assert meta["check"]["max_abs_diff_m"] <= 1e-3
    assert onnx_export.read_onnx(path) == info


def test_onnx_and_pt_predictions_agree(exported, tmp_path):
    checkpoint, path, _ = exported
    for i, (height, width) in enumerate(ODD_SIZES):
        write_frame(tmp_path / "in", f"f{i}", height, width, seed=i)
    for size in ("trained", "native"):
        outputs = {}
        for model in (checkpoint, path):
            out = tmp_path / f"{model.suffix[1:]}-{size}"
            result = run(
                "predict", "--checkpoint", model, "--input", tmp_path / "in", "--out", out, "--npy", "--no-preview"
            )
            assert result.exit_code == 0, result.output
            outputs[model.suffix] = [np.load(out / f"f{i}.npy") for i in range(len(ODD_SIZES))]
        assert "onnxruntime" in result.stdout
        for torch_depth, ort_depth, shape in zip(outputs[".pt"], outputs[".onnx"], ODD_SIZES):
            assert torch_depth.shape == ort_depth.shape == shape
            assert np.abs(torch_depth - ort_depth).max() <= 1e-3


def test_unet_export_has_no_mask_input(tmp_path):
    checkpoint = make_checkpoint(tmp_path / "unet.pt", model="unet")
    assert run("export", "--checkpoint", checkpoint, "--out", tmp_path / "unet.onnx").exit_code == 0
    assert [v.name for v in onnx.load(str(tmp_path / "unet.onnx")).graph.input] == ["rgb", "sparse"]
    write_frame(tmp_path / "in", "a", 203, 377)
    result = run("predict", "--checkpoint", tmp_path / "unet.onnx", "--input", tmp_path / "in", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output


def test_disagreement_refuses_and_writes_nothing(exported, tmp_path, monkeypatch):
    checkpoint, _, _ = exported
    model, info = model_from_checkpoint(checkpoint)
    out = tmp_path / "m.onnx"
    out.write_bytes(b"earlier")
    monkeypatch.setattr(onnx_export, "max_difference", lambda *args: 0.25)
    with pytest.raises(MtDepthError, match="m.onnx: not written: onnxruntime differs from torch by 0.25 m"):
        onnx_export.export_onnx(model, info, out)
    assert out.read_bytes() == b"earlier" and [p.name for p in tmp_path.iterdir()] == ["m.onnx"]


def test_export_refusals(exported, tmp_path):
    checkpoint, _, _ = exported
    result = run("export", "--checkpoint", checkpoint, "--out", tmp_path / "m.pt")
    assert result.exit_code == 2 and "m.pt: --out must end in .onnx" in errors(result)[0]
    result = run("export", "--checkpoint", tmp_path / "none.pt", "--out", tmp_path / "m.onnx")
    assert result.exit_code == 2 and "none.pt: checkpoint not found" in errors(result)[0]


def _save_identity(path, shape, metadata=None):
    """An ONNX graph rgb -> depth (Identity) with the given input shape and metadata."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["rgb"], ["depth"])],
        "g",
        [helper.make_tensor_value_info("rgb", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("depth", TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(graph)
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))


def test_onnx_not_ours_or_of_another_input_shape(exported, tmp_path):
    _, path, _ = exported
    write_frame(tmp_path / "in", "a", 30, 40)
    _save_identity(tmp_path / "foreign.onnx", ["n", 3, "h", "w"])
    result = run(
        "predict", "--checkpoint", tmp_path / "foreign.onnx", "--input", tmp_path / "in", "--out", tmp_path / "o"
    )
    assert result.exit_code == 2 and "foreign.onnx: not an mtdepth depth-network export" in errors(result)[0]

    ours = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    _save_identity(tmp_path / "fixed.onnx", [1, 3, 32, 64], ours)
    result = run(
        "predict", "--checkpoint", tmp_path / "fixed.onnx", "--input", tmp_path / "in", "--out", tmp_path / "o"
    )
    assert result.exit_code == 2
    assert "fixed.onnx: inputs are rgb (1, 3, 32, 64); an mtdepth export has rgb (?, 3, ?, ?)" in errors(result)[0]
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf at all")
    result = run("predict", "--checkpoint", tmp_path / "junk.onnx", "--input", tmp_path / "in", "--out", tmp_path / "o")
    assert result.exit_code == 2 and "junk.onnx: not a readable ONNX model" in errors(result)[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("query", ["mask_pos", "mask_feat"])
def test_every_attention_query_exports(tmp_path, query):
    model = MTDepth(channels=(4, 8), attention_size=(4, 8), fusion_channels=8, head_channels=4, query=query)
    info = checkpoint_info(model.config, "yolo")
    check = onnx_export.export_onnx(model, info, tmp_path / "m.onnx")
    assert check["max_abs_diff_m"] <= 1e-3 and (tmp_path / "m.onnx").is_file()
