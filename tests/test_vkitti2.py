"""The Virtual KITTI 2 reader on hand-made trees (split per archive and merged), and the real CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from mtdepth.cli import cli
from mtdepth.errors import MtDepthError
from mtdepth.pipeline import vkitti2_format as fmt
from mtdepth.pipeline.vkitti2 import (
    FIELD_MODALITY,
    index_frames,
    load_frame,
    resize_area,
    resize_nearest,
    verify_frame,
)

WIDTH, HEIGHT = 62, 19
SCENES = ("Scene01", "Scene02")
CONDITIONS = ("clone", "fog")
FRAMES = 3
ALL_FIELDS = ("rgb", "depth", "instance", "classgt")
SKY_COLUMNS = 5  # the left columns of every depth map are sky
INSTANCE_ID = 7  # track id 6 covers a box in every instance map


def archive_root(root: Path, layout: str, name: str) -> Path:
    """Where an archive unpacks: its own folder (split) or the root itself (merged)."""
    return root / f"{fmt.VERSION_PREFIX}{name}" if layout == "split" else root


def frame_file(root: Path, layout: str, field: str, scene="Scene01", condition="clone", camera="Camera_0", index=1):
    """Path a frame's file of `field` has in a tree written by make_tree."""
    modality = FIELD_MODALITY[field]
    return archive_root(root, layout, modality) / fmt.frame_path(modality, scene, condition, camera, index)


def write_field(path: Path, field: str, rng: np.random.Generator) -> None:
    """Write one small random file of `field`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if field == "rgb":
        fmt.write_rgb(path, rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8))
    elif field == "depth":
        units = rng.integers(100, 12000, (HEIGHT, WIDTH), dtype=np.uint16)
        units[:, :SKY_COLUMNS] = fmt.DEPTH_SKY
        fmt.write_depth_units(path, units)
    elif field == "instance":
        ids = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
        ids[4:12, 20:40] = INSTANCE_ID
        fmt.write_instances(path, ids)
    else:
        colours = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
        colours[4:12, 20:40] = fmt.CLASS_COLORS["Car"]
        fmt.write_class_rgb(path, colours)


def make_tree(root: Path, layout: str, fields=ALL_FIELDS, cameras=("Camera_0",), intrinsics=True, seed=0) -> Path:
    """A tiny Virtual KITTI 2 tree: SCENES x CONDITIONS x FRAMES frames per camera."""
    rng = np.random.default_rng(seed)
    for scene in SCENES:
        for condition in CONDITIONS:
            for camera in cameras:
                for index in range(FRAMES):
                    for field in fields:
                        write_field(frame_file(root, layout, field, scene, condition, camera, index), field, rng)
            if intrinsics:
                path = archive_root(root, layout, fmt.TEXTGT) / fmt.textgt_path(scene, condition, "intrinsic.txt")
                path.parent.mkdir(parents=True, exist_ok=True)
                fmt.write_intrinsics(path, range(FRAMES), (0, 1), fmt.INTRINSICS)
    return root


@pytest.fixture(params=["split", "merged"])
def layout(request) -> str:
    return request.param


def test_index_finds_every_frame_sorted_with_keys_paths_and_intrinsics(tmp_path, layout):
    root = make_tree(tmp_path, layout)
    refs = index_frames(root)
    assert len(refs) == len(SCENES) * len(CONDITIONS) * FRAMES
    assert [(r.scene, r.condition, r.index) for r in refs] == sorted((r.scene, r.condition, r.index) for r in refs)
    first = refs[0]
    assert first.key == "Scene01/clone/Camera_0/00000"
    assert refs[4].key == "Scene01/fog/Camera_0/00001"
    for ref in refs:
        for field in ALL_FIELDS:
            assert getattr(ref, field) == frame_file(
                root, layout, field, ref.scene, ref.condition, ref.camera, ref.index
            )
        assert ref.intrinsics == pytest.approx(fmt.INTRINSICS)


def test_split_and_merged_layouts_index_the_same_frames(tmp_path):
    split = index_frames(make_tree(tmp_path / "split", "split"))
    merged = index_frames(make_tree(tmp_path / "merged", "merged"))
    assert [(r.key, r.intrinsics) for r in split] == [(r.key, r.intrinsics) for r in merged]


def test_folder_names_match_case_insensitively(tmp_path):
    root = make_tree(tmp_path, "split")
    (root / "vkitti_2.0.3_classSegmentation").rename(root / "VKITTI_2.0.3_classsegmentation")
    depth_archive = root / "vkitti_2.0.3_depth"
    (depth_archive / "Scene02").rename(depth_archive / "scene02")
    for scene in SCENES:
        for condition in CONDITIONS:
            frames = root / "VKITTI_2.0.3_classsegmentation" / scene / condition / "frames"
            (frames / "classSegmentation").rename(frames / "classsegmentation")
            (frames / "classsegmentation" / "Camera_0").rename(frames / "classsegmentation" / "camera_0")
            instance_condition = root / "vkitti_2.0.3_instanceSegmentation" / scene / condition
            (instance_condition / "frames").rename(instance_condition / "FRAMES")
    refs = index_frames(root, require=ALL_FIELDS)
    assert len(refs) == len(SCENES) * len(CONDITIONS) * FRAMES
    assert {r.scene for r in refs} == set(SCENES)
    assert all(r.classgt is not None and r.classgt.name.startswith("classgt_") for r in refs)
    assert all(r.depth.exists() and r.instance.exists() for r in refs)


def test_filters_by_scene_condition_camera_and_inclusive_frame_range(tmp_path, layout):
    root = make_tree(tmp_path, layout, cameras=("Camera_0", "Camera_1"))
    refs = index_frames(root, scenes=("Scene02",), conditions=("fog",), camera="Camera_1", first_frame=1, last_frame=2)
    assert [r.key for r in refs] == ["Scene02/fog/Camera_1/00001", "Scene02/fog/Camera_1/00002"]
    assert all(r.rgb.parent.name == "Camera_1" for r in refs)
    assert len(index_frames(root, conditions=("clone",), last_frame=0)) == len(SCENES)


def test_absent_optional_modalities_are_none_and_required_ones_raise(tmp_path, layout):
    root = make_tree(tmp_path, layout, fields=("rgb", "depth"), intrinsics=False)
    refs = index_frames(root)
    assert all(r.instance is None and r.classgt is None and r.intrinsics is None for r in refs)
    with pytest.raises(MtDepthError, match="instancegt_00000.png: missing"):
        index_frames(root, require=("rgb", "depth", "instanceSegmentation"))


def test_a_frame_missing_in_depth_names_the_expected_file(tmp_path, layout):
    root = make_tree(tmp_path, layout)
    missing = frame_file(root, layout, "depth", "Scene02", "fog", index=2)
    missing.unlink()
    with pytest.raises(MtDepthError, match=f"^{missing}: missing"):
        index_frames(root)
    assert len(index_frames(root, scenes=("Scene01",))) == len(CONDITIONS) * FRAMES


def test_unknown_scene_condition_and_camera_list_what_was_found(tmp_path):
    root = make_tree(tmp_path, "split")
    with pytest.raises(MtDepthError, match=r"scene 'Scene99' not found \(found: Scene01, Scene02\)"):
        index_frames(root, scenes=("Scene99",))
    with pytest.raises(MtDepthError, match=r"condition 'snow' not found \(found: clone, fog\)"):
        index_frames(root, conditions=("snow",))
    with pytest.raises(MtDepthError, match=r"no RGB frames of Camera_1 .*cameras found: Camera_0"):
        index_frames(root, camera="Camera_1")
    with pytest.raises(MtDepthError, match=r"numbered 5\.\.end"):
        index_frames(root, first_frame=5)


def test_unparsable_intrinsics_name_the_file(tmp_path, layout):
    root = make_tree(tmp_path, layout)
    path = archive_root(root, layout, fmt.TEXTGT) / fmt.textgt_path("Scene01", "fog", "intrinsic.txt")
    path.write_text("frame cameraID K[0,0] K[1,1] K[0,2] K[1,2]\n0 0 seven\n")
    with pytest.raises(MtDepthError, match=f"^{path}: line 2"):
        index_frames(root)


def test_resize_nearest_keeps_only_source_values_and_samples_pixel_centres():
    source = np.arange(4 * 6, dtype=np.uint16).reshape(4, 6)
    halved = resize_nearest(source, 2, 3)
    np.testing.assert_array_equal(halved, source[1::2, 1::2])
    odd = resize_nearest(source, 3, 5)
    assert odd.shape == (3, 5) and set(odd.ravel()) <= set(source.ravel())
    colour = np.random.default_rng(0).integers(0, 256, (19, 62, 3), dtype=np.uint8)
    grown = resize_nearest(colour, 38, 124)
    np.testing.assert_array_equal(grown[::2, ::2], colour)


def test_resize_area_averages_blocks():
    source = np.arange(4 * 8, dtype=np.uint8).reshape(4, 8) * 4
    expected = source.reshape(2, 2, 4, 2).mean(axis=(1, 3))
    np.testing.assert_array_equal(resize_area(source, 2, 4), np.rint(expected))
    depth = np.arange(16, dtype=np.float32).reshape(4, 4)
    np.testing.assert_allclose(resize_area(depth, 2, 2), depth.reshape(2, 2, 2, 2).mean(axis=(1, 3)))
    rgb = np.stack([source, source // 2, 255 - source], axis=-1)
    assert resize_area(rgb, 2, 4).shape == (2, 4, 3)


def test_load_frame_resizes_invalidates_sky_and_far_and_scales_intrinsics(tmp_path, layout):
    root = make_tree(tmp_path, layout)
    ref = index_frames(root)[1]
    height, width = 8, 32
    frame = load_frame(ref, height, width, max_depth=60.0)
    assert frame.rgb.shape == (height, width, 3) and frame.rgb.dtype == np.uint8
    np.testing.assert_array_equal(frame.rgb, resize_area(fmt.read_rgb(ref.rgb), height, width))
    units = fmt.read_depth_units(ref.depth)
    assert frame.depth.shape == (height, width) and frame.depth.dtype == np.float32
    source_metres = set((units[units != fmt.DEPTH_SKY] / np.float32(100)).astype(np.float32).ravel())
    valid = frame.depth[frame.depth > 0]
    assert set(valid.ravel()) <= source_metres  # nearest: no blended depths
    assert valid.max() <= 60.0 and (frame.depth == 0).sum() > 0
    np.testing.assert_array_equal(frame.depth[:, 0], 0)  # sky columns
    near = load_frame(ref, height, width, max_depth=655.34)
    far = near.depth > 60.0
    np.testing.assert_array_equal(frame.depth[far], 0)
    np.testing.assert_array_equal(frame.depth[~far], near.depth[~far])
    assert set(np.unique(frame.instances)) == {0, INSTANCE_ID}
    np.testing.assert_array_equal(frame.gt_mask, (frame.instances > 0).astype(np.uint8))
    fx, fy, cx, cy = fmt.INTRINSICS
    assert frame.intrinsics == pytest.approx(
        (fx * width / WIDTH, fy * height / HEIGHT, cx * width / WIDTH, cy * height / HEIGHT)
    )


def test_load_frame_without_instances_or_intrinsics(tmp_path):
    root = make_tree(tmp_path, "merged", fields=("rgb", "depth"), intrinsics=False)
    frame = load_frame(index_frames(root)[0], 16, 32, max_depth=80.0)
    assert frame.instances is None and frame.gt_mask is None and frame.intrinsics is None


def test_verify_frame_checks_class_colours_too(tmp_path):
    root = make_tree(tmp_path, "split")
    path = frame_file(root, "split", "classgt")
    fmt.write_class_rgb(path, np.zeros((HEIGHT, WIDTH + 1, 3), np.uint8))
    ref = next(r for r in index_frames(root) if r.classgt == path)
    load_frame(ref, 8, 32, max_depth=80.0)  # stage one never reads class colours
    with pytest.raises(MtDepthError, match=f"^{path}: size 63x19 differs"):
        verify_frame(ref)


# --- the real CLI -------------------------------------------------------------------------


def run_dataset(*args: str):
    """Invoke `mtdepth dataset ...` through the click group, as a shell would."""
    return CliRunner().invoke(cli, ["dataset", *args])


def test_cli_prints_counts_sizes_and_modalities(tmp_path):
    root = make_tree(tmp_path, "split")
    result = run_dataset(str(root), "--check", "--scenes", "Scene01,Scene02", "--last-frame", "1")
    assert result.exit_code == 0, result.output
    assert f"{root}: 8 frames of Camera_0, 2 scenes x 2 conditions" in result.output
    assert f"image size: {WIDTH}x{HEIGHT}" in result.output
    assert "rgb 8, depth 8, instance 8, classgt 8, intrinsics 8" in result.output
    assert "| Scene01 | 2 | 2 | 4 |" in result.output
    assert "checked 8 frames" in result.output


def truncate(path: Path) -> Path:
    """Cut a file to half its bytes."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def corrupt_missing_root(root):
    return root / "no-such-root", []


def corrupt_empty_root(root):
    empty = root / "empty"
    (empty / "Scene01" / "clone").mkdir(parents=True)
    (empty / "notes").mkdir()
    return empty, ["no Virtual KITTI 2 frames found", "vkitti_2.0.3_rgb"]


def corrupt_truncated_jpeg(root):
    return make_tree(root, "split"), [str(truncate(frame_file(root, "split", "rgb", "Scene02", "fog")))]


def corrupt_truncated_png(root):
    return make_tree(root, "split"), [str(truncate(frame_file(root, "split", "depth", "Scene02", "fog")))]


def corrupt_truncated_class_png(root):
    return make_tree(root, "merged"), [str(truncate(frame_file(root, "merged", "classgt", "Scene01", "fog")))]


def corrupt_8bit_depth(root):
    make_tree(root, "split")
    path = frame_file(root, "split", "depth", "Scene01", "fog")
    Image.fromarray(np.full((HEIGHT, WIDTH), 50, np.uint8), "L").save(path)
    return root, [str(path), "16-bit"]


def corrupt_depth_size(root):
    make_tree(root, "merged")
    path = frame_file(root, "merged", "depth", "Scene02", "clone")
    fmt.write_depth_units(path, np.full((HEIGHT + 1, WIDTH), 500, np.uint16))
    return root, [str(path), f"{WIDTH}x{HEIGHT + 1} differs"]


def corrupt_missing_depth(root):
    make_tree(root, "split")
    path = frame_file(root, "split", "depth", "Scene02", "clone", index=0)
    path.unlink()
    return root, [str(path), "missing"]


@pytest.mark.parametrize(
    "corrupt",
    [
        corrupt_missing_root,
        corrupt_empty_root,
        corrupt_truncated_jpeg,
        corrupt_truncated_png,
        corrupt_truncated_class_png,
        corrupt_8bit_depth,
        corrupt_depth_size,
        corrupt_missing_depth,
    ],
)
def test_cli_bad_inputs_exit_2_with_one_line_naming_the_file(tmp_path, corrupt):
    root, needles = corrupt(tmp_path)
    result = run_dataset(str(root), "--check")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("mtdepth: error: ") and "Traceback" not in result.output
    for needle in needles or [str(root)]:
        assert needle in lines[0]


@pytest.mark.parametrize(
    ("option", "value", "needles"),
    [
        ("--scenes", "Scene01,Scene99", ["'Scene99'", "Scene01, Scene02"]),
        ("--conditions", "snow", ["'snow'", "clone, fog"]),
    ],
)
def test_cli_unknown_scene_or_condition_exit_2(tmp_path, option, value, needles):
    root = make_tree(tmp_path, "split")
    result = run_dataset(str(root), "--check", option, value)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0]
