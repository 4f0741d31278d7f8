"""`mtdepth synth`: write the embedded synthetic street dataset in the Virtual KITTI 2 layout."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import click

from mtdepth import __version__
from mtdepth.cache.location import filesystem_error
from mtdepth.errors import MtDepthError
from mtdepth.params import load_params, override, to_dict
from mtdepth.stages.progress import comma_list, progress_bar


MANIFEST = "mtdepth-synth.json"  # the params a synthetic tree was written with (readers ignore it)
PARTIAL, RETIRED = "partial", "old"  # NAME.partial-PID: being written; NAME.old-PID: being replaced


def _is_empty_or_absent(folder: Path) -> bool:
    return not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _leftovers(target: Path) -> dict[str, dict[int, Path]]:
    """`partial` and `old` folders beside `target` of synth runs whose process is gone, by pid."""
    found: dict[str, dict[int, Path]] = {PARTIAL: {}, RETIRED: {}}
    pattern = re.compile(rf"{re.escape(target.name)}\.({PARTIAL}|{RETIRED})-(\d+)")
    for sibling in target.parent.iterdir() if target.parent.is_dir() else ():
        match = pattern.fullmatch(sibling.name)
        if match and not _pid_alive(int(match[2])):
            found[match[1]][int(match[2])] = sibling
    return found


def recover(target: Path) -> None:
    """Undo what killed runs left: put back a target retired by a run killed between its two renames,
    and delete the rest (half-written datasets, retired copies no longer needed)."""
    found = _leftovers(target)
    for pid, retired in sorted(found[RETIRED].items()):
        if not target.exists():
            retired.rename(target)
        else:
            shutil.rmtree(retired)
    for partial in found[PARTIAL].values():
        shutil.rmtree(partial)


def check_target(target: Path) -> None:
    """Refuse an output path that cannot be written or must never be replaced, in one line."""
    if target.exists() and not target.is_dir():
        raise MtDepthError(f"{target}: output path exists and is a file; choose another --out")
    for parent in target.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise MtDepthError(f"{target}: {parent} is a file, so no folder can be made under it; choose another --out")
            break
    if Path.cwd().resolve().is_relative_to(target.resolve()):
        raise MtDepthError(f"{target}: is the current folder or one above it; name a folder below it (e.g. data/synth)")


def swap_in(partial: Path, target: Path) -> None:
    """Replace `target` by the finished `partial` (two renames; a kill between them is undone by `recover`)."""
    if target.exists():
        retired = target.with_name(f"{target.name}.{RETIRED}-{os.getpid()}")
        target.rename(retired)
        partial.rename(target)
        shutil.rmtree(retired)
    else:
        partial.rename(target)


@click.command("synth")
@click.option("--params", "params_file", default="params.yaml", show_default=True, help="Params file.")
@click.option("--out", help="Output folder. [synth.out]")
@click.option("--seed", type=int, help="Layout seed; another seed gives other streets. [synth.seed]")
@click.option("--scenes", help="Comma list, e.g. Scene01,Scene02. [synth.scenes]")
@click.option("--conditions", help="Comma list, e.g. clone,fog. [synth.conditions]")
@click.option("--frames", type=int, help="Frames per scene and condition. [synth.frames]")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty output folder (once the new one is complete).")
def synth(params_file, out, seed, scenes, conditions, frames, overwrite):
    """Write procedural street sequences (RGB, depth, class and instance PNGs, textgt)."""
    from mtdepth.pipeline.synth import write_dataset

    params = load_params(params_file)
    params = override(params, "synth", out=out, seed=seed, scenes=comma_list(scenes), conditions=comma_list(conditions),
                      frames=frames)
    p = params.synth
    target = Path(p.out)
    check_target(target)
    try:
        recover(target)
    except OSError as exc:
        raise filesystem_error(exc, str(target)) from None
    if not overwrite and not _is_empty_or_absent(target):
        raise MtDepthError(f"{target}: output folder exists and is not empty (use --overwrite to replace it)")
    total = len(p.scenes) * len(p.conditions) * p.frames
    started = time.perf_counter()
    # Write beside the target and swap it in at the end: a killed run leaves only NAME.partial-PID,
    # which the next run deletes.
    partial = target.with_name(f"{target.name}.{PARTIAL}-{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        frames_written = write_dataset(partial, p.seed, p.scenes, p.conditions, p.frames, p.image_width, p.image_height)
        with progress_bar(frames_written, total=total, desc="synth", unit="frame") as bar:
            for _ in bar:
                pass
        manifest = {"mtdepth": __version__, "synth": {k: v for k, v in to_dict(p).items() if k != "out"}}
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        swap_in(partial, target)
    except OSError as exc:
        raise filesystem_error(exc, str(target)) from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    seconds = time.perf_counter() - started
    click.echo(f"synth: wrote {total} frames ({len(p.scenes)} scenes x {len(p.conditions)} conditions x {p.frames}) "
               f"to {target} in {seconds:.1f} s ({total / seconds:.1f} frames/s)")
