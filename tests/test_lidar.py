"""The simulated LiDAR and the sparse patterns on a hand-made scene: a wall, a ground plane and a box."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from mtdepth.cli import cli
from mtdepth.params import SparseParams
from mtdepth.pipeline.lidar import LidarSpec, scan
from mtdepth.pipeline.patterns import frame_pattern, sample_frame
from mtdepth.pipeline.sparse import downscale_samples

K = (721.5, 721.5, 609.6, 172.9)  # KITTI's camera
H, W = 375, 1242
CAMERA_HEIGHT, WALL, BOX_Z = 1.65, 40.0, 8.0


def scene() -> tuple[np.ndarray, np.ndarray]:
    """Depth (metres) of a wall at 40 m, the ground 1.65 m below the camera and a 2 m wide box 8 m ahead;
    and the box's pixels."""
    fx, fy, cx, cy = K
    dx = ((np.arange(W) - cx) / fx)[None, :]
    dy = ((np.arange(H) - cy) / fy)[:, None]
    with np.errstate(divide="ignore"):
        ground = np.where(dy > 0, CAMERA_HEIGHT / dy, np.inf)
    depth = np.minimum(np.full((H, W), WALL), ground)
    box = np.broadcast_to((np.abs(dx * BOX_Z) <= 1.0) & (dy * BOX_Z >= 0.15) & (dy * BOX_Z <= CAMERA_HEIGHT), (H, W))
    return np.where(box, BOX_Z, depth).astype(np.float32), box


def elevation_in_sensor(sparse: np.ndarray, spec: LidarSpec) -> np.ndarray:
    """Elevation (degrees) from the sensor of every sample, from its pixel and depth."""
    fx, fy, cx, cy = K
    v, u = np.nonzero(sparse)
    z = sparse[v, u]
    x, y, z = (u - cx) * z / fx - spec.offset[0], (v - cy) * z / fy - spec.offset[1], z - spec.offset[2]
    return np.degrees(np.arctan2(-y, np.hypot(x, z)))


@pytest.mark.parametrize("lines", [64, 32, 16])
def test_points_lie_on_the_beams_only(lines):
    depth, _ = scene()
    spec = LidarSpec(noise=0.0)
    sparse = scan(depth, K, spec, lines, np.random.default_rng(0))
    elevation = elevation_in_sensor(sparse, spec)
    beams = np.degrees(spec.elevations(lines))
    assert len(beams) == lines
    off_beam = np.abs(elevation[:, None] - beams[None, :]).min(axis=1)
    pixel = math.degrees(1 / K[1])
    assert off_beam.max() < 1.5 * pixel  # within a pixel's rounding of some beam
    assert elevation.max() < spec.top + 1.5 * pixel  # nothing above the top beam
    rows_hit = np.unique(np.round((spec.top - elevation) / ((spec.top - spec.bottom) / 63)))
    assert len(rows_hit) <= lines
    density = (sparse > 0).mean()
    assert {64: 0.03, 32: 0.015, 16: 0.007}[lines] < density < {64: 0.06, 32: 0.03, 16: 0.015}[lines]


@pytest.mark.parametrize(
    "offset, edge", [((0.0, -0.3, 0.0), "top"), ((0.3, 0.0, 0.0), "right"), ((-0.3, 0.0, 0.0), "left")]
)
def test_see_through_points_only_behind_the_edge_the_sensor_looks_past(offset, edge):
    depth, box = scene()
    sparse = scan(depth, K, LidarSpec(offset=offset, noise=0.0), 64, np.random.default_rng(0))
    see = (sparse > 0) & (sparse > depth * 1.05)
    v, u = np.nonzero(see)
    assert len(v) > 5 and box[v, u].all()  # background depth on the box's pixels only
    assert np.all(sparse[v, u] > BOX_Z + 0.5)  # what lies behind the box: the ground or the wall
    rows, cols = np.nonzero(box.any(axis=1))[0], np.nonzero(box.any(axis=0))[0]
    # the band the sensor sees past: 0.3 m of parallax between the box (8 m) and the wall (40 m) is ~22 px
    distance = {"top": v - rows.min(), "right": cols.max() - u, "left": u - cols.min()}[edge]
    assert distance.max() <= 22


def test_no_offset_no_see_through_and_kitti_offset_none_at_the_bottom():
    depth, box = scene()
    centred = scan(depth, K, LidarSpec(offset=(0.0, 0.0, 0.0), noise=0.0), 64, np.random.default_rng(0))
    assert not ((centred > 0) & (centred > depth * 1.05)).any()
    kitti = scan(depth, K, LidarSpec(noise=0.0), 64, np.random.default_rng(0))
    v, u = np.nonzero((kitti > 0) & (kitti > depth * 1.05))
    rows = np.nonzero(box.any(axis=1))[0]
    assert len(v) > 0 and box[v, u].all() and (rows.max() - v).min() > 30  # none by the box's bottom edge


def test_noise_is_seeded_and_the_size_of_the_param():
    depth, _ = scene()
    a = scan(depth, K, LidarSpec(noise=0.05), 64, np.random.default_rng(3))
    b = scan(depth, K, LidarSpec(noise=0.05), 64, np.random.default_rng(3))
    clean = scan(depth, K, LidarSpec(noise=0.0), 64, np.random.default_rng(3))
    assert np.array_equal(a, b) and np.array_equal(a > 0, clean > 0)
    wall = (clean > 0) & (depth == WALL) & (clean == depth)
    assert 0.03 < np.std(a[wall] - clean[wall]) < 0.07


def test_downscale_keeps_a_sample_per_cell_without_averaging():
    sparse = np.zeros((6, 9), dtype=np.float32)
    sparse[0, 0], sparse[1, 1], sparse[4, 7] = 5.0, 7.0, 9.0  # two samples in the first cell, (1, 1) at its centre
    small = downscale_samples(sparse, 2, 3)
    assert small[0, 0] == 7.0 and small[1, 2] == 9.0 and np.count_nonzero(small) == 2
    assert set(np.unique(small)) <= {0.0, 5.0, 7.0, 9.0}


def test_patterns_are_seeded_per_frame_and_identical_across_processes():
    depth, _ = scene()
    rgb = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
    small = depth[::4, ::4]
    params = SparseParams(pattern="mixed")
    drawn = [frame_pattern(params, 0, f"Scene01/clone/Camera_0/{i:05d}") for i in range(200)]
    shares = {p: drawn.count(p) / len(drawn) for p in ("uniform", "keypoints", "lidar")}
    assert 0.4 < shares["uniform"] < 0.6 and 0.15 < shares["keypoints"] < 0.35 and 0.15 < shares["lidar"] < 0.35
    key = next(k for i, k in enumerate(f"Scene01/clone/Camera_0/{i:05d}" for i in range(200)) if drawn[i] == "lidar")
    here = sample_frame(params, 0, key, small, depth, rgb, K)
    again = sample_frame(params, 0, key, small, depth, rgb, K)
    assert np.array_equal(here, again) and (here > 0).any()
    code = (
        "import sys, numpy as np; sys.path.insert(0, 'tests'); from test_lidar import *; d, _ = scene(); "
        f"r = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8); "
        f"np.save(sys.stdout.buffer, sample_frame(SparseParams(pattern='mixed'), 0, {key!r}, "
        "d[::4, ::4], d, r, K))"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout
    import io

    assert np.array_equal(np.load(io.BytesIO(other)), here)
    assert not np.array_equal(sample_frame(params, 1, key, small, depth, rgb, K), here)  # another seed


@pytest.mark.parametrize(
    "line, fragment",
    [
        ("pattern: radar", "sparse.pattern must be 'uniform', 'keypoints', 'lidar' or 'mixed'"),
        ("lidar_elevation: [-24.9, 2.0]", "sparse.lidar_elevation must be [top, bottom] degrees"),
        ("lidar_lines: [128]", "sparse.lidar_lines must be at most sparse.lidar_beams (64)"),
        ("lidar_azimuth_step: 0", "sparse.lidar_azimuth_step must be in (0, 10] degrees"),
        ("lidar_offset: [0.0, 0.1]", "sparse.lidar_offset must have 3 items"),
        ("lidar_noise: -1", "sparse.lidar_noise must be in [0, 10] metres"),
        ("mixed: [0, 0, 0]", "sparse.mixed must be three weights >= 0"),
    ],
)
def test_bad_sparse_params_are_one_line_exit_2(tmp_path, line, fragment):
    key, value = line.split(": ", 1)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"sparse": {key: yaml.safe_load(value)}, "data": {"root": str(tmp_path)}}))
    result = CliRunner().invoke(cli, ["segment", "--params", str(params)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in result.output


def test_lidar_without_intrinsics_is_one_line_before_the_store_is_touched(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                "synth": {
                    "out": str(tmp_path / "data"),
                    "scenes": ["Scene01"],
                    "conditions": ["clone"],
                    "frames": 1,
                    "image_width": 124,
                    "image_height": 38,
                },
                "data": {"root": str(tmp_path / "data"), "height": 32, "width": 64},
                "store": {"path": str(tmp_path / "store.zarr"), "mask_sources": ["gt"]},
            }
        )
    )
    assert CliRunner().invoke(cli, ["synth", "--params", str(params)]).exit_code == 0
    for intrinsics in (tmp_path / "data").rglob("intrinsic.txt"):
        intrinsics.unlink()
    result = CliRunner().invoke(cli, ["segment", "--params", str(params), "--pattern", "lidar"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "sparse.pattern: 'lidar' simulates a LiDAR and needs the camera intrinsics" in lines[0]
    assert not (tmp_path / "store.zarr").exists()
    assert CliRunner().invoke(cli, ["segment", "--params", str(params)]).exit_code == 0  # uniform needs none
