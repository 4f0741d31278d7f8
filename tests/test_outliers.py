"""The see-through filter on a hand-made frame, and through predict and evaluate."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from PIL import Image

from mtdepth.cache.dataset import CachedDepthDataset
from mtdepth.cli import cli
from mtdepth.pipeline.outliers import drop_see_through, see_through


def frame() -> np.ndarray:
    """A car (8 m) before a wall (30 m), a few wall samples on the car's pixels near its edge, a lone far sample."""
    sparse = np.zeros((40, 60), dtype=np.float32)
    sparse[::2, ::3] = 30.0  # the wall
    sparse[20:40, 20:40] = 0.0
    sparse[20:40:2, 20:40:3] = 8.0  # the car
    sparse[20, 21] = sparse[21, 24] = 30.0  # see-through: the wall on the car's top edge
    sparse[22, 20] = 8.9  # deeper than the car, within the margin: kept
    return sparse


def test_drops_exactly_the_samples_deeper_than_their_window_by_the_margin():
    sparse = frame()
    kept, dropped = drop_see_through(sparse, window=7, margin=1.5)
    assert kept[20, 21] == 0 and kept[21, 24] == 0 and kept[22, 20] == 8.9  # see-through gone, within margin kept
    expected = np.zeros_like(sparse, dtype=bool)  # the rule written out, one sample at a time
    for v, u in zip(*np.nonzero(sparse)):
        window = sparse[max(v - 3, 0) : v + 4, max(u - 3, 0) : u + 4]
        expected[v, u] = sparse[v, u] > window[window > 0].min() + 1.5
    assert dropped == expected.sum() and np.array_equal(kept, np.where(expected, 0, sparse))
    assert kept[30, 6] == 30.0  # far from the car: kept
    # wall samples within 3 px of the car are dropped too: the rule's known cost at every foreground edge
    assert kept[18, 21] == 0 and kept[18, 51] == 30.0
    assert drop_see_through(sparse, window=11, margin=1.5)[1] > dropped


def test_torch_batches_and_numpy_agree():
    sparse = frame()
    batch = torch.from_numpy(np.stack([sparse, np.zeros_like(sparse)]))[:, None]
    mask = see_through(batch, 7, 1.5)
    assert mask.shape == batch.shape and mask[1].sum() == 0
    assert np.array_equal(mask[0, 0].numpy(), see_through(torch.from_numpy(sparse), 7, 1.5).numpy())


def test_evaluate_drops_see_through_samples_and_counts_them(tmp_path):
    from test_evaluate import VAL_ROWS, make_store

    make_store(tmp_path / "store.zarr")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"evaluate": {"workers": 0, "panel_frames": [], "see_through_window": 5}}))
    base = ["evaluate", "--params", str(params), "--store", str(tmp_path / "store.zarr"), "--baseline", "nearest"]
    kept = CliRunner().invoke(cli, [*base, "--out", str(tmp_path / "kept")])
    dropped = CliRunner().invoke(cli, [*base, "--out", str(tmp_path / "dropped"), "--drop-see-through"])
    assert kept.exit_code == 0 and dropped.exit_code == 0, dropped.output
    sparse = CachedDepthDataset(tmp_path / "store.zarr", split="val", mask_source="none")
    expected = sum(drop_see_through(sparse[i]["sparse"][0], 5, 1.5)[1] for i in range(len(sparse)))
    samples = sum(int((sparse[i]["sparse"] > 0).sum()) for i in range(len(sparse)))
    assert len(sparse) == len(VAL_ROWS) and expected > 0
    assert f"see-through filter: dropped {expected:,} of {samples:,}" in dropped.output
    metrics = {name: json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("kept", "dropped")}
    assert metrics["dropped"]["see_through"] == {"samples": samples, "dropped": expected}
    assert metrics["kept"]["see_through"] is None
    assert metrics["kept"]["pooled"] != metrics["dropped"]["pooled"]


@pytest.mark.parametrize(
    "line, fragment",
    [
        ("see_through_window: 4", "evaluate.see_through_window must be an odd"),
        ("see_through_margin: 0", "evaluate.see_through_margin must be > 0"),
    ],
)
def test_bad_filter_params_are_one_line_exit_2(tmp_path, line, fragment):
    key, value = line.split(": ")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"evaluate": {key: yaml.safe_load(value)}}))
    result = CliRunner().invoke(
        cli,
        [
            "evaluate",
            "--params",
            str(params),
            "--baseline",
            "nearest",
            "--out",
            str(tmp_path / "out"),
            "--drop-see-through",
        ],
    )
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1 and fragment in result.output


def test_predict_drops_see_through_samples_first(tmp_path):
    from factories import make_checkpoint

    checkpoint = make_checkpoint(tmp_path / "tiny.pt")
    (tmp_path / "in" / "image").mkdir(parents=True)
    (tmp_path / "in" / "sparse").mkdir()
    Image.fromarray(np.zeros((40, 60, 3), dtype=np.uint8)).save(tmp_path / "in" / "image" / "f.png")
    np.save(tmp_path / "in" / "sparse" / "f.npy", frame())
    outputs = {}
    for flag in ([], ["--drop-see-through"]):
        out = tmp_path / f"out{len(flag)}"
        result = CliRunner().invoke(
            cli,
            [
                "predict",
                "--checkpoint",
                str(checkpoint),
                "--input",
                str(tmp_path / "in"),
                "--out",
                str(out),
                "--keep-sparse",
                "--npy",
                *flag,
            ],
        )
        assert result.exit_code == 0, result.output
        outputs[len(flag)] = np.load(out / "f.npy")
    assert outputs[0][20, 21] == pytest.approx(30.0)  # --keep-sparse writes the see-through sample back ...
    assert outputs[1][20, 21] != pytest.approx(30.0)  # ... unless it was dropped first
    assert outputs[1][22, 20] == pytest.approx(8.9)
