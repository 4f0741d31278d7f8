"""KITTI depth-completion files: depth PNGs, intrinsics, and the folder layouts a user's data comes in.

Depth PNG (KITTI devkit): 16-bit grayscale, metres = value / 256, 0 = no measurement.
Sparse depth may also be `.npy` float metres (0, NaN or inf = no measurement).

Accepted inputs (`discover`):
    DIR/image/NAME.png|jpg + DIR/sparse/NAME.png|npy       this project's layout
    DIR/image/ + DIR/velodyne_raw/ [+ DIR/intrinsics/]     KITTI's depth_selection folders; in
        val_selection_cropped the sparse name has `velodyne_raw` where the image's has `image`
    IMAGE SPARSE                                           one pair given as two files
`DIR/intrinsics/NAME.txt` (9 numbers, the 3x3 K row by row) goes with the pair where present.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mtdepth.errors import MtDepthError
from mtdepth.pipeline.files import atomic_write
from mtdepth.pipeline.vkitti2_format import read_rgb

UNITS_PER_METRE = 256.0
MAX_METRES = 65535 / UNITS_PER_METRE  # 255.996 m, the largest depth a KITTI PNG holds
IMAGE_FOLDER = "image"
SPARSE_FOLDERS = ("sparse", "velodyne_raw")
INTRINSICS_FOLDER = "intrinsics"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SPARSE_SUFFIXES = (".png", ".npy")
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L")
LAYOUT_HELP = (
    "expected DIR/image/NAME.png|jpg with DIR/sparse/NAME.png|npy (or KITTI's DIR/velodyne_raw/), "
    "or an image and a sparse file as two arguments"
)


@dataclass(frozen=True)
class Pair:
    """One frame to complete: its output name, image, sparse depth and (optional) intrinsics file."""

    name: str
    image: Path
    sparse: Path
    intrinsics: Path | None = None


def encode_depth(metres: np.ndarray) -> np.ndarray:
    """float metres to KITTI uint16 (round(m * 256)); <= 0 or non-finite -> 0; saturates at 255.996 m.

    A positive depth never becomes 0 (no measurement): below 1/512 m it is stored as 1.
    """
    metres = np.asarray(metres, dtype=np.float64)
    valid = np.isfinite(metres) & (metres > 0)
    units = np.zeros(metres.shape, dtype=np.uint16)
    units[valid] = np.clip(np.rint(metres[valid] * UNITS_PER_METRE), 1, 65535)
    return units


def decode_depth(units: np.ndarray) -> np.ndarray:
    """KITTI uint16 to float32 metres (0 stays 0 = no measurement)."""
    return units.astype(np.float32) / np.float32(UNITS_PER_METRE)


def read_depth_png(path: Path) -> np.ndarray:
    """A KITTI depth PNG as float32 metres (H, W); refuses 8-bit, RGB and other modes, naming the file."""
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            units = np.asarray(image) if mode in _SIXTEEN_BIT else None
    except FileNotFoundError:
        raise MtDepthError(f"{path}: file not found") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise MtDepthError(f"{path}: unreadable or truncated PNG ({exc})") from None
    if units is None:
        raise MtDepthError(
            f"{path}: sparse depth PNG must be 16-bit grayscale (KITTI: value / 256 = metres), got mode {mode}"
        )
    return decode_depth(units.astype(np.uint16, copy=False))


def read_sparse(path: Path) -> np.ndarray:
    """Sparse depth in metres (H, W) float32, 0 = no sample, from a KITTI PNG or a float `.npy`."""
    if path.suffix.lower() != ".npy":
        return read_depth_png(path)
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise MtDepthError(f"{path}: file not found") from None
    except (OSError, ValueError, EOFError) as exc:
        raise MtDepthError(f"{path}: unreadable .npy ({str(exc).splitlines()[0][:100]})") from None
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number):
        raise MtDepthError(f"{path}: sparse .npy must be a 2-D array of metres, got {array.dtype} {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):  # integers are most likely KITTI's units (metres * 256)
        raise MtDepthError(
            f"{path}: sparse .npy holds {array.dtype} values; it must be float metres (KITTI's "
            "16-bit units are metres * 256: divide by 256 and save as float32, or pass the 16-bit PNG)"
        )
    metres = array.astype(np.float32)
    metres[~np.isfinite(metres)] = 0.0
    if (metres < 0).any():
        raise MtDepthError(f"{path}: sparse .npy holds negative depths (0 or NaN mark no sample)")
    return metres


def read_image(path: Path) -> np.ndarray:
    """An RGB image as uint8 (H, W, 3)."""
    return read_rgb(path)


def read_intrinsics(path: Path) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) from a KITTI intrinsics file: the 3x3 K as 9 numbers, row by row."""
    try:
        values = [float(v) for v in path.read_text().split()]
    except OSError as exc:
        raise MtDepthError(f"{path}: cannot read intrinsics ({exc.strerror or exc})") from None
    except ValueError:
        raise MtDepthError(f"{path}: intrinsics must be 9 numbers (the 3x3 K row by row)") from None
    if len(values) != 9 or values[0] <= 0 or values[4] <= 0:
        raise MtDepthError(f"{path}: intrinsics must be 9 numbers (the 3x3 K row by row), got {len(values)}")
    return values[0], values[4], values[2], values[5]


def write_depth_png(path: Path, metres: np.ndarray) -> None:
    """Write float metres as a KITTI 16-bit depth PNG, atomically."""
    units = encode_depth(metres)
    atomic_write(path, lambda tmp: Image.fromarray(units).save(tmp, format="PNG"))


def write_npy(path: Path, metres: np.ndarray) -> None:
    """Write float32 metres as `.npy`, atomically."""

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, metres.astype(np.float32))

    atomic_write(path, save)


def _child(folder: Path, name: str) -> Path | None:
    """The sub-folder of `folder` named `name`, compared case-insensitively."""
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and entry.name.lower() == name:
            return entry
    return None


def _files(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    """Stem -> file for the files in `folder` with one of `suffixes`; two files of one stem are refused."""
    found: dict[str, Path] = {}
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and not entry.name.startswith(".") and entry.suffix.lower() in suffixes:
            if entry.stem in found:
                raise MtDepthError(f"{entry}: two files named {entry.stem} ({found[entry.stem].name} and {entry.name})")
            found[entry.stem] = entry
    return found


def _image_stem(sparse_stem: str) -> str:
    """The image name a sparse file goes with: KITTI's `..._velodyne_raw_...` names become `..._image_...`."""
    return sparse_stem.replace("_velodyne_raw_", "_image_", 1)


def discover_folder(root: Path) -> list[Pair]:
    """Every image/sparse pair of a folder in one of the accepted layouts; any unpaired name is an error."""
    if not root.is_dir():
        raise MtDepthError(f"{root}: input folder not found")
    try:
        image_dir = _child(root, IMAGE_FOLDER)
        sparse_dirs = [path for path in (_child(root, name) for name in SPARSE_FOLDERS) if path]
        if len(sparse_dirs) > 1:
            raise MtDepthError(
                f"{root}: both {' and '.join(p.name + '/' for p in sparse_dirs)}; which is the sparse "
                f"depth is ambiguous, keep one"
            )
        sparse_dir = sparse_dirs[0] if sparse_dirs else None
        if image_dir is None or sparse_dir is None:
            raise MtDepthError(f"{root}: no {'image' if image_dir is None else 'sparse'} folder; {LAYOUT_HELP}")
        images = _files(image_dir, IMAGE_SUFFIXES)
        sparse = {_image_stem(stem): path for stem, path in _files(sparse_dir, SPARSE_SUFFIXES).items()}
        intrinsics_dir = _child(root, INTRINSICS_FOLDER)
        intrinsics = _files(intrinsics_dir, (".txt",)) if intrinsics_dir else {}
    except PermissionError as exc:
        raise MtDepthError(f"{exc.filename}: cannot read folder (permission denied)") from None
    if not images and not sparse:
        raise MtDepthError(f"{root}: no images in {image_dir.name}/ and no depth in {sparse_dir.name}/; {LAYOUT_HELP}")
    for name, path in images.items():
        if name not in sparse:
            raise MtDepthError(f"{path}: no sparse depth {sparse_dir.name}/{name}.png|npy to go with it")
    for name, path in sparse.items():
        if name not in images:
            raise MtDepthError(f"{path}: no image {image_dir.name}/{name}.png|jpg to go with it")
    return [Pair(name, images[name], sparse[name], intrinsics.get(name)) for name in sorted(images)]


def check_out_outside(out: Path, folder: Path) -> None:
    """Refuse an output folder inside (or equal to) an input folder: the next run would read the outputs."""
    if out.resolve().is_relative_to(folder.resolve()):
        raise MtDepthError(
            f"{out}: --out lies inside the input folder {folder}, where the next run would take the "
            "outputs for inputs; choose a folder outside it"
        )


def discover(paths: tuple[Path, ...]) -> list[Pair]:
    """Pairs from one folder, or from an image file and a sparse file."""
    if len(paths) == 1:
        return discover_folder(paths[0])
    if len(paths) != 2:
        raise MtDepthError(f"--input: give one folder or an image and a sparse file, got {len(paths)} paths")
    image, sparse = paths
    for path, suffixes in ((image, IMAGE_SUFFIXES), (sparse, SPARSE_SUFFIXES)):
        if not path.is_file():
            raise MtDepthError(f"{path}: file not found")
        if path.suffix.lower() not in suffixes:
            raise MtDepthError(f"{path}: expected one of {', '.join(suffixes)}")
    return [Pair(image.stem, image, sparse)]


GROUNDTRUTH_FOLDERS = ("groundtruth", "groundtruth_depth")  # this project's name, KITTI's val_selection_cropped


@dataclass(frozen=True)
class Labelled:
    """One frame with its ground truth: the pair, and a KITTI depth PNG of the same size."""

    pair: Pair
    groundtruth: Path


def _groundtruth_stem(stem: str) -> str:
    """The image name a ground-truth file goes with: KITTI's `..._groundtruth_depth_...` become `..._image_...`."""
    return stem.replace("_groundtruth_depth_", "_image_", 1)


def discover_labelled(root: Path) -> list[Labelled]:
    """Every pair of a folder (see `discover_folder`) with its `groundtruth/NAME.png`; a frame without one, or a
    ground truth without a frame, is an error naming the file."""
    pairs = discover_folder(root)
    folders = [path for path in (_child(root, name) for name in GROUNDTRUTH_FOLDERS) if path]
    if len(folders) != 1:
        found = " and ".join(p.name + "/" for p in folders)
        raise MtDepthError(
            f"{root}: {'both ' + found if folders else 'no groundtruth/ folder'}; evaluating a folder "
            f"needs DIR/groundtruth/NAME.png (KITTI 16-bit depth) beside DIR/image/"
        )
    truths = {_groundtruth_stem(stem): path for stem, path in _files(folders[0], (".png",)).items()}
    names = {pair.name for pair in pairs}
    for name, path in truths.items():
        if name not in names:
            raise MtDepthError(f"{path}: no image {IMAGE_FOLDER}/{name}.png|jpg to go with it")
    for pair in pairs:
        if pair.name not in truths:
            raise MtDepthError(f"{pair.image}: no ground truth {folders[0].name}/{pair.name}.png to go with it")
    return [Labelled(pair, truths[pair.name]) for pair in pairs]
