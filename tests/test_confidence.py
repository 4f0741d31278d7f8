"""model.confidence: the log-scale output, its Laplace NLL, `predict`'s confidence files and --max-error,
the ONNX export's expected_error output (docs/confidence.md)."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
import torch
import yaml
from factories import TINY_NET, TRAINED_SIZE, errors, run, write_frame
from PIL import Image

from mtdepth.errors import MtDepthError
from mtdepth.params import params_from_dict
from mtdepth.pipeline import kitti_io
from mtdepth.pipeline.checkpoint import CheckpointInfo, checkpoint_state, model_from_checkpoint, save_checkpoint
from mtdepth.pipeline.losses import MultiTaskLoss, laplace_nll
from mtdepth.pipeline.models import MTDepth, UNetBaseline, build_model, new_model
from mtdepth.pipeline.models.head import INIT_RELATIVE_ERROR
from mtdepth.pipeline.models.mtdepth import MIN_EXPECTED_ERROR_M

LOW, HIGH = math.log(MIN_EXPECTED_ERROR_M), math.log(80.0)
B, H, W = 2, 24, 40


def _nets(**kwargs):
    torch.manual_seed(0)
    return [UNetBaseline(channels=(4, 8), **kwargs), MTDepth(**TINY_NET, **kwargs)]


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    rgb = torch.rand(B, 3, H, W, generator=g)
    sparse = (torch.rand(B, 1, H, W, generator=g) < 0.1) * torch.rand(B, 1, H, W, generator=g) * 70 + 0.0
    mask = (torch.rand(B, 1, H, W, generator=g) < 0.3).float()
    fill = torch.rand(B, 1, H, W, generator=g) * 60 + 1
    return rgb, sparse, (sparse > 0).float(), mask, fill


def _log_scale_conv(net):
    return net.log_scale_out if isinstance(net, UNetBaseline) else net.head.log_scale_out


def test_params_read_on_off_and_refuse_a_negative_weight():
    params = params_from_dict(yaml.safe_load("model: {confidence: off}\nloss: {w_conf: 0.5}"))
    assert params.model.confidence is False and params.loss.w_conf == 0.5
    assert not new_model(params).confidence and new_model(params_from_dict({})).confidence  # on by default
    with pytest.raises(MtDepthError, match="loss.w_conf must be"):
        params_from_dict({"loss": {"w_conf": -1}})
    with pytest.raises(MtDepthError, match="model.confidence must be bool"):
        params_from_dict({"model": {"confidence": "sometimes"}})


def test_laplace_nll_is_least_at_the_log_of_the_error():
    gt = torch.tensor([[[[10.0, 20.0, 30.0, 40.0]]]])
    pred = gt + torch.tensor([[[[0.05, -1.0, 3.0, -12.0]]]])
    grid = torch.linspace(-5, 5, 10001)
    for k in range(4):
        nll = torch.stack(
            [laplace_nll(pred[..., k : k + 1], gt[..., k : k + 1], s.view(1, 1, 1, 1), 80.0) for s in grid]
        )
        best = grid[int(nll.argmin())].item()
        assert best == pytest.approx(math.log(abs((pred - gt)[..., k].item())), abs=2e-3)
    s = torch.log((pred - gt).abs()).requires_grad_()
    laplace_nll(pred, gt, s, 80.0).backward()
    assert s.grad.abs().max().item() < 1e-6  # stationary exactly at s = log|e|


def test_the_likelihood_never_moves_the_depth_and_adds_w_conf_times_its_term():
    gt = torch.full((1, 1, 4, 4), 20.0)
    gt[..., 0, 0] = 0.0  # invalid: left out
    final = (gt + torch.randn(1, 1, 4, 4, generator=torch.Generator().manual_seed(1))).requires_grad_()
    log_scale = torch.zeros(1, 1, 4, 4, requires_grad=True)
    outputs = {"init": final, "final": final, "mask_logits": None, "log_scale": log_scale}
    mask = torch.zeros(1, 1, 4, 4)
    plain = MultiTaskLoss(depth_error="l1")({**outputs, "log_scale": None}, gt, mask)
    terms = MultiTaskLoss(depth_error="l1", w_conf=2.0)(outputs, gt, mask)
    expected_conf = (final - gt).abs()[gt > 0].mean()  # s = 0: |e| / 1 + 0
    assert terms["conf"].item() == pytest.approx(expected_conf.item(), rel=1e-6)
    assert terms["loss"].item() == pytest.approx(plain["loss"].item() + 2.0 * expected_conf.item(), rel=1e-6)
    assert plain["conf"].item() == 0.0
    terms["conf"].backward()
    assert final.grad is None and log_scale.grad is not None


@pytest.mark.parametrize("keep_sparse", [False, True])
def test_both_nets_return_a_clamped_log_scale(keep_sparse):
    rgb, sparse, valid, mask, fill = _inputs()
    for net in _nets(confidence=True, keep_sparse=keep_sparse):
        torch.nn.init.normal_(_log_scale_conv(net).weight, std=300.0)  # far past both bounds somewhere
        out = net.eval()(rgb, sparse, valid, mask, fill)
        s = out["log_scale"]
        assert s.shape == (B, 1, H, W) and s.dtype == torch.float32
        assert s.min().item() >= LOW - 1e-6 and s.max().item() <= HIGH + 1e-6
        assert (s == LOW).any() and (s.max() - HIGH).abs().item() < 1e-5  # the clamps are reached
        if keep_sparse:
            assert (s[valid > 0] == LOW).all()  # a written-back sample: the floor
    for net in _nets():
        assert "log_scale" not in net.eval()(rgb, sparse, valid, mask, fill)


@pytest.mark.parametrize("output", ["residual", "additive"])
def test_untrained_residual_nets_with_confidence_return_their_fill_and_a_twentieth_of_it(output):
    rgb, sparse, valid, mask, fill = _inputs(1)
    for net in _nets(confidence=True, prefill="nearest", output=output):
        out = net.eval()(rgb, sparse, valid, mask, fill)
        assert torch.equal(out["final"], fill) and torch.equal(out["init"], fill)
        assert torch.allclose(out["log_scale"], torch.log(INIT_RELATIVE_ERROR * fill), atol=1e-5)  # 5% of it


def test_config_records_confidence_and_old_configs_build_without_it():
    for net, plain in zip(_nets(confidence=True), _nets()):
        assert net.config["confidence"] is True and build_model(net.config).confidence
        old = {k: v for k, v in plain.config.items() if k != "confidence"}
        rebuilt = build_model(old)
        assert not rebuilt.confidence and rebuilt.state_dict().keys() == plain.state_dict().keys()
        extra = set(net.state_dict()) - set(plain.state_dict())
        assert extra and all("log_scale_out" in key for key in extra)


def test_the_rest_of_a_net_initialises_as_without_confidence():
    for net, plain in zip(_nets(confidence=True), _nets()):
        state, other = net.state_dict(), plain.state_dict()
        assert all(torch.equal(state[k], other[k]) for k in other)  # a fair comparison, seed for seed


def _checkpoint(path, model="mtdepth", confidence=True):
    """A tiny untrained net whose log-scale varies (random weights): expected errors spread around 5% of the depth."""
    torch.manual_seed(3)
    kwargs = {"confidence": confidence, "prefill": "nearest", "output": "residual"}
    net = MTDepth(**TINY_NET, **kwargs) if model == "mtdepth" else UNetBaseline(channels=(4, 8), **kwargs)
    if confidence:
        torch.nn.init.normal_(_log_scale_conv(net).weight, std=1.0)
    info = CheckpointInfo(net.config, "none", *TRAINED_SIZE, 80.0, "memory://test", {}, None)
    save_checkpoint(path, checkpoint_state(net, info))
    return path


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    root = tmp_path_factory.mktemp("frames") / "in"
    write_frame(root, "a", 40, 72, seed=1)
    write_frame(root, "b", 203, 377, seed=2)
    return root


def _predict(checkpoint, frames, out, *extra):
    result = run("predict", "--checkpoint", checkpoint, "--input", frames, "--out", out, "--npy", *extra)
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("model", ["mtdepth", "unet"])
def test_predict_writes_the_expected_error_and_max_error_empties_the_worse_pixels(model, frames, tmp_path):
    checkpoint = _checkpoint(tmp_path / f"{model}.pt", model)
    result = _predict(checkpoint, frames, tmp_path / "all")
    assert "expected error" in result.stdout
    for name, shape in (("a", (40, 72)), ("b", (203, 377))):
        error = np.load(tmp_path / "all" / f"{name}_confidence.npy")
        assert error.dtype == np.float32 and error.shape == shape
        assert error.min() >= MIN_EXPECTED_ERROR_M and error.max() <= 80.0 and error.std() > 0
        png = np.asarray(Image.open(tmp_path / "all" / f"{name}_confidence.png"))
        assert png.dtype == np.uint16 and np.array_equal(png, np.rint(error * 256).astype(np.uint16))
        preview = Image.open(tmp_path / "all" / f"{name}_confidence_preview.png")
        assert preview.width == shape[1] and preview.height > shape[0]
    limit = float(np.median(np.load(tmp_path / "all" / "b_confidence.npy")))
    _predict(checkpoint, frames, tmp_path / "cut", "--max-error", limit)
    for name in ("a", "b"):
        dense = np.load(tmp_path / "all" / f"{name}.npy")
        error = np.load(tmp_path / "all" / f"{name}_confidence.npy")
        cut = np.load(tmp_path / "cut" / f"{name}.npy")
        worse = error > limit
        assert np.array_equal(cut, np.where(worse, 0, dense))
        assert np.array_equal(kitti_io.read_sparse(tmp_path / "cut" / f"{name}.png") > 0, ~worse)
        assert np.array_equal(np.load(tmp_path / "cut" / f"{name}_confidence.npy"), error)  # kept whole
    assert 0 < (np.load(tmp_path / "cut" / "b.npy") == 0).mean() < 1


def test_keep_sparse_gives_the_floor_at_the_samples(frames, tmp_path):
    _predict(_checkpoint(tmp_path / "c.pt"), frames, tmp_path / "out", "--keep-sparse")
    sparse = kitti_io.read_sparse(frames / "sparse" / "b.png")
    error = np.load(tmp_path / "out" / "b_confidence.npy")
    assert np.all(error[sparse > 0] == np.float32(MIN_EXPECTED_ERROR_M))


def test_a_net_without_confidence_writes_no_confidence_files(frames, tmp_path):
    _predict(_checkpoint(tmp_path / "plain.pt", confidence=False), frames, tmp_path / "out")
    assert not list((tmp_path / "out").glob("*confidence*"))


@pytest.mark.parametrize(
    "value, confidence, message",
    [
        ("0", True, "--max-error"),
        ("-1", True, "--max-error"),
        ("2", False, "--max-error: "),
    ],
)
def test_bad_max_error_is_one_line_and_writes_nothing(value, confidence, message, frames, tmp_path):
    checkpoint = _checkpoint(tmp_path / "c.pt", confidence=confidence)
    out = tmp_path / "out"
    result = run("predict", "--checkpoint", checkpoint, "--input", frames, "--out", out, "--max-error", value)
    assert result.exit_code == 2 and len(errors(result)) == 1 and message in errors(result)[0]
    assert "Traceback" not in result.output and not out.exists()
    if not confidence:
        assert "predicts no expected error" in errors(result)[0]


def test_onnx_export_carries_the_expected_error_and_agrees_with_torch(frames, tmp_path):
    checkpoint = _checkpoint(tmp_path / "c.pt")
    result = run("export", "--checkpoint", checkpoint, "--out", tmp_path / "c.onnx")
    assert result.exit_code == 0, result.output
    graph = onnx.load(str(tmp_path / "c.onnx"))
    assert [v.name for v in graph.graph.output] == ["depth", "expected_error"]
    outputs = {}
    for model in (checkpoint, tmp_path / "c.onnx"):
        _predict(model, frames, tmp_path / model.suffix[1:])
        outputs[model.suffix] = [
            np.load(tmp_path / model.suffix[1:] / f"b{suffix}.npy") for suffix in ("", "_confidence")
        ]
    for torch_map, ort_map in zip(outputs[".pt"], outputs[".onnx"]):
        assert np.abs(torch_map - ort_map).max() <= 1e-3


@pytest.mark.slow
def test_train_with_confidence_then_predict_and_export_agree(tiny_store, frames, tmp_path):
    params_file, store = tiny_store("confidence")
    params = yaml.safe_load(params_file.read_text())
    params["model"] = {"unet_channels": [4, 8], "attention_size": [4, 8], "fusion_channels": 8, "head_channels": 4}
    params["train"] = {"epochs": 1, "workers": 0, "precision": "fp32", "warmup_steps": 1, "device": "cpu"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    trained = run(
        "train",
        "--params",
        tmp_path / "params.yaml",
        "--store",
        store,
        "--mask-source",
        "gt",
        "--confidence",
        "--out",
        tmp_path / "run",
    )
    assert trained.exit_code == 0, trained.output
    model, info = model_from_checkpoint(tmp_path / "run" / "last.pt")
    assert model.confidence and info.model_config["confidence"] is True
    assert _log_scale_conv(model).weight.abs().max().item() > 0  # the likelihood trained it
    exported = run("export", "--checkpoint", tmp_path / "run" / "last.pt", "--out", tmp_path / "m.onnx")
    assert exported.exit_code == 0, exported.output
    maps = {}
    for model_file in (tmp_path / "run" / "last.pt", tmp_path / "m.onnx"):
        out = tmp_path / model_file.suffix[1:]
        _predict(model_file, frames, out, "--mask-source", "none")
        assert {p.name for p in out.glob("a*")} >= {
            "a.png",
            "a_preview.png",
            "a_confidence.png",
            "a_confidence.npy",
            "a_confidence_preview.png",
        }
        maps[model_file.suffix] = np.load(out / "a_confidence.npy")
    assert np.abs(maps[".pt"] - maps[".onnx"]).max() <= 1e-3
