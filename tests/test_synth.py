"""The synthetic street dataset: determinism, stable instance ids, labels, depth edges, files, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from mtdepth.cli import cli
from mtdepth.params import SCENES
from mtdepth.pipeline import synth
from mtdepth.pipeline.synth import raycast
from mtdepth.pipeline import vkitti2_format as vk
from mtdepth.pipeline.sparse import sparsify
from mtdepth.pipeline.vkitti2 import index_frames

WIDTH, HEIGHT = 310, 94  # a quarter of 1242x375
FRAMES = 6
DEPTH_JUMP = 0.5  # metres: what counts as a depth discontinuity
KEEP_PROB = 0.05  # sparse samples, as the paper keeps
MAX_DEPTH = 80.0  # metres, as the loaders cap
VEHICLES_AND_PEOPLE = ("Car", "Van", "Truck", "Pedestrian")


@pytest.fixture(scope="module")
def camera() -> synth.Camera:
    return synth.make_camera(WIDTH, HEIGHT)


@pytest.fixture(scope="module")
def sequences(camera) -> dict[str, tuple[synth.Street, list[synth.Geometry]]]:
    """Every scene's street and the geometry of its first FRAMES frames."""
    out = {}
    for scene in SCENES:
        street = synth.build_street(0, scene, FRAMES)
        out[scene] = street, [synth.cast_frame(street, camera, k) for k in range(FRAMES)]
    return out


def _frames(sequences, camera, condition="clone"):
    """(street, geometry, frame) for every frame of every scene."""
    for street, geometries in sequences.values():
        for geometry in geometries:
            yield street, geometry, synth.shade_frame(street, camera, geometry, condition)


def _params_file(tmp_path: Path, **synth_params) -> Path:
    synth_params = {"image_width": WIDTH, "image_height": HEIGHT, **synth_params}
    rows = "\n".join(f"  {key}: {value}" for key, value in synth_params.items())
    path = tmp_path / "params.yaml"
    path.write_text(f"synth:\n{rows}\n")
    return path


def _run(tmp_path: Path, *args: str, **synth_params):
    return CliRunner().invoke(cli, ["synth", "--params", str(_params_file(tmp_path, **synth_params)), *args])


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_arrays(camera):
    first = synth.render_frame(synth.build_street(7, "Scene02", 4), camera, "rain", 3)
    again = synth.render_frame(synth.build_street(7, "Scene02", 4), camera, "rain", 3)
    for name in ("rgb", "depth", "class_rgb", "instances"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name), err_msg=name)


def test_another_seed_gives_another_street(camera):
    depths = [synth.render_frame(synth.build_street(seed, "Scene02", 1), camera, "clone", 0).depth for seed in (0, 1)]
    assert np.mean(depths[0] != depths[1]) > 0.2


def test_scenes_differ(sequences):
    depth = {scene: geometries[0].depth for scene, (_, geometries) in sequences.items()}
    assert np.mean(depth["Scene01"] != depth["Scene02"]) > 0.2


@pytest.mark.parametrize("scene", SCENES)
def test_a_frame_does_not_depend_on_the_sequence_length(camera, scene):
    short = synth.render_frame(synth.build_street(0, scene, 3), camera, "rain", 2)
    long = synth.render_frame(synth.build_street(0, scene, 500), camera, "rain", 2)
    for name in ("rgb", "depth", "class_rgb", "instances"):
        np.testing.assert_array_equal(getattr(short, name), getattr(long, name), err_msg=name)


def test_same_seed_writes_identical_files(tmp_path):
    trees = []
    for name in ("a", "b"):
        result = _run(
            tmp_path, "--out", str(tmp_path / name), "--scenes", "Scene18", "--conditions", "clone,fog", "--frames", "2"
        )
        assert result.exit_code == 0, result.output
        trees.append(_tree(tmp_path / name))
    # 2 conditions x 2 frames x 4 images, 2 textgt files per condition, and the manifest
    assert trees[0].keys() == trees[1].keys() and len(trees[0]) == 2 * 2 * 4 + 2 * 2 + 1
    assert trees[0] == trees[1]
    assert json.loads(trees[0]["mtdepth-synth.json"])["synth"]["scenes"] == ["Scene18"]


# ----------------------------------------------------------------------------- instances and classes


def test_boxes_are_well_formed_and_vehicles_face_their_traffic(sequences):
    for street, _ in sequences.values():
        assert (street.props_lo < street.props_hi).all()
        for track in street.tracks:
            assert (track.lo < track.hi).all() and track.lo[:, 1].min() == 0.0
            if track.class_name != "Pedestrian" and track.speed:
                assert np.sign(track.speed) == np.sign(track.x)  # right-hand traffic: +Z on the right


def test_instance_pixels_lie_on_their_own_track(sequences, camera):
    """Every id in every frame is exactly one track in view, and its pixels lie on that track's boxes."""
    tolerance = 0.02
    checked = 0
    for street, geometries in sequences.values():
        by_id = {}
        for track in street.tracks:
            by_id.setdefault(track.instance, []).append(track)
        for geometry in geometries:
            frame = synth.shade_frame(street, camera, geometry, "clone")
            camera_z = street.step * geometry.index
            origins = dict(zip(map(id, street.tracks), synth.track_positions(street.tracks, [geometry.index])[:, 0]))
            for instance in np.unique(frame.instances[frame.instances > 0]):
                v, u = np.nonzero(frame.instances == instance)
                depth = frame.depth[v, u]
                x = street.camera_x + depth * camera.dx[u]
                y = synth.CAMERA_HEIGHT - depth * camera.dy[v]
                z = camera_z + depth
                owners = []
                for track in by_id[instance]:
                    z0 = origins[id(track)]
                    swing = np.abs(track.swing).max()
                    lo = np.array([track.x, 0.0, z0]) + track.lo.min(0) - [tolerance, tolerance, swing + tolerance]
                    hi = np.array([track.x, 0.0, z0]) + track.hi.max(0) + [tolerance, tolerance, swing + tolerance]
                    inside = (x >= lo[0]) & (x <= hi[0]) & (y >= lo[1]) & (y <= hi[1]) & (z >= lo[2]) & (z <= hi[2])
                    owners.append(inside.all())
                assert sum(owners) == 1, (street.scene, geometry.index, instance)
                checked += 1
    assert checked > 100


def test_instance_ids_identical_across_conditions(sequences, camera):
    street, geometries = sequences["Scene01"]
    for index in (0, FRAMES - 1):
        frames = [
            synth.render_frame(synth.build_street(0, "Scene01", FRAMES), camera, condition, index)
            for condition in synth.LOOKS
        ]
        for frame in frames[1:]:
            np.testing.assert_array_equal(frame.instances, frames[0].instances)
            np.testing.assert_array_equal(frame.class_rgb, frames[0].class_rgb)
            np.testing.assert_array_equal(frame.depth, frames[0].depth)
        assert not np.array_equal(frames[0].rgb, frames[1].rgb)


def test_instance_pixels_have_their_class_colour(sequences, camera):
    colours = {name: synth.CLASS_COLOURS[name] for name in VEHICLES_AND_PEOPLE}
    seen = set()
    for _, _, frame in _frames(sequences, camera):
        labelled = frame.instances > 0
        assert vk.class_mask(frame.class_rgb, colours, VEHICLES_AND_PEOPLE)[labelled].all()
        assert not vk.class_mask(frame.class_rgb, colours, VEHICLES_AND_PEOPLE)[~labelled].any()
        for instance in np.unique(frame.instances[labelled]):
            classes = {tuple(c) for c in frame.class_rgb[frame.instances == instance]}
            assert len(classes) == 1
            seen |= classes
    assert {colours["Car"], colours["Pedestrian"]} <= seen


def test_every_class_colour_is_listed(sequences, camera):
    listed = {tuple(c) for c in synth.CLASS_COLOURS.values()}
    found = set()
    for _, _, frame in _frames(sequences, camera):
        found |= {tuple(c) for c in np.unique(frame.class_rgb.reshape(-1, 3), axis=0)}
    assert found <= listed
    expected = ("Sky", "Road", "Building", "Pole", "TrafficSign", "Car", "Pedestrian")
    assert {synth.CLASS_COLOURS[name] for name in expected} <= found


# ----------------------------------------------------------------------------- depth


def test_object_edges_are_depth_discontinuities_that_sparse_samples_miss(sequences, camera):
    pairs = jumps = 0
    edge_pixels = sampled = 0
    for street, geometry, frame in _frames(sequences, camera):
        ids, depth = frame.instances, np.where(np.isfinite(frame.depth), frame.depth, 1e4)
        edges = np.zeros(ids.shape, bool)
        for a, b, edge_a, edge_b in ((np.s_[:, 1:], np.s_[:, :-1], 1, 0), (np.s_[1:], np.s_[:-1], 1, 0)):
            boundary = ids[a] != ids[b]
            jump = boundary & (np.abs(depth[a] - depth[b]) > DEPTH_JUMP)
            pairs, jumps = pairs + boundary.sum(), jumps + jump.sum()
            edges[a] |= jump
            edges[b] |= jump
        metres = vk.depth_metres(vk.encode_depth(frame.depth), MAX_DEPTH)
        sparse = sparsify(metres, KEEP_PROB, 0, f"{street.scene}/{geometry.index}")
        edge_pixels, sampled = edge_pixels + edges.sum(), sampled + (edges & (sparse > 0)).sum()
    assert pairs > 1000
    assert jumps / pairs > 0.75  # silhouettes stand in front of the background
    assert sampled / edge_pixels < 0.1  # a 5% sample leaves nine in ten edge pixels unmeasured


def test_poles_are_depth_discontinuities(sequences, camera):
    pole = synth.CLASS_COLOURS["Pole"]
    pairs = jumps = 0
    for _, _, frame in _frames(sequences, camera):
        mask = np.all(frame.class_rgb == pole, axis=-1)
        depth = np.where(np.isfinite(frame.depth), frame.depth, 1e4)
        boundary = mask[:, 1:] != mask[:, :-1]
        pairs += boundary.sum()
        jumps += (boundary & (np.abs(depth[:, 1:] - depth[:, :-1]) > DEPTH_JUMP)).sum()
    assert pairs > 50 and jumps / pairs > 0.9


@pytest.mark.parametrize("scene", SCENES)
def test_occlusion_does_not_depend_on_drawing_order(monkeypatch, camera, scene):
    """Boxes are z-buffered: drawing them in reverse order gives the same frame."""
    street = synth.build_street(0, scene, FRAMES)
    forward = [synth.cast_frame(street, camera, k) for k in (0, FRAMES - 1)]
    boxes_in_view = raycast._boxes_in_view
    monkeypatch.setattr(raycast, "_boxes_in_view", lambda *args: tuple(a[::-1] for a in boxes_in_view(*args)))
    for geometry in forward:
        backward = synth.cast_frame(street, camera, geometry.index)
        np.testing.assert_array_equal(geometry.depth, backward.depth)
        np.testing.assert_array_equal(geometry.face, backward.face)


def test_walls_stand_on_the_ground(sequences, camera):
    """Below the foot of a facade comes ground in front of it, and the wall is no farther than the
    ground would be on its own row: walls are neither floating nor seen through."""
    pavement_height = synth.CAMERA_HEIGHT - synth.KERB_HEIGHT
    seams = standing = 0
    for _, _, frame in _frames(sequences, camera):
        wall = np.all(frame.class_rgb == synth.CLASS_COLOURS["Building"], axis=-1)
        floor = np.all(frame.class_rgb == synth.CLASS_COLOURS["Road"], axis=-1) | np.all(
            frame.class_rgb == synth.CLASS_COLOURS["Terrain"], axis=-1
        )
        v, u = np.nonzero(wall[:-1] & floor[1:])
        upper, lower = frame.depth[v, u], frame.depth[v + 1, u]
        seams += len(v)
        standing += ((lower <= upper) & (upper <= pavement_height / camera.dy[v] * (1 + 1e-4))).sum()
    assert seams > 200 and standing / seams > 0.99


def test_depth_is_along_the_camera_axis(sequences, camera):
    """Bare road is a plane below the camera: its z-depth is the same across a row (a ray length is not)."""
    for street, geometries in sequences.values():
        geometry = geometries[0]
        road = geometry.surface == synth.ROAD_SURFACE
        rows = np.flatnonzero(road.sum(1) > 10)
        assert len(rows) > 10
        for v in rows:
            expected = synth.CAMERA_HEIGHT / camera.dy[v]
            np.testing.assert_allclose(geometry.depth[v][road[v]], expected, rtol=1e-5)


def test_sky_is_infinite_and_encoded_as_65535(sequences):
    street, geometries = sequences["Scene01"]
    sky = geometries[0].surface == synth.SKY
    assert sky.any() and np.isinf(geometries[0].depth[sky]).all() and np.isfinite(geometries[0].depth[~sky]).all()
    assert (vk.encode_depth(geometries[0].depth)[sky] == vk.DEPTH_SKY).all()


def test_files_round_trip_through_the_readers(tmp_path, sequences, camera):
    street, geometries = sequences["Scene02"]
    frame = synth.shade_frame(street, camera, geometries[2], "sunset")
    synth.write_frame(tmp_path, "Scene02", "sunset", 2, frame)
    path = lambda modality: synth.modality_path(tmp_path, modality, "Scene02", "sunset", 2)  # noqa: E731
    units = vk.read_depth_units(path("depth"))
    np.testing.assert_array_equal(units, vk.encode_depth(frame.depth))
    finite = np.isfinite(frame.depth)
    assert (units[~finite] == vk.DEPTH_SKY).all() and (units[finite] < vk.DEPTH_SKY).all()
    near = finite & (frame.depth < MAX_DEPTH)
    error = np.abs(vk.depth_metres(units, MAX_DEPTH)[near] - frame.depth[near])
    assert error.max() < 0.0051  # half a centimetre, plus float32 rounding
    np.testing.assert_array_equal(vk.read_instances(path("instanceSegmentation")), frame.instances)
    np.testing.assert_array_equal(vk.read_class_rgb(path("classSegmentation")), frame.class_rgb)
    assert vk.read_rgb(path("rgb")).shape == (HEIGHT, WIDTH, 3)


# ----------------------------------------------------------------------------- the command


def test_cli_writes_the_virtual_kitti_2_layout(tmp_path):
    out = tmp_path / "data"
    result = _run(
        tmp_path, "--out", str(out), "--scenes", "Scene01,Scene20", "--conditions", "clone,rain", "--frames", "3"
    )
    assert result.exit_code == 0, result.output
    assert "wrote 12 frames" in result.output
    for scene in ("Scene01", "Scene20"):
        for condition in ("clone", "rain"):
            for index in range(3):
                for modality in vk.MODALITIES:
                    assert synth.modality_path(out, modality, scene, condition, index).is_file()
            textgt = out / "vkitti_2.0.3_textgt" / scene / condition
            intrinsics = vk.read_intrinsics(textgt / "intrinsic.txt")
            assert set(intrinsics) == {(f, c) for f in range(3) for c in (0, 1)}
            np.testing.assert_allclose(intrinsics[(2, 0)], synth.make_camera(WIDTH, HEIGHT).intrinsics, atol=1e-4)
            assert vk.read_colors(textgt / "colors.txt")["Pedestrian"] == vk.PEDESTRIAN_COLOR
    assert (out / "vkitti_2.0.3_rgb/Scene01/clone/frames/rgb/Camera_0/rgb_00000.jpg").is_file()
    assert not list(out.rglob("Camera_1"))
    refs = index_frames(out, require=("rgb", "depth", "instance", "classgt"))
    assert len(refs) == 12
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_cli_refuses_a_non_empty_output_folder(tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = _run(tmp_path, "--out", str(out), "--frames", "1", "--scenes", "Scene01", "--conditions", "clone")
    assert result.exit_code == 2
    message = result.output.strip()
    assert len(message.splitlines()) == 1 and str(out) in message and "--overwrite" in message
    assert _tree(out) == {"keep.txt": b"mine"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "params.yaml"]


def test_cli_overwrite_replaces_the_folder(tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    result = _run(
        tmp_path, "--out", str(out), "--frames", "1", "--scenes", "Scene01", "--conditions", "clone", "--overwrite"
    )
    assert result.exit_code == 0, result.output
    assert not (out / "keep.txt").exists()
    assert synth.modality_path(out, "depth", "Scene01", "clone", 0).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "params.yaml"]


@pytest.mark.parametrize(
    "option, value, key",
    [
        ("--frames", "0", "synth.frames"),
        ("--scenes", "Scene03", "synth.scenes"),
        ("--conditions", "dusk", "synth.conditions"),
    ],
)
def test_cli_rejects_a_bad_param(tmp_path, option, value, key):
    out = tmp_path / "data"
    result = _run(tmp_path, "--out", str(out), option, value)
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and key in result.output
    assert not out.exists()


def test_cli_rejects_a_bad_param_in_the_file(tmp_path):
    result = _run(tmp_path, "--out", str(tmp_path / "data"), image_width=10)
    assert result.exit_code == 2 and "synth.image_width" in result.output
