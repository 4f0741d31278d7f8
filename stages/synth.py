"""`mtdepth synth`: write the embedded synthetic street dataset in the Virtual KITTI 2 layout."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import click

from mtdepth import __version__
from mtdepth.cache.location import filesystem_error
from mtdepth.errors import MtDepthError
from mtdepth.log import progress_bar
from mtdepth.params import load_params, override, to_dict
from mtdepth.pipeline.files import check_target, is_empty_or_absent, partial_folder, recover, swap_in
from mtdepth.stages.options import comma_list


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
    from mtdepth.pipeline.synth import MANIFEST, write_dataset

    params = load_params(params_file)
    params = override(
        params, "synth", out=out, seed=seed, scenes=comma_list(scenes), conditions=comma_list(conditions), frames=frames
    )
    p = params.synth
    target = Path(p.out)
    check_target(target)
    try:
        recover(target)
    except OSError as exc:
        raise filesystem_error(exc, str(target)) from None
    if not overwrite and not is_empty_or_absent(target):
        raise MtDepthError(f"{target}: output folder exists and is not empty (use --overwrite to replace it)")
    total = len(p.scenes) * len(p.conditions) * p.frames
    started = time.perf_counter()
    # Write beside the target and swap it in at the end: a killed run leaves only NAME.partial-PID,
    # which the next run deletes.
    partial = partial_folder(target)
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
    click.echo(
        f"synth: wrote {total} frames ({len(p.scenes)} scenes x {len(p.conditions)} conditions x {p.frames}) "
        f"to {target} in {seconds:.1f} s ({total / seconds:.1f} frames/s)"
    )
