"""A tiny run of the fill-based configurations through `mtdepth train`, `evaluate` and `predict`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from factories import run, write_frame

from mtdepth.cache.dataset import CachedDepthDataset
from mtdepth.pipeline.checkpoint import model_from_checkpoint
from mtdepth.pipeline.prefill import prefill_frame

TRAIN = {
    "epochs": 1,
    "workers": 0,
    "precision": "fp32",
    "warmup_steps": 2,
    "log_every": 1,
    "device": "cpu",
    "compile": "off",
}
MODEL = {
    "unet_channels": [4, 8, 16],
    "attention_dim": 8,
    "attention_size": [4, 8],
    "fusion_channels": 16,
    "head_channels": 8,
    "se_reduction": 4,
}


@pytest.fixture(scope="module")
def tiny(tiny_store):
    params, store = tiny_store("prefill", train=TRAIN, model=MODEL, evaluate={"workers": 0, "panel_frames": [0]})
    return params.parent, params, store


def test_the_dataset_computes_the_fill_of_each_frame(tiny):
    _, _, store = tiny
    dataset = CachedDepthDataset(store, "all", "gt", prefill="nearest_masked")
    item = dataset[3]
    expected = prefill_frame("nearest_masked", item["sparse"][0].numpy(), item["mask"][0].numpy())
    assert np.array_equal(item["fill"][0].numpy(), expected)
    assert "fill" not in CachedDepthDataset(store, "all", "gt")[3]  # prefill none: the paper's inputs


@pytest.mark.parametrize(
    "model,mask_source,prefill,depth_error",
    [("unet", "none", "ipbasic", "l1_l2"), ("mtdepth", "gt", "nearest_masked", "l2")],
)
def test_train_evaluate_predict_a_residual_net_with_kept_samples(
    tiny, tmp_path, model, mask_source, prefill, depth_error
):
    root, params, _ = tiny
    out = tmp_path / "run"
    result = run(
        "train",
        "--params",
        params,
        "--model",
        model,
        "--mask-source",
        mask_source,
        "--prefill",
        prefill,
        "--output",
        "residual",
        "--keep-sparse",
        "--depth-error",
        depth_error,
        "--out",
        out,
        *(["--mask-input"] if model == "mtdepth" else []),
    )
    assert result.exit_code == 0, result.output
    net, info = model_from_checkpoint(out / "best.pt")
    assert (net.prefill, net.output, net.keep_sparse) == (prefill, "residual", True)
    assert net.mask_input is (model == "mtdepth")
    assert info.model_config["prefill"] == prefill
    result = run("evaluate", "--params", params, "--checkpoint", out / "best.pt", "--out", tmp_path / "eval")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["pooled"]["final"]["all"]["rmse_mm"] > 0
    sparse = write_frame(tmp_path / "in", "a", 50, 90, seed=2)
    result = run(
        "predict",
        "--checkpoint",
        out / "best.pt",
        "--input",
        tmp_path / "in",
        "--out",
        tmp_path / "pred",
        "--npy",
        "--no-preview",
        "--mask-source",
        "none",
    )
    assert result.exit_code == 0, result.output
    dense = np.load(tmp_path / "pred" / "a.npy")
    assert dense.shape == (50, 90) and (dense > 0).all()
    assert np.array_equal(dense[sparse > 0], sparse[sparse > 0])  # keep_sparse inside the net
