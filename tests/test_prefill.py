"""Prefills (pipeline/prefill.py), the nets' residual output and keep_sparse, the L1+L2 loss, export parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from factories import checkpoint_info
from mtdepth.pipeline.baselines import IPBasicConfig, baseline, nearest_fill, nearest_fill_frame
from mtdepth.pipeline.losses import pixel_error
from mtdepth.pipeline.models import build_model
from mtdepth.pipeline.onnx_export import example_inputs, export_onnx, read_onnx, run_session, session
from mtdepth.pipeline.prefill import PREFILLS, masked_fill, prefill_frame

TINY_UNET = {"name": "unet", "channels": [4, 8]}
TINY_MTDEPTH = {
    "name": "mtdepth",
    "channels": [4, 8],
    "attention_size": [4, 8],
    "fusion_channels": 8,
    "head_channels": 4,
}


def sparse_map(height: int, width: int, density: float, seed: int, empty_top: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sparse = ((rng.random((height, width)) < density) * rng.uniform(1, 80, (height, width))).astype(np.float32)
    sparse[:empty_top] = 0
    return sparse


def squared_distances(sparse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, samples) squared distance of every pixel to every sample, and the samples' values."""
    rows, cols = np.nonzero(sparse > 0)
    yy, xx = np.mgrid[: sparse.shape[0], : sparse.shape[1]]
    return (yy[..., None] - rows) ** 2 + (xx[..., None] - cols) ** 2, sparse[rows, cols]


@pytest.mark.parametrize("density,empty_top", [(0.05, 0), (0.01, 10), (0.003, 0), (0.3, 20)])
def test_fast_nearest_fill_takes_a_sample_at_the_exact_nearest_distance(density, empty_top):
    sparse = sparse_map(61, 97, density, seed=int(density * 1000), empty_top=empty_top)
    out = nearest_fill_frame(sparse)
    squared, values = squared_distances(sparse)
    at_nearest = squared == squared.min(axis=-1, keepdims=True)
    assert (at_nearest & (values == out[..., None])).any(axis=-1).all()
    # where the nearest sample is unique, the value is the torch baseline's exactly
    unique = at_nearest.sum(axis=-1) == 1
    reference = nearest_fill(torch.from_numpy(sparse)[None, None])[0, 0].numpy()
    assert np.array_equal(out[unique], reference[unique])


def prefill_batch(kind: str, sparse: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """(B, 1, H, W) -> each frame's fill, as the dataset computes it."""
    return torch.from_numpy(
        np.stack(
            [
                prefill_frame(kind, sparse[b, 0].numpy(), None if mask is None else mask[b, 0].numpy())
                for b in range(len(sparse))
            ]
        )[:, None]
    )


def test_prefills_match_the_baseline_evaluators_fills():
    sparse = np.stack([sparse_map(48, 80, 0.05, seed=s, empty_top=12) for s in range(2)])[:, None]
    batch = torch.from_numpy(sparse)
    squared = [squared_distances(sparse[b, 0]) for b in range(2)]
    unique = np.stack([(sq == sq.min(-1, keepdims=True)).sum(-1) == 1 for sq, _ in squared])[:, None]
    nearest = prefill_batch("nearest", batch).numpy()
    assert np.array_equal(nearest[unique], nearest_fill(batch).numpy()[unique])
    ipbasic = prefill_batch("ipbasic", batch).numpy()
    assert np.array_equal(ipbasic, baseline("ipbasic", IPBasicConfig())(batch).numpy())
    assert not prefill_batch("none", batch).any()
    mask = torch.zeros_like(batch)
    assert np.array_equal(prefill_batch("nearest_masked", batch, mask).numpy(), nearest)  # no object: plain fills
    assert np.array_equal(prefill_batch("ipbasic_masked", batch, mask).numpy(), ipbasic)


def test_each_prefill_is_dense_and_zero_without_samples():
    sparse = sparse_map(32, 64, 0.05, seed=1)
    mask = np.zeros_like(sparse)
    mask[8:20, 10:30] = 1
    for kind in PREFILLS[1:]:
        assert (prefill_frame(kind, sparse, mask) > 0).all(), kind
        assert not prefill_frame(kind, np.zeros_like(sparse), mask).any(), kind
    with pytest.raises(ValueError, match="prefill must be one of"):
        prefill_frame("bilinear", sparse)


def test_mask_aware_fill_never_crosses_an_instance_edge():
    """Two boxes (objects at 5 m and 9 m) on a background at 40 m, samples on all three: every
    object pixel takes its own box's depth, every background pixel the background's."""
    height, width = 40, 60
    mask = np.zeros((height, width), np.float32)
    truth = np.full((height, width), 40.0, np.float32)
    mask[10:30, 8:20], truth[10:30, 8:20] = 1, 5.0
    mask[5:25, 23:40], truth[5:25, 23:40] = 1, 9.0
    rng = np.random.default_rng(0)
    sparse = np.where(rng.random((height, width)) < 0.04, truth, 0).astype(np.float32)
    sparse[12, 10], sparse[20, 30] = 5.0, 9.0  # at least one sample in each box
    for kind in ("nearest_masked", "ipbasic_masked"):
        assert np.array_equal(prefill_frame(kind, sparse, mask), truth), kind
    for kind in ("nearest", "ipbasic"):
        assert not np.array_equal(prefill_frame(kind, sparse), truth), kind  # the plain fills do cross edges


def test_mask_region_without_samples_takes_object_samples_first():
    mask = np.zeros((20, 40), np.float32)
    mask[2:8, 2:8] = 1  # has a sample at 5 m
    mask[12:18, 30:36] = 1  # has none: nearest object sample (5 m), not the background right beside it
    sparse = np.zeros((20, 40), np.float32)
    sparse[4, 4], sparse[15, 28], sparse[0, 39] = 5.0, 30.0, 30.0
    out = masked_fill(sparse, mask)
    assert (out[12:18, 30:36] == 5.0).all() and (out[mask == 0] == 30.0).all()


def net_inputs(prefill: str, seed: int = 0, height: int = 32, width: int = 64) -> dict[str, torch.Tensor]:
    inputs = {
        k: torch.from_numpy(v)
        for k, v in example_inputs(height, width, 80.0, batch=2, seed=seed, prefill=prefill).items()
    }
    inputs["valid"] = (inputs["sparse"] > 0).float()
    return inputs


def forward(model, inputs):
    return model(inputs["rgb"], inputs["sparse"], inputs["valid"], inputs["mask"], inputs["fill"])


@pytest.mark.parametrize("config", [TINY_UNET, TINY_MTDEPTH, {**TINY_MTDEPTH, "mask_input": True}])
@pytest.mark.parametrize("prefill", ["nearest", "ipbasic", "nearest_masked"])
@pytest.mark.parametrize("output", ["residual", "additive"])
def test_an_untrained_residual_net_returns_its_fill_exactly(config, prefill, output):
    torch.manual_seed(0)
    model = build_model({**config, "prefill": prefill, "output": output}).eval()
    inputs = net_inputs(prefill)
    with torch.no_grad():
        out = forward(model, inputs)
    assert torch.equal(out["init"], inputs["fill"]) and torch.equal(out["final"], inputs["fill"])


@pytest.mark.parametrize("config", [TINY_UNET, TINY_MTDEPTH])
@pytest.mark.parametrize(
    "prefill,output", [("none", "absolute"), ("ipbasic", "absolute"), ("nearest", "residual"), ("ipbasic", "additive")]
)
def test_keep_sparse_returns_every_sample(config, prefill, output):
    torch.manual_seed(0)
    model = build_model({**config, "prefill": prefill, "output": output, "keep_sparse": True})
    for p in model.parameters():  # a trained-looking net: outputs far from the samples
        p.data.add_(0.3 * torch.randn_like(p))
    inputs = net_inputs(prefill, seed=3)
    with torch.no_grad():
        out = forward(model.eval(), inputs)
    has = inputs["sparse"] > 0
    for name in ("init", "final"):
        assert torch.equal(out[name][has], inputs["sparse"][has])
        assert not torch.equal(out[name][~has], inputs["fill"][~has])  # the net did change the rest


def test_configs_record_the_options_and_old_configs_build_the_paper_net():
    model = build_model({**TINY_MTDEPTH, "prefill": "ipbasic", "output": "residual", "keep_sparse": True})
    assert {k: model.config[k] for k in ("prefill", "output", "keep_sparse")} == {
        "prefill": "ipbasic",
        "output": "residual",
        "keep_sparse": True,
    }
    assert build_model(model.config).config == model.config
    old = build_model(dict(TINY_UNET))
    assert (old.prefill, old.output, old.keep_sparse) == ("none", "absolute", False)
    assert old.unet.down[0][0].in_channels == 5  # the paper's input: RGB, sparse, validity
    assert model.unet.down[0][0].in_channels == 6  # + the fill


def test_residual_needs_a_fill_and_a_fill_needs_its_input():
    from mtdepth.errors import MtDepthError

    with pytest.raises(MtDepthError, match="output corrects a fill"):
        build_model({**TINY_UNET, "output": "residual"})
    with pytest.raises(MtDepthError, match="output must be one of"):
        build_model({**TINY_UNET, "prefill": "nearest", "output": "multiplicative"})
    model = build_model({**TINY_UNET, "prefill": "nearest"})
    inputs = net_inputs("nearest")
    with pytest.raises(ValueError, match="pass fill"):
        model(inputs["rgb"], inputs["sparse"], inputs["valid"])


def test_l1_l2_is_the_sum_of_l1_and_l2():
    pred, gt = torch.tensor([1.0, 3.0, 10.0]), torch.tensor([2.0, 3.0, 7.5])
    assert torch.allclose(pixel_error(pred, gt, "l1_l2"), pixel_error(pred, gt, "l1") + pixel_error(pred, gt, "l2"))
    assert torch.allclose(pixel_error(pred, gt, "l1_l2"), torch.tensor([2.0, 0.0, 8.75]))


@pytest.mark.parametrize(
    "config,prefill,output,keep",
    [
        (TINY_UNET, "ipbasic", "residual", True),
        (TINY_MTDEPTH, "nearest_masked", "residual", False),
        (TINY_MTDEPTH, "nearest", "absolute", True),
        (TINY_UNET, "nearest", "additive", False),
        ({**TINY_MTDEPTH, "mask_input": True}, "ipbasic", "residual", True),
    ],
)
def test_export_parity_for_the_new_options(tmp_path, config, prefill, output, keep):
    torch.manual_seed(0)
    model = build_model({**config, "prefill": prefill, "output": output, "keep_sparse": keep})
    for p in model.parameters():
        p.data.add_(0.1 * torch.randn_like(p))
    info = checkpoint_info(model.config)
    check = export_onnx(model, info, tmp_path / "net.onnx")
    assert check["max_abs_diff_m"] <= 1e-3
    assert read_onnx(tmp_path / "net.onnx") == info
    inputs = example_inputs(40, 72, 80.0, batch=1, seed=5, prefill=prefill)
    names = [i.name for i in session(tmp_path / "net.onnx").get_inputs()]
    assert names == ["rgb", "sparse", *([] if config["name"] == "unet" else ["mask"]), "fill"]
    ort = run_session(session(tmp_path / "net.onnx"), inputs)
    tensors = {k: torch.from_numpy(v) for k, v in inputs.items()}
    tensors["valid"] = (tensors["sparse"] > 0).float()
    with torch.no_grad():
        expected = forward(model.eval(), tensors)["final"].numpy()
    assert np.abs(ort - expected).max() <= 1e-3
