"""`mtdepth synth`: write the embedded synthetic street dataset in the Virtual KITTI 2 layout."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import click

from mtdepth import __version__
from mtdepth.errors import MtDepthError
from mtdepth.params import load_params, override, to_dict
from mtdepth.stages.progress import comma_list, progress_bar


MANIFEST = "mtdepth-synth.json"  # the params a synthetic tree was written with (readers ignore it)



def _is_empty_or_absent(folder: Path) -> bool:
    return not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))


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
    if not overwrite and not _is_empty_or_absent(target):
        raise MtDepthError(f"{target}: output folder exists and is not empty (use --overwrite to replace it)")
    if target.exists() and not target.is_dir():
        raise MtDepthError(f"{target}: output path exists and is not a folder")

    # Write beside the target and swap it in at the end: a killed run leaves only *.partial-*.
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    target.parent.mkdir(parents=True, exist_ok=True)
    total = len(p.scenes) * len(p.conditions) * p.frames
    started = time.perf_counter()
    try:
        frames_written = write_dataset(partial, p.seed, p.scenes, p.conditions, p.frames, p.image_width, p.image_height)
        with progress_bar(frames_written, total=total, desc="synth", unit="frame") as bar:
            for _ in bar:
                pass
        manifest = {"mtdepth": __version__, "synth": {k: v for k, v in to_dict(p).items() if k != "out"}}
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if target.exists():
            retired = target.with_name(f"{target.name}.old-{os.getpid()}")
            target.rename(retired)
            partial.rename(target)
            shutil.rmtree(retired)
        else:
            partial.rename(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    seconds = time.perf_counter() - started
    click.echo(f"synth: wrote {total} frames ({len(p.scenes)} scenes x {len(p.conditions)} conditions x {p.frames}) "
               f"to {target} in {seconds:.1f} s ({total / seconds:.1f} frames/s)")
