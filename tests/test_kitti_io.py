"""KITTI depth PNGs, intrinsics, the accepted folder layouts, and the PLY writer."""

import numpy as np
import pytest
from PIL import Image

from mtdepth.errors import MtDepthError
from mtdepth.pipeline import kitti_io
from mtdepth.pipeline.pointcloud import back_project, write_ply

K_LINE = "721.5377 0 609.5593 0 721.5377 172.854 0 0 1\n"  # a KITTI intrinsics file: 3x3 K, row by row


def test_depth_png_round_trip_within_a_256th_of_a_metre(tmp_path):
    rng = np.random.default_rng(0)
    metres = rng.uniform(0.01, 255.0, (37, 53)).astype(np.float32)
    metres[::3, ::5] = 0.0
    path = tmp_path / "d.png"
    kitti_io.write_depth_png(path, metres)
    with Image.open(path) as image:
        assert image.mode == "I;16"
    back = kitti_io.read_depth_png(path)
    assert back.dtype == np.float32 and back.shape == metres.shape
    assert np.abs(back - metres).max() <= 1 / 512 + 1e-6  # rounding: half a unit
    assert (back[::3, ::5] == 0).all() and (back[metres > 0] > 0).all()
    assert list(tmp_path.iterdir()) == [path]  # no temporary left beside it


def test_encoding_edges():
    units = kitti_io.encode_depth(np.array([0.0, -1.0, np.nan, np.inf, 1e-4, 1.0, 300.0]))
    assert units.tolist() == [0, 0, 0, 0, 1, 256, 65535]  # tiny positive stays a measurement; saturates


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_eight_bit_or_rgb_sparse_png_is_refused(tmp_path, mode):
    path = tmp_path / "s.png"
    Image.new(mode, (8, 4)).save(path)
    with pytest.raises(MtDepthError, match=f"s.png: sparse depth PNG must be 16-bit grayscale.*mode {mode}"):
        kitti_io.read_sparse(path)


def test_corrupt_png_names_the_file(tmp_path):
    path = tmp_path / "bad.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(MtDepthError, match="bad.png: unreadable"):
        kitti_io.read_sparse(path)


def test_npy_sparse(tmp_path):
    path = tmp_path / "s.npy"
    np.save(path, np.array([[0.0, np.nan, 5.5]], dtype=np.float64))
    assert kitti_io.read_sparse(path).tolist() == [[0.0, 0.0, 5.5]]
    np.save(path, np.array([[1.0, -2.0]]))
    with pytest.raises(MtDepthError, match="s.npy: sparse .npy holds negative"):
        kitti_io.read_sparse(path)
    np.save(path, np.zeros((2, 3, 4)))
    with pytest.raises(MtDepthError, match=r"s.npy: sparse .npy must be a 2-D array"):
        kitti_io.read_sparse(path)


def test_intrinsics(tmp_path):
    path = tmp_path / "k.txt"
    path.write_text(K_LINE)
    assert kitti_io.read_intrinsics(path) == (721.5377, 721.5377, 609.5593, 172.854)
    path.write_text("1 2 3")
    with pytest.raises(MtDepthError, match="k.txt: intrinsics must be 9 numbers"):
        kitti_io.read_intrinsics(path)


def _touch(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def test_sparse_layout(tmp_path):
    _touch(tmp_path / "image", "a.png", "b.jpg")
    _touch(tmp_path / "sparse", "a.png", "b.npy")
    pairs = kitti_io.discover((tmp_path,))
    assert [(p.name, p.image.name, p.sparse.name, p.intrinsics) for p in pairs] == [
        ("a", "a.png", "a.png", None),
        ("b", "b.jpg", "b.npy", None),
    ]


def test_kitti_val_selection_layout_pairs_renamed_files(tmp_path):
    stem = "2011_09_26_drive_0002_sync_{}_0000000005_image_02"
    _touch(tmp_path / "image", stem.format("image") + ".png")
    _touch(tmp_path / "velodyne_raw", stem.format("velodyne_raw") + ".png")
    _touch(tmp_path / "groundtruth_depth", stem.format("groundtruth_depth") + ".png")  # not an input: ignored
    (tmp_path / "intrinsics").mkdir()
    (tmp_path / "intrinsics" / (stem.format("image") + ".txt")).write_text(K_LINE)
    [pair] = kitti_io.discover((tmp_path,))
    assert pair.name == stem.format("image") and pair.sparse.parent.name == "velodyne_raw"
    assert pair.intrinsics.name == stem.format("image") + ".txt"


def test_kitti_anonymous_test_layout(tmp_path):
    _touch(tmp_path / "image", "0000000000.png", "0000000001.png")
    _touch(tmp_path / "velodyne_raw", "0000000000.png", "0000000001.png")
    _touch(tmp_path / "intrinsics", "0000000000.txt", "0000000001.txt")
    pairs = kitti_io.discover((tmp_path,))
    assert [p.name for p in pairs] == ["0000000000", "0000000001"] and all(p.intrinsics for p in pairs)


def test_single_pair(tmp_path):
    _touch(tmp_path, "rgb.jpg", "lidar.npy")
    [pair] = kitti_io.discover((tmp_path / "rgb.jpg", tmp_path / "lidar.npy"))
    assert pair.name == "rgb" and pair.sparse.name == "lidar.npy"
    with pytest.raises(MtDepthError, match="lidar.npy: expected one of .png, .jpg, .jpeg"):
        kitti_io.discover((tmp_path / "lidar.npy", tmp_path / "rgb.jpg"))
    with pytest.raises(MtDepthError, match="nope.png: file not found"):
        kitti_io.discover((tmp_path / "rgb.jpg", tmp_path / "nope.png"))


def test_layout_errors_name_the_file(tmp_path):
    with pytest.raises(MtDepthError, match="missing: input folder not found"):
        kitti_io.discover((tmp_path / "missing",))
    with pytest.raises(MtDepthError, match="no image folder"):
        kitti_io.discover((tmp_path,))
    _touch(tmp_path / "image")
    _touch(tmp_path / "sparse")
    with pytest.raises(MtDepthError, match="no images in image/ and no depth in sparse/"):
        kitti_io.discover((tmp_path,))
    _touch(tmp_path / "image", "a.png", "b.png")
    _touch(tmp_path / "sparse", "a.png")
    with pytest.raises(MtDepthError, match=r"image/b.png: no sparse depth sparse/b.png\|npy"):
        kitti_io.discover((tmp_path,))
    _touch(tmp_path / "sparse", "b.png", "c.npy")
    with pytest.raises(MtDepthError, match=r"sparse/c.npy: no image image/c.png\|jpg"):
        kitti_io.discover((tmp_path,))
    _touch(tmp_path / "velodyne_raw")
    with pytest.raises(MtDepthError, match="both sparse/ and velodyne_raw/"):
        kitti_io.discover((tmp_path,))


def test_back_projection_and_ply(tmp_path):
    depth = np.zeros((4, 6), np.float32)
    depth[3, 5], depth[0, 0] = 10.0, 2.0
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[3, 5] = (255, 128, 1)
    vertices = back_project(depth, rgb, (100.0, 50.0, 2.0, 1.0))
    assert vertices.size == 2
    far = vertices[vertices["z"] == 10.0][0]
    assert (far["x"], far["y"]) == pytest.approx(((5 - 2.0) * 10 / 100, (3 - 1.0) * 10 / 50))
    assert (far["red"], far["green"], far["blue"]) == (255, 128, 1)
    path = tmp_path / "c.ply"
    write_ply(path, vertices)
    data = path.read_bytes()
    header, body = data.split(b"end_header\n")
    assert b"format binary_little_endian 1.0" in header and b"element vertex 2" in header
    assert len(body) == 2 * (3 * 4 + 3)
