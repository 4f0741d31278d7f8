"""Virtual KITTI 2 file formats: paths, class colours, and exact encoders/decoders of each file.

Encodings (as the dataset's documentation gives them; see docs/vkitti2-encodings.md):
- rgb: 8-bit RGB JPEG.
- depth: single-channel 16-bit PNG, 1 unit = 1 cm along the camera z axis; 65535 = sky/far plane.
- instanceSegmentation: 8-bit palette (mode "P") PNG, 0 = background, else track id + 1.
- classSegmentation: RGB PNG, one colour per class as `colors.txt` lists them.
- textgt: `intrinsic.txt` (frame cameraID fx fy cx cy) and `colors.txt` (Category r g b).

The synthetic generator writes through these functions and the reader reads through them,
so both sides of every round trip are this one module.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from mtdepth.errors import MtDepthError

VERSION_PREFIX = "vkitti_2.0.3_"
DEPTH_UNITS_PER_METRE = 100.0
DEPTH_SKY = 65535
INTRINSICS = (725.0087, 725.0087, 620.5, 187.0)  # fx fy cx cy at 1242x375
IMAGE_SIZE = (1242, 375)  # width, height

# modality -> (folder under frames/, file prefix, extension); the archive is VERSION_PREFIX + modality.
MODALITIES = {
    "rgb": ("rgb", "rgb", "jpg"),
    "depth": ("depth", "depth", "png"),
    "classSegmentation": ("classSegmentation", "classgt", "png"),
    "instanceSegmentation": ("instanceSegmentation", "instancegt", "png"),
}
TEXTGT = "textgt"

# colors.txt of Virtual KITTI 2 (Category r g b). Pedestrian is not a VKITTI2 class: the
# synthetic generator adds it and lists it in its own colors.txt, which the reader prefers.
CLASS_COLORS: dict[str, tuple[int, int, int]] = {
    "Terrain": (210, 0, 200),
    "Sky": (90, 200, 255),
    "Tree": (0, 199, 0),
    "Vegetation": (90, 240, 0),
    "Building": (140, 140, 140),
    "Road": (100, 60, 100),
    "GuardRail": (250, 100, 255),
    "TrafficSign": (255, 255, 0),
    "TrafficLight": (200, 200, 0),
    "Pole": (255, 130, 0),
    "Misc": (80, 80, 80),
    "Truck": (160, 60, 60),
    "Car": (255, 127, 80),
    "Van": (0, 139, 139),
    "Undefined": (0, 0, 0),
}
PEDESTRIAN_COLOR = (220, 20, 60)
INSTANCE_CLASSES = ("Car", "Van", "Truck", "Pedestrian")  # classes that carry instance ids


def archive_dir(root: Path, modality: str) -> Path:
    """The folder one archive unpacks to under a dataset root (`vkitti_2.0.3_rgb`, ..., `vkitti_2.0.3_textgt`)."""
    return Path(root) / f"{VERSION_PREFIX}{modality}"


def frame_path(modality: str, scene: str, condition: str, camera: str, index: int) -> Path:
    """Path of one frame's file relative to its modality's archive root."""
    folder, prefix, ext = MODALITIES[modality]
    return Path(scene, condition, "frames", folder, camera, f"{prefix}_{index:05d}.{ext}")


def textgt_path(scene: str, condition: str, name: str) -> Path:
    """Path of a textgt file (intrinsic.txt, colors.txt, ...) relative to the textgt root."""
    return Path(scene, condition, name)


def _open_image(path: Path) -> Image.Image:
    """Open and fully decode an image, or raise MtDepthError naming the file."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        image = Image.open(io.BytesIO(data))
        image.load()
    except FileNotFoundError:
        raise MtDepthError(f"{path}: file not found") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise MtDepthError(f"{path}: unreadable or truncated image ({exc})") from None
    return image


def read_rgb(path: Path) -> np.ndarray:
    """RGB image as uint8 (H, W, 3)."""
    image = _open_image(path)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def write_rgb(path: Path, rgb: np.ndarray, quality: int = 95) -> None:
    """Write uint8 (H, W, 3) as JPEG."""
    Image.fromarray(rgb, "RGB").save(path, format="JPEG", quality=quality)


def read_depth_units(path: Path) -> np.ndarray:
    """Raw depth PNG as uint16 (H, W) in centimetres; refuses anything but 16-bit grayscale."""
    image = _open_image(path)
    if image.mode not in ("I;16", "I;16B", "I;16L"):
        raise MtDepthError(f"{path}: depth PNG must be 16-bit grayscale, got mode {image.mode}")
    return np.asarray(image).astype(np.uint16, copy=False)


def depth_metres(units: np.ndarray, max_depth: float) -> np.ndarray:
    """Centimetre units to float32 metres; sky (65535) and beyond `max_depth` become 0 (invalid)."""
    metres = units.astype(np.float32) / np.float32(DEPTH_UNITS_PER_METRE)
    metres[(units == DEPTH_SKY) | (metres > max_depth)] = 0.0
    return metres


def encode_depth(metres: np.ndarray) -> np.ndarray:
    """float metres (inf or nan = sky) to uint16 centimetres, saturating at 655.34 m."""
    units = np.full(metres.shape, DEPTH_SKY, dtype=np.uint16)
    finite = np.isfinite(metres)
    units[finite] = np.clip(np.rint(metres[finite] * DEPTH_UNITS_PER_METRE), 1, DEPTH_SKY - 1)
    return units


def write_depth_units(path: Path, units: np.ndarray) -> None:
    """Write uint16 (H, W) centimetres as a 16-bit grayscale PNG."""
    if units.dtype != np.uint16:
        raise ValueError("depth units must be uint16")
    Image.fromarray(units).save(path, format="PNG")


def read_instances(path: Path) -> np.ndarray:
    """Instance ids as uint8 (H, W): 0 background, else track id + 1 (palette indices, not colours)."""
    image = _open_image(path)
    if image.mode not in ("P", "L"):
        raise MtDepthError(f"{path}: instance PNG must be a palette (P) or 8-bit (L) image, got mode {image.mode}")
    return np.asarray(image, dtype=np.uint8)


def instance_palette() -> list[int]:
    """A 256-entry palette: black background, distinct colours for ids (display only)."""
    rng = np.random.default_rng(0)
    colours = rng.integers(40, 256, size=(256, 3), dtype=np.uint8)
    colours[0] = 0
    return colours.reshape(-1).tolist()


def write_instances(path: Path, ids: np.ndarray) -> None:
    """Write uint8 (H, W) instance ids as a palette PNG."""
    if ids.dtype != np.uint8:
        raise ValueError("instance ids must be uint8")
    image = Image.fromarray(ids, "P")
    image.putpalette(instance_palette())
    image.save(path, format="PNG")


read_class_rgb = read_rgb  # class segmentation: uint8 (H, W, 3) colours, read as any RGB PNG


def write_class_rgb(path: Path, colours: np.ndarray) -> None:
    """Write uint8 (H, W, 3) class colours as an RGB PNG."""
    Image.fromarray(colours, "RGB").save(path, format="PNG")


def class_mask(class_rgb: np.ndarray, colours: dict[str, tuple[int, int, int]], names: tuple[str, ...]) -> np.ndarray:
    """Boolean (H, W): pixels whose colour is one of the classes `names`."""
    packed = (class_rgb[..., 0].astype(np.int32) << 16) | (class_rgb[..., 1].astype(np.int32) << 8) | class_rgb[..., 2]
    wanted = [(r << 16) | (g << 8) | b for name, (r, g, b) in colours.items() if name in names]
    return np.isin(packed, wanted)


def _table_rows(path: Path):
    """(line number, line, fields) of each non-empty row of a textgt table, header skipped."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise MtDepthError(f"{path}: cannot read ({exc.strerror})") from None
    for number, line in enumerate(lines[1:], start=2):
        if line.split():
            yield number, line, line.split()


def read_colors(path: Path) -> dict[str, tuple[int, int, int]]:
    """Parse colors.txt (header `Category r g b`)."""
    colours = {}
    for number, line, parts in _table_rows(path):
        if len(parts) != 4 or not all(p.isdigit() for p in parts[1:]):
            raise MtDepthError(f"{path}: line {number} is not 'Category r g b': {line!r}")
        colours[parts[0]] = (int(parts[1]), int(parts[2]), int(parts[3]))
    return colours


def write_colors(path: Path, colours: dict[str, tuple[int, int, int]]) -> None:
    """Write colors.txt."""
    rows = ["Category r g b"] + [f"{name} {r} {g} {b}" for name, (r, g, b) in colours.items()]
    path.write_text("\n".join(rows) + "\n")


def read_intrinsics(path: Path) -> dict[tuple[int, int], tuple[float, float, float, float]]:
    """Parse intrinsic.txt into {(frame, camera id): (fx, fy, cx, cy)}."""
    table = {}
    for number, line, parts in _table_rows(path):
        try:
            frame, camera = int(parts[0]), int(parts[1])
            fx, fy, cx, cy = (float(p) for p in parts[2:6])
        except (ValueError, IndexError):
            raise MtDepthError(f"{path}: line {number} is not 'frame cameraID fx fy cx cy': {line!r}") from None
        table[(frame, camera)] = (fx, fy, cx, cy)
    return table


def write_intrinsics(path: Path, frames: range, cameras: tuple[int, ...], k: tuple[float, float, float, float]) -> None:
    """Write intrinsic.txt with one row per frame and camera."""
    rows = ["frame cameraID K[0,0] K[1,1] K[0,2] K[1,2]"]
    rows += [f"{f} {c} {k[0]:.4f} {k[1]:.4f} {k[2]:.4f} {k[3]:.4f}" for f in frames for c in cameras]
    path.write_text("\n".join(rows) + "\n")
