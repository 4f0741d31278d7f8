"""Synthetic dataset generator on one core at 1242x375: frames/s with and without writing files.

Times each step of a frame (cast rays, shade one condition, encode and write four files) and
whole frames two ways: one condition per frame (every frame cast anew), and as `mtdepth synth`
runs (one cast shaded under all six conditions). Best of PASSES passes, side by side in one
run; prints a markdown table. Run: `.venv/bin/python bench/bench_synth.py`.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"  # before numpy is imported

import argparse  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from mtdepth.params import CONDITIONS, SynthParams  # noqa: E402
from mtdepth.pipeline import synth  # noqa: E402

SYNTH = SynthParams()
SCENE = "Scene06"
FRAMES = 8  # frames per pass
PASSES = 3  # the best pass counts


def best_seconds(work, passes: int = PASSES) -> float:
    """Fastest of `passes` runs of `work()`, in seconds."""
    best = float("inf")
    for _ in range(passes):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    global FRAMES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="smoke-test sizes (seconds; the figures mean nothing)")
    if parser.parse_args().tiny:
        FRAMES = 1
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    width, height = SYNTH.image_width, SYNTH.image_height
    camera = synth.make_camera(width, height)
    street = synth.build_street(SYNTH.seed, SCENE, FRAMES)
    geometries = [synth.cast_frame(street, camera, k) for k in range(FRAMES)]
    shaded = [synth.shade_frame(street, camera, g, "clone") for g in geometries]
    root = Path(tempfile.mkdtemp(prefix="bench_synth_"))
    try:

        def write_all():
            for k, frame in enumerate(shaded):
                synth.write_frame(root, SCENE, "clone", k, frame)

        def generate_and_write_one_condition():
            for k in range(FRAMES):
                synth.write_frame(root, SCENE, "clone", k, synth.render_frame(street, camera, "clone", k))

        def generate_one_condition():
            for k in range(FRAMES):
                synth.render_frame(street, camera, "clone", k)

        def generate_all_conditions():
            for k in range(FRAMES):
                geometry = synth.cast_frame(street, camera, k)
                for condition in CONDITIONS:
                    synth.shade_frame(street, camera, geometry, condition)

        def as_the_command_does():
            for _ in synth.write_dataset(root / "all", SYNTH.seed, (SCENE,), CONDITIONS, FRAMES, width, height):
                pass

        steps = [
            (
                "cast rays (once per frame)",
                FRAMES,
                lambda: [synth.cast_frame(street, camera, k) for k in range(FRAMES)],
            ),
            ("shade one condition", FRAMES, lambda: [synth.shade_frame(street, camera, g, "fog") for g in geometries]),
            ("encode + write 4 files", FRAMES, write_all),
            ("**generate, one condition per frame**", FRAMES, generate_one_condition),
            ("**generate + write, one condition per frame**", FRAMES, generate_and_write_one_condition),
            (f"generate, {len(CONDITIONS)} conditions per cast", FRAMES * len(CONDITIONS), generate_all_conditions),
            (
                f"**generate + write as `mtdepth synth` ({len(CONDITIONS)} conditions per cast)**",
                FRAMES * len(CONDITIONS),
                as_the_command_does,
            ),
        ]
        print(f"## Synthetic generator, one core, {width}x{height}, {SCENE}, best of {PASSES} passes\n")
        print("| step | frames | ms/frame | frames/s |")
        print("|---|---:|---:|---:|")
        for name, frames, work in steps:
            seconds = best_seconds(work) / frames
            print(f"| {name} | {frames} | {seconds * 1e3:.1f} | {1 / seconds:.1f} |")
    finally:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
