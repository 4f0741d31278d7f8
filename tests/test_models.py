"""The networks: shapes at any size, the attention against a naive reference, no gradient into the mask."""

from __future__ import annotations

import math

import pytest
import torch

from mtdepth.errors import MtDepthError
from mtdepth.pipeline.models import QUERIES, CrossAttention, MTDepth, UNet, UNetBaseline, build_model

SMALL = {
    "channels": (4, 8, 16),
    "attention_dim": 8,
    "attention_size": (4, 8),
    "fusion_channels": 16,
    "head_channels": 8,
    "se_reduction": 4,
}


def inputs(batch: int, height: int, width: int, seed: int = 0, requires_grad: bool = False):
    g = torch.Generator().manual_seed(seed)
    sparse = (
        torch.rand(batch, 1, height, width, generator=g)
        * 80
        * (torch.rand(batch, 1, height, width, generator=g) < 0.05)
    )
    mask = (torch.rand(batch, 1, height, width, generator=g) < 0.3).float().requires_grad_(requires_grad)
    return torch.rand(batch, 3, height, width, generator=g), sparse, (sparse > 0).float(), mask


@pytest.mark.parametrize("height,width", [(32, 64), (37, 71), (16, 16), (48, 100)])
@pytest.mark.parametrize("query", QUERIES)
def test_mtdepth_outputs_match_any_input_size(height, width, query):
    model = MTDepth(**SMALL, query=query)
    out = model(*inputs(2, height, width))
    assert set(out) == {"init", "final", "mask_logits"}
    for value in out.values():
        assert value.shape == (2, 1, height, width) and torch.isfinite(value).all()
    assert (out["init"] > 0).all() and (out["final"] > 0).all()


@pytest.mark.parametrize("height,width", [(32, 64), (33, 65), (7, 9)])
def test_unet_returns_features_and_depth_at_the_input_size(height, width):
    unet = UNet((4, 8, 16, 32))
    features, depth = unet(torch.rand(1, 5, height, width))
    assert features.shape == (1, 4, height, width) and depth.shape == (1, 1, height, width)
    baseline = UNetBaseline(channels=(4, 8, 16, 32))
    out = baseline(*inputs(1, height, width))
    assert out["final"] is out["init"] and out["mask_logits"] is None


def test_untrained_nets_predict_init_depth_everywhere():
    for model in (MTDepth(**SMALL, init_depth=12.0), UNetBaseline(channels=(4, 8), init_depth=12.0)):
        out = model.eval()(*inputs(2, 32, 64))
        assert torch.allclose(out["final"], torch.full_like(out["final"], 12.0), atol=0.5)


def test_attention_equals_naive_softmax_reference():
    torch.manual_seed(0)
    attention = CrossAttention(feature_channels=6, dim=8, size=(4, 8), query="mask_feat")
    features, mask = torch.rand(2, 6, 16, 32), (torch.rand(2, 1, 16, 32) > 0.5).float()
    coarse = torch.nn.functional.adaptive_avg_pool2d(features, (4, 8))
    seg = torch.cat([torch.nn.functional.adaptive_avg_pool2d(mask, (4, 8)), coarse], dim=1)
    q = attention.to_q(seg).flatten(2).transpose(1, 2)  # (B, N, d)
    k = attention.to_k(coarse).flatten(2).transpose(1, 2)
    v = attention.to_v(coarse).flatten(2).transpose(1, 2)
    weights = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(8), dim=-1)  # eq. 7
    out = (weights @ v).transpose(1, 2).reshape(2, 8, 4, 8)  # eq. 8
    expected = torch.nn.functional.interpolate(
        torch.relu(attention.out(out)), size=(16, 32), mode="bilinear", align_corners=False
    )  # eq. 9, upsampled
    assert torch.allclose(attention(features, mask), expected, atol=1e-5)


def test_mask_only_query_gives_one_context_per_mask_value():
    """The paper's query: every query is a*m + b, so a binary mask yields two context vectors."""
    torch.manual_seed(0)
    attention = CrossAttention(feature_channels=6, dim=8, size=(4, 8), query="mask")
    mask = torch.zeros(1, 1, 4, 8)
    mask[..., :2, :] = 1
    attention.out = torch.nn.Identity()  # look at the attended values themselves (before ReLU they are O')
    context = attention(torch.rand(1, 6, 4, 8), mask)[0].flatten(1).T  # (N, d)
    assert torch.unique(context.round(decimals=5), dim=0).shape[0] == 2


def test_no_gradient_reaches_the_mask_but_the_mask_changes_the_output():
    model = MTDepth(**SMALL)
    rgb, sparse, valid, mask = inputs(2, 32, 64, requires_grad=True)
    out = model(rgb, sparse, valid, mask)
    (out["final"].sum() + out["mask_logits"].sum()).backward()
    assert mask.grad is None
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.attention.to_q.parameters())
    other = model(rgb, sparse, valid, 1 - mask.detach())
    assert not torch.allclose(other["final"], out["final"])


def test_mask_input_brings_the_masks_full_resolution_edges():
    """The attention sees the mask pooled to its grid: moving an edge inside one grid cell changes
    nothing there; with `mask_input` the U-Net sees the edge itself."""
    rgb, sparse, valid, mask = inputs(1, 32, 64)
    mask = torch.zeros_like(mask)
    mask[..., 8:16, 8:11] = 1  # 3 of a grid cell's 8 columns (grid 4x8 over 32x64: 8x8 cells)
    moved = torch.zeros_like(mask)
    moved[..., 8:16, 13:16] = 1  # the same 3 columns' worth, in the same cell
    for mask_input in (False, True):
        torch.manual_seed(0)
        model = MTDepth(**SMALL, mask_input=mask_input).eval()
        assert model.unet.down[0][0].in_channels == 5 + mask_input
        with torch.no_grad():
            a, b = (model(rgb, sparse, valid, m)["final"] for m in (mask, moved))
        assert torch.equal(a, b) is not mask_input


def test_config_rebuilds_the_same_architecture_and_bad_configs_are_one_line():
    for model in (MTDepth(**SMALL, query="mask_pos", mask_input=True), UNetBaseline(channels=(4, 8))):
        again = build_model(model.config)
        assert again.config == model.config
        again.load_state_dict(model.state_dict())
    with pytest.raises(MtDepthError, match="unknown model 'resnet'"):
        build_model({"name": "resnet"})
    with pytest.raises(MtDepthError, match="query must be one of"):
        build_model({**MTDepth(**SMALL).config, "query": "bogus"})
    with pytest.raises(MtDepthError, match="init_depth must be in"):
        build_model({"name": "unet", "max_depth": 80.0, "init_depth": 90.0})
