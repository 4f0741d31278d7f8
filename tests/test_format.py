"""Bit-exact round trips of every Virtual KITTI 2 file encoder/decoder in vkitti2_format."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mtdepth.errors import MtDepthError
from mtdepth.pipeline import vkitti2_format as fmt

WIDTH, HEIGHT = 62, 19


def test_depth_png_round_trip_is_bit_exact_including_sky_and_extremes(tmp_path):
    rng = np.random.default_rng(0)
    units = rng.integers(0, fmt.DEPTH_SKY + 1, size=(HEIGHT, WIDTH), dtype=np.uint16)
    units[0, :4] = [0, 1, fmt.DEPTH_SKY - 1, fmt.DEPTH_SKY]
    path = tmp_path / "depth_00000.png"
    fmt.write_depth_units(path, units)
    assert Image.open(path).mode == "I;16"
    back = fmt.read_depth_units(path)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, units)


def test_depth_units_are_centimetres_and_sky_and_far_become_invalid():
    units = np.array([[1, 100, 8000, 8001, fmt.DEPTH_SKY - 1, fmt.DEPTH_SKY]], dtype=np.uint16)
    metres = fmt.depth_metres(units, max_depth=80.0)
    assert metres.dtype == np.float32
    np.testing.assert_allclose(metres, [[0.01, 1.0, 80.0, 0.0, 0.0, 0.0]], rtol=0, atol=1e-6)
    far = fmt.depth_metres(units, max_depth=655.34)
    np.testing.assert_allclose(far[0, 4:], [655.34, 0.0], rtol=1e-6)


def test_encode_depth_rounds_to_centimetres_and_maps_inf_to_sky():
    metres = np.array([0.004, 0.015, 12.345, 655.34, 700.0, np.inf, np.nan], dtype=np.float64)
    units = fmt.encode_depth(metres)
    np.testing.assert_array_equal(units, [1, 2, 1234, 65534, 65534, fmt.DEPTH_SKY, fmt.DEPTH_SKY])


def test_write_depth_refuses_other_dtypes(tmp_path):
    with pytest.raises(ValueError):
        fmt.write_depth_units(tmp_path / "d.png", np.zeros((2, 2), dtype=np.int32))


def test_instance_ids_0_to_255_round_trip_as_palette_indices(tmp_path):
    ids = np.arange(256, dtype=np.uint8).repeat(4).reshape(16, 64)
    path = tmp_path / "instancegt_00000.png"
    fmt.write_instances(path, ids)
    image = Image.open(path)
    assert image.mode == "P"
    # The palette colours are not the ids: reading colours instead of indices would fail.
    palette = np.array(image.getpalette()[: 256 * 3]).reshape(256, 3)
    assert not np.array_equal(palette[:, 0], np.arange(256))
    back = fmt.read_instances(path)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, ids)


def test_read_instances_refuses_rgb_pngs(tmp_path):
    path = tmp_path / "instancegt_00000.png"
    Image.fromarray(np.zeros((HEIGHT, WIDTH, 3), np.uint8), "RGB").save(path)
    with pytest.raises(MtDepthError, match="instancegt_00000.png"):
        fmt.read_instances(path)


def test_class_colours_round_trip_and_mask_selects_vehicle_colours(tmp_path):
    names = list(fmt.CLASS_COLORS)
    colours = np.array([fmt.CLASS_COLORS[names[i % len(names)]] for i in range(HEIGHT * WIDTH)], dtype=np.uint8)
    colours = colours.reshape(HEIGHT, WIDTH, 3)
    path = tmp_path / "classgt_00000.png"
    fmt.write_class_rgb(path, colours)
    back = fmt.read_class_rgb(path)
    np.testing.assert_array_equal(back, colours)
    mask = fmt.class_mask(back, fmt.CLASS_COLORS, ("Car", "Van"))
    expected = np.isin(np.arange(HEIGHT * WIDTH) % len(names), [names.index("Car"), names.index("Van")])
    np.testing.assert_array_equal(mask.reshape(-1), expected)


def test_rgb_jpeg_round_trip_is_close(tmp_path):
    gradient = np.linspace(0, 255, WIDTH, dtype=np.uint8)
    rgb = np.stack([np.tile(gradient, (HEIGHT, 1))] * 3, axis=-1)
    path = tmp_path / "rgb_00000.jpg"
    fmt.write_rgb(path, rgb)
    back = fmt.read_rgb(path)
    assert back.shape == rgb.shape and back.dtype == np.uint8
    assert np.abs(back.astype(int) - rgb).mean() < 3


def test_colors_and_intrinsics_text_round_trip(tmp_path):
    colors_path = tmp_path / "colors.txt"
    fmt.write_colors(colors_path, fmt.CLASS_COLORS)
    assert colors_path.read_text().splitlines()[0] == "Category r g b"
    assert fmt.read_colors(colors_path) == fmt.CLASS_COLORS

    intrinsics_path = tmp_path / "intrinsic.txt"
    fmt.write_intrinsics(intrinsics_path, range(3), (0, 1), fmt.INTRINSICS)
    table = fmt.read_intrinsics(intrinsics_path)
    assert sorted(table) == [(f, c) for f in range(3) for c in (0, 1)]
    assert table[(2, 1)] == pytest.approx(fmt.INTRINSICS)


def test_unparsable_intrinsics_name_the_file_and_line(tmp_path):
    path = tmp_path / "intrinsic.txt"
    path.write_text("frame cameraID K[0,0] K[1,1] K[0,2] K[1,2]\n0 0 725.0 x 620.5 187.0\n")
    with pytest.raises(MtDepthError, match=r"intrinsic.txt: line 2"):
        fmt.read_intrinsics(path)


def test_frame_paths_follow_the_archive_layout():
    assert fmt.frame_path("depth", "Scene01", "clone", "Camera_0", 12).as_posix() == (
        "Scene01/clone/frames/depth/Camera_0/depth_00012.png"
    )
    assert fmt.frame_path("instanceSegmentation", "Scene02", "fog", "Camera_1", 3).as_posix() == (
        "Scene02/fog/frames/instanceSegmentation/Camera_1/instancegt_00003.png"
    )
    assert fmt.textgt_path("Scene06", "rain", "intrinsic.txt").as_posix() == "Scene06/rain/intrinsic.txt"
