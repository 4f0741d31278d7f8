"""Procedural street scenes in the Virtual KITTI 2 file layout: the embedded default dataset.

A seed and a scene name fix one straight street: road with lane markings, kerbs, sidewalks,
facades with windows and gaps, a treeline behind, poles, signs, traffic lights and trees,
parked and moving vehicles, walking and standing pedestrians. A level pinhole camera with
Virtual KITTI 2's intrinsics drives along it. A condition (clone, fog, morning, ...) changes
only the appearance, never the geometry or the tracks, as in Virtual KITTI 2.

Depth is exact. World frame: X right, Y up, Z forward along the street, metres, road surface
at Y = 0. The camera is never rotated, so the ray of pixel (u, v) is (dx[u], -dy[v], 1) in
world axes and the ray parameter t of a hit is its depth along the camera z axis. The street
is cast analytically (ground planes per row, facades per column), objects are axis-aligned
boxes cast with a slab test inside their screen rectangles, z-buffered; all numpy, no
per-pixel Python loops.

The street is laid out block by block (BLOCK_LENGTH metres), each block from its own random
stream, so frame k of a sequence is the same whatever the sequence length.

Parts: `world` (constants, camera, random streams, block-by-block placement), `layout` (the
street from a seed), `tracks` (vehicles and pedestrians: rows, motion, instance ids),
`parts` (the boxes of vehicles, pedestrians and street furniture),
`raycast` (depth and surfaces per pixel), `shade` (each condition's appearance), `write`
(the Virtual KITTI 2 files).
"""

from mtdepth.pipeline.synth.layout import Street, Surfaces, build_street
from mtdepth.pipeline.synth.raycast import Geometry, cast_frame
from mtdepth.pipeline.synth.shade import LOOKS, Look, SynthFrame, render_frame, shade_frame
from mtdepth.pipeline.synth.tracks import Track, track_positions
from mtdepth.pipeline.synth.world import (
    CAMERA,
    CAMERA_HEIGHT,
    CLASS_COLOURS,
    CLASS_NAMES,
    KERB_HEIGHT,
    ROAD_SURFACE,
    SKY,
    Camera,
    make_camera,
)
from mtdepth.pipeline.synth.write import (
    MANIFEST,
    modality_path,
    read_manifest,
    write_dataset,
    write_frame,
    write_textgt,
)

__all__ = [
    "CAMERA",
    "CAMERA_HEIGHT",
    "CLASS_COLOURS",
    "CLASS_NAMES",
    "KERB_HEIGHT",
    "LOOKS",
    "MANIFEST",
    "ROAD_SURFACE",
    "SKY",
    "Camera",
    "Geometry",
    "Look",
    "Street",
    "Surfaces",
    "SynthFrame",
    "Track",
    "build_street",
    "cast_frame",
    "make_camera",
    "modality_path",
    "read_manifest",
    "render_frame",
    "shade_frame",
    "track_positions",
    "write_dataset",
    "write_frame",
    "write_textgt",
]
