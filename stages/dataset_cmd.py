"""`mtdepth dataset ROOT`: what a Virtual KITTI 2 layout tree holds, and with --check whether it decodes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from mtdepth.log import progress_bar
from mtdepth.params import DataParams
from mtdepth.pipeline.vkitti2 import FIELD_MODALITY, FrameRef, image_size, index_frames, verify_frame
from mtdepth.stages.options import comma_list

DEFAULTS = DataParams()


def _summary(root: Path, camera: str, refs: list[FrameRef]) -> list[str]:
    """Lines describing the frames: counts per scene and condition, sizes, modalities."""
    counts = Counter((ref.scene, ref.condition) for ref in refs)
    scenes = sorted({scene for scene, _ in counts})
    conditions = sorted({condition for _, condition in counts})
    firsts = {}
    for ref in refs:
        firsts.setdefault((ref.scene, ref.condition), ref)
    sizes = sorted({image_size(ref.rgb) for ref in firsts.values()})
    present = {field: sum(getattr(ref, field) is not None for ref in refs) for field in FIELD_MODALITY}
    present["intrinsics"] = sum(ref.intrinsics is not None for ref in refs)
    lines = [
        f"{root}: {len(refs)} frames of {camera}, {len(scenes)} scenes x {len(conditions)} conditions",
        "image size: " + ", ".join(f"{width}x{height}" for width, height in sizes),
        "modalities (frames with the file): " + ", ".join(f"{name} {count}" for name, count in present.items()),
        "",
        "| scene | " + " | ".join(conditions) + " | total |",
        "|---" * (len(conditions) + 2) + "|",
    ]
    for scene in scenes:
        row = [str(counts[(scene, condition)]) for condition in conditions]
        lines.append(f"| {scene} | " + " | ".join(row) + f" | {sum(counts[(scene, c)] for c in conditions)} |")
    totals = [str(sum(counts[(scene, condition)] for scene in scenes)) for condition in conditions]
    lines.append("| total | " + " | ".join(totals) + f" | {len(refs)} |")
    return lines


@click.command("dataset")
@click.argument("root", type=click.Path(path_type=Path))
@click.option("--scenes", default="", help="Comma-separated scenes, e.g. Scene01,Scene02 (default: every scene found).")
@click.option("--conditions", default="", help="Comma-separated conditions, e.g. clone,fog (default: every one found).")
@click.option("--camera", default=DEFAULTS.camera, show_default=True, help="Camera folder, Camera_K.")
@click.option("--first-frame", type=click.IntRange(min=0), default=DEFAULTS.first_frame, show_default=True)
@click.option(
    "--last-frame", type=click.IntRange(min=0), default=DEFAULTS.last_frame, help="Inclusive (default: to the end)."
)
@click.option("--check", is_flag=True, help="Decode every file of every selected frame; report the first bad one.")
def dataset(
    root: Path, scenes: str, conditions: str, camera: str, first_frame: int, last_frame: int | None, check: bool
) -> None:
    """Index a Virtual KITTI 2 layout tree (one folder per archive, or merged) and check its files."""
    refs = index_frames(
        root,
        scenes=comma_list(scenes),
        conditions=comma_list(conditions),
        camera=camera,
        first_frame=first_frame,
        last_frame=last_frame,
    )
    if check:
        for ref in progress_bar(refs, desc="checking", unit="frame"):
            verify_frame(ref)
    lines = _summary(root, refs[0].camera, refs)
    if check:
        lines.append(f"checked {len(refs)} frames: every file decodes and matches its RGB's size")
    click.echo("\n".join(lines))
