"""File writing: frames, textgt and the whole dataset in the Virtual KITTI 2 layout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from mtdepth.pipeline import vkitti2_format as vk
from mtdepth.pipeline.synth.layout import build_street
from mtdepth.pipeline.synth.raycast import cast_frame
from mtdepth.pipeline.synth.shade import SynthFrame, shade_frame
from mtdepth.pipeline.synth.world import CAMERA, CAMERA_IDS, CLASS_COLOURS, Camera, make_camera

MANIFEST = "mtdepth-synth.json"  # the params a synthetic tree was written with (readers ignore it)


def modality_path(root: Path, modality: str, scene: str, condition: str, index: int) -> Path:
    """Where frame `index` of one modality goes under the dataset root."""
    return vk.archive_dir(root, modality) / vk.frame_path(modality, scene, condition, CAMERA, index)


def write_textgt(root: Path, scene: str, condition: str, frames: int, camera: Camera) -> None:
    """intrinsic.txt (both cameras, every frame) and colors.txt (with Pedestrian) of one sequence."""
    folder = vk.archive_dir(root, vk.TEXTGT)
    intrinsic = folder / vk.textgt_path(scene, condition, "intrinsic.txt")
    intrinsic.parent.mkdir(parents=True, exist_ok=True)
    vk.write_intrinsics(intrinsic, range(frames), CAMERA_IDS, camera.intrinsics)
    vk.write_colors(folder / vk.textgt_path(scene, condition, "colors.txt"), CLASS_COLOURS)


def write_frame(root: Path, scene: str, condition: str, index: int, frame: SynthFrame) -> None:
    """Write one frame's RGB, depth, class and instance files."""
    for modality, write, data in (
        ("rgb", vk.write_rgb, frame.rgb),
        ("depth", vk.write_depth_units, vk.encode_depth(frame.depth)),
        ("classSegmentation", vk.write_class_rgb, frame.class_rgb),
        ("instanceSegmentation", vk.write_instances, frame.instances),
    ):
        path = modality_path(root, modality, scene, condition, index)
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path, data)


def write_dataset(
    root: Path, seed: int, scenes: tuple[str, ...], conditions: tuple[str, ...], frames: int, width: int, height: int
) -> Iterator[tuple[str, str, int]]:
    """Write the whole dataset under `root`; yields (scene, condition, index) after each frame.

    Each frame is cast once and shaded under every condition, as the geometry is shared.
    """
    camera = make_camera(width, height)
    for scene in scenes:
        street = build_street(seed, scene, frames)
        for condition in conditions:
            write_textgt(root, scene, condition, frames, camera)
        for index in range(frames):
            geometry = cast_frame(street, camera, index)
            for condition in conditions:
                write_frame(root, scene, condition, index, shade_frame(street, camera, geometry, condition))
                yield scene, condition, index


def read_manifest(root: str | Path) -> dict | None:
    """The synth params (seed, scenes, frames...) a synthetic tree records; None for other data."""
    path = Path(root) / MANIFEST
    return json.loads(path.read_text())["synth"] if path.is_file() else None
