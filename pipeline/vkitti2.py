"""Virtual KITTI 2 layout trees: index frames, then decode, check and resize one frame.

Two layouts are read, with folder and file names matched case-insensitively:

- split: ROOT holds one folder per archive (`vkitti_2.0.3_rgb/`, `vkitti_2.0.3_depth/`,
  `vkitti_2.0.3_instanceSegmentation/`, `vkitti_2.0.3_classSegmentation/`,
  `vkitti_2.0.3_textgt/`; the version part may be absent), each holding
  `SceneXX/<condition>/frames/<modality>/Camera_K/<prefix>_NNNNN.<ext>`
  (textgt: `SceneXX/<condition>/intrinsic.txt`);
- merged: every archive unpacked into ROOT (`ROOT/SceneXX/<condition>/frames/rgb/...`,
  `ROOT/SceneXX/<condition>/intrinsic.txt`).

File encodings live in `vkitti2_format`; this module only finds files and resizes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mtdepth.errors import MtDepthError
from mtdepth.pipeline import vkitti2_format as fmt
from mtdepth.pipeline.masks import foreground

# FrameRef field -> the modality's name in vkitti2_format.MODALITIES.
FIELD_MODALITY = {
    "rgb": "rgb",
    "depth": "depth",
    "instance": "instanceSegmentation",
    "classgt": "classSegmentation",
}
# `require` accepts FrameRef field names and vkitti2_format modality names.
_REQUIRE_NAMES = {**{name: name for name in FIELD_MODALITY}, **{m: f for f, m in FIELD_MODALITY.items()}}
# lower-cased folder under frames/ -> FrameRef field
_FOLDER_FIELD = {fmt.MODALITIES[m][0].lower(): f for f, m in FIELD_MODALITY.items()}
_FILE_PATTERNS = {
    field: re.compile(rf"{fmt.MODALITIES[m][1]}_(\d+)\.{fmt.MODALITIES[m][2]}", re.IGNORECASE)
    for field, m in FIELD_MODALITY.items()
}
_ARCHIVE_NAMES = {fmt.MODALITIES[m][0].lower(): f for f, m in FIELD_MODALITY.items()} | {fmt.TEXTGT.lower(): fmt.TEXTGT}
# An archive folder: optional `vkitti_<version>_` then the modality, e.g. vkitti_2.0.3_rgb.
_ARCHIVE_PATTERN = re.compile(rf"(?:vkitti(?:_[\d.]+)?_)?({'|'.join(_ARCHIVE_NAMES)})", re.IGNORECASE)
_SCENE_PATTERN = re.compile(r"scene(\d+)", re.IGNORECASE)
_CAMERA_PATTERN = re.compile(r"camera_(\d+)", re.IGNORECASE)
FRAMES_FOLDER = "frames"
INTRINSICS_FILE = "intrinsic.txt"
FRAME_DIGITS = 5  # frame numbers in file names and keys: 00012

EXPECTED_LAYOUT = (
    "expected {root}/vkitti_2.0.3_rgb/SceneXX/<condition>/frames/rgb/Camera_K/rgb_NNNNN.jpg "
    "(one folder per archive) or {root}/SceneXX/<condition>/frames/rgb/Camera_K/rgb_NNNNN.jpg (merged)"
)


@dataclass(frozen=True)
class FrameRef:
    """Where one frame's files are; None where a modality is absent."""

    scene: str
    condition: str
    camera: str
    index: int
    rgb: Path
    depth: Path | None
    instance: Path | None
    classgt: Path | None
    intrinsics: tuple[float, float, float, float] | None  # fx, fy, cx, cy at the file's size

    @property
    def key(self) -> str:
        """Frame id, e.g. `Scene01/clone/Camera_0/00012`."""
        return f"{self.scene}/{self.condition}/{self.camera}/{self.index:0{FRAME_DIGITS}d}"


@dataclass
class DecodedFrame:
    """One frame resized: RGB, depth in metres (0 = invalid), instance ids and their mask."""

    rgb: np.ndarray  # uint8 (H, W, 3)
    depth: np.ndarray  # float32 (H, W) metres, 0 = invalid (sky, beyond max depth)
    instances: np.ndarray | None  # uint8 (H, W): 0 background, else track id + 1
    gt_mask: np.ndarray | None  # uint8 (H, W): 1 where instances > 0
    intrinsics: tuple[float, float, float, float] | None  # scaled to (H, W)
    source: tuple[np.ndarray, np.ndarray] | None = None  # full-size RGB and depth metres, when asked for


@dataclass
class _Condition:
    """One scene/condition folder as found on disk, under one or more roots."""

    frame_dirs: list[tuple[Path, Path]]  # (condition folder, the root it lies under)
    intrinsics: Path | None = None


def _subdirs(path: Path) -> list[os.DirEntry]:
    """Sub-folders of `path` sorted by name (none when it is not a readable folder)."""
    try:
        with os.scandir(path) as entries:
            return sorted((e for e in entries if e.is_dir()), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []


def _child(path: Path, name: str, want_dir: bool = True) -> Path | None:
    """The entry of `path` named `name`, compared case-insensitively."""
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.name.lower() == name.lower() and entry.is_dir() == want_dir:
                    return Path(entry.path)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        pass
    return None


def _scan(root: Path) -> tuple[dict[str, dict[str, _Condition]], dict[str, Path]]:
    """Scene -> condition -> folders, and the archive roots (field or textgt -> folder)."""
    archives: dict[str, Path] = {}
    for entry in _subdirs(root):
        match = _ARCHIVE_PATTERN.fullmatch(entry.name)
        if match:
            archives.setdefault(_ARCHIVE_NAMES[match.group(1).lower()], Path(entry.path))
    frame_roots = [root] + [path for name, path in archives.items() if name != fmt.TEXTGT]
    tree: dict[str, dict[str, _Condition]] = {}
    for base in frame_roots:
        for scene_entry in _subdirs(base):
            scene_match = _SCENE_PATTERN.fullmatch(scene_entry.name)
            if not scene_match:
                continue
            scene = f"Scene{scene_match.group(1)}"
            for cond_entry in _subdirs(Path(scene_entry.path)):
                condition = cond_entry.name.lower()
                tree.setdefault(scene, {}).setdefault(condition, _Condition([]))
                tree[scene][condition].frame_dirs.append((Path(cond_entry.path), base))
    for scene, conditions in tree.items():
        for condition, found in conditions.items():
            textgt_dirs = [folder for folder, _ in found.frame_dirs]
            if fmt.TEXTGT in archives:
                scene_dir = _child(archives[fmt.TEXTGT], scene)
                cond_dir = _child(scene_dir, condition) if scene_dir else None
                textgt_dirs.append(cond_dir)
            for folder in filter(None, textgt_dirs):
                found.intrinsics = found.intrinsics or _child(folder, INTRINSICS_FILE, want_dir=False)
    return tree, archives


def _select(requested: tuple[str, ...], found: list[str], what: str, root: Path) -> list[str]:
    """The found names matching `requested` (all when empty); unknown names raise."""
    if not requested:
        return sorted(found)
    by_lower = {name.lower(): name for name in found}
    for name in requested:
        if name.lower() not in by_lower:
            raise MtDepthError(f"{root}: {what} {name!r} not found (found: {', '.join(sorted(found)) or 'none'})")
    return sorted({by_lower[name.lower()] for name in requested})


def _list_frames(found: _Condition, camera: str) -> tuple[dict[str, dict[int, Path]], set[str]]:
    """Field -> frame index -> file for one camera, and every camera folder seen."""
    files: dict[str, dict[int, Path]] = {field: {} for field in FIELD_MODALITY}
    cameras: set[str] = set()
    for cond_dir, _ in found.frame_dirs:
        frames_dir = _child(cond_dir, FRAMES_FOLDER)
        if frames_dir is None:
            continue
        for modality_entry in _subdirs(frames_dir):
            field = _FOLDER_FIELD.get(modality_entry.name.lower())
            if field is None:
                continue
            for camera_entry in _subdirs(Path(modality_entry.path)):
                camera_match = _CAMERA_PATTERN.fullmatch(camera_entry.name)
                if camera_match is None:
                    continue
                found_camera = f"Camera_{int(camera_match.group(1))}"
                cameras.add(found_camera)
                if found_camera != camera:
                    continue
                pattern = _FILE_PATTERNS[field]
                with os.scandir(camera_entry.path) as entries:
                    for entry in entries:
                        match = pattern.fullmatch(entry.name)
                        if match:
                            files[field].setdefault(int(match.group(1)), Path(entry.path))
    return files, cameras


def _expected_path(
    field: str,
    scene: str,
    condition: str,
    camera: str,
    index: int,
    rgb_base: Path,
    root: Path,
    archives: dict[str, Path],
) -> Path:
    """Where a frame's file of `field` should be, beside its RGB file."""
    modality = FIELD_MODALITY[field]
    if rgb_base == root:
        base = root
    else:
        base = archives.get(field, fmt.archive_dir(root, modality))
    return base / fmt.frame_path(modality, scene, condition, camera, index)


def index_frames(
    root: str | Path,
    scenes: tuple[str, ...] = (),
    conditions: tuple[str, ...] = (),
    camera: str = "Camera_0",
    first_frame: int = 0,
    last_frame: int | None = None,
    require: tuple[str, ...] = ("rgb", "depth"),
) -> list[FrameRef]:
    """Every RGB frame of `camera` under `root` in the selection, sorted by (scene, condition, index).

    `require` names modalities (rgb, depth, instance, classgt, or instanceSegmentation,
    classSegmentation) whose file must exist for every frame; `last_frame` is inclusive.
    """
    root = Path(root)
    unknown = [name for name in require if name not in _REQUIRE_NAMES]
    if unknown:
        raise ValueError(f"unknown modalities in require: {unknown} (known: {sorted(_REQUIRE_NAMES)})")
    required = {_REQUIRE_NAMES[name] for name in require}
    camera_match = _CAMERA_PATTERN.fullmatch(camera)
    if camera_match is None:
        raise MtDepthError(f"camera must be Camera_K (K a number), got {camera!r}")
    camera_id = int(camera_match.group(1))
    camera = f"Camera_{camera_id}"
    if not root.exists():
        raise MtDepthError(f"{root}: dataset root not found")
    if not root.is_dir():
        raise MtDepthError(f"{root}: dataset root is not a folder")

    tree, archives = _scan(root)
    if not tree:
        raise MtDepthError(f"{root}: no Virtual KITTI 2 frames found; {EXPECTED_LAYOUT.format(root=root)}")
    chosen_scenes = _select(scenes, list(tree), "scene", root)
    all_conditions = sorted({c for s in chosen_scenes for c in tree[s]})
    chosen_conditions = _select(conditions, all_conditions, "condition", root)

    refs: list[FrameRef] = []
    cameras_seen: set[str] = set()
    frames_seen = 0
    for scene in chosen_scenes:
        for condition in chosen_conditions:
            found = tree[scene].get(condition)
            if found is None:
                continue
            files, cameras = _list_frames(found, camera)
            cameras_seen |= cameras
            frames_seen += len(files["rgb"])
            table = fmt.read_intrinsics(found.intrinsics) if found.intrinsics else None
            for index in sorted(files["rgb"]):
                if index < first_frame or (last_frame is not None and index > last_frame):
                    continue
                rgb = files["rgb"][index]
                paths = {field: files[field].get(index) for field in FIELD_MODALITY}
                for field in sorted(required):
                    if paths[field] is None:
                        rgb_base = next(base for folder, base in found.frame_dirs if rgb.is_relative_to(folder))
                        expected = _expected_path(field, scene, condition, camera, index, rgb_base, root, archives)
                        raise MtDepthError(f"{expected}: missing (the frame's RGB is {rgb})")
                intrinsics = None
                if table is not None:
                    intrinsics = table.get((index, camera_id))
                    if intrinsics is None:
                        raise MtDepthError(f"{found.intrinsics}: no row for frame {index} camera {camera_id}")
                refs.append(FrameRef(scene, condition, camera, index, intrinsics=intrinsics, **paths))
    if refs:
        return refs
    if frames_seen:
        last = "end" if last_frame is None else str(last_frame)
        raise MtDepthError(f"{root}: none of the {frames_seen} frames selected is numbered {first_frame}..{last}")
    if cameras_seen:
        raise MtDepthError(
            f"{root}: no RGB frames of {camera} in the selection (cameras found: {', '.join(sorted(cameras_seen))})"
        )
    raise MtDepthError(f"{root}: no Virtual KITTI 2 frames found; {EXPECTED_LAYOUT.format(root=root)}")


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image from its header."""
    try:
        with Image.open(path) as image:
            return image.size
    except OSError as exc:
        raise MtDepthError(f"{path}: unreadable image ({exc})") from None


def resize_nearest(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of (H, W) or (H, W, C): every output value is a source value."""
    src_height, src_width = array.shape[:2]
    rows = np.minimum(((np.arange(height) + 0.5) * (src_height / height)).astype(np.intp), src_height - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * (src_width / width)).astype(np.intp), src_width - 1)
    return array[rows[:, None], cols]


def resize_area(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Area-averaging resize (PIL BOX) of uint8 (H, W) or (H, W, 3), or float32 (H, W)."""
    if (image.shape[0], image.shape[1]) == (height, width):
        return image.copy()
    resized = Image.fromarray(image).resize((width, height), Image.Resampling.BOX)
    return np.asarray(resized, dtype=image.dtype)


def _check_size(path: Path, array: np.ndarray, rgb: np.ndarray, rgb_path: Path) -> None:
    """Raise unless `array` has the RGB image's height and width."""
    if array.shape[:2] != rgb.shape[:2]:
        raise MtDepthError(
            f"{path}: size {array.shape[1]}x{array.shape[0]} differs from the RGB's "
            f"{rgb.shape[1]}x{rgb.shape[0]} ({rgb_path})"
        )


def _read(reader: Callable[[Path], np.ndarray], path: Path) -> np.ndarray:
    """`reader(path)`, with an image library reaching for a missing optional plugin on an
    unreadable file (ultralytics patches PIL to try pi_heif) reported as that file's error."""
    try:
        return reader(path)
    except ImportError:
        raise MtDepthError(f"{path}: unreadable image (no decoder recognises it)") from None


def _read_sources(ref: FrameRef) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """RGB, raw depth units and instance ids at full size, sizes checked against the RGB."""
    if ref.depth is None:
        raise MtDepthError(f"{ref.rgb}: frame {ref.key} has no depth file")
    rgb = _read(fmt.read_rgb, ref.rgb)
    units = _read(fmt.read_depth_units, ref.depth)
    _check_size(ref.depth, units, rgb, ref.rgb)
    instances = None
    if ref.instance is not None:
        instances = _read(fmt.read_instances, ref.instance)
        _check_size(ref.instance, instances, rgb, ref.rgb)
    return rgb, units, instances


def verify_frame(ref: FrameRef) -> None:
    """Decode every file of a frame at full size (class colours too); raise on the first bad one."""
    rgb, _, _ = _read_sources(ref)
    if ref.classgt is not None:
        _check_size(ref.classgt, fmt.read_class_rgb(ref.classgt), rgb, ref.rgb)


def scale_intrinsics(
    intrinsics: tuple[float, float, float, float], src_size: tuple[int, int], height: int, width: int
) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) of an image of `src_size` (width, height) resized to (height, width)."""
    fx, fy, cx, cy = intrinsics
    scale_x, scale_y = width / src_size[0], height / src_size[1]
    return (fx * scale_x, fy * scale_y, cx * scale_x, cy * scale_y)


def load_frame(ref: FrameRef, height: int, width: int, max_depth: float, keep_source: bool = False) -> DecodedFrame:
    """Decode one frame and resize it: RGB by area, depth and instances by nearest neighbour.

    Depth beyond `max_depth` metres, and sky (65535), becomes 0 (invalid). With `keep_source` the
    full-size RGB and depth come along (a sparse pattern simulated at the source resolution).
    """
    rgb, units, instances = _read_sources(ref)
    src_size = (rgb.shape[1], rgb.shape[0])
    depth = fmt.depth_metres(resize_nearest(units, height, width), max_depth)
    gt_mask = None
    if instances is not None:
        instances = resize_nearest(instances, height, width)
        gt_mask = foreground(instances)
    intrinsics = scale_intrinsics(ref.intrinsics, src_size, height, width) if ref.intrinsics else None
    source = (rgb, fmt.depth_metres(units, max_depth)) if keep_source else None
    return DecodedFrame(resize_area(rgb, height, width), depth, instances, gt_mask, intrinsics, source)
