"""Dense depth as a coloured point cloud: pinhole back-projection and a binary PLY writer.

A pixel (u, v) (column, row; integer coordinates at pixel centres, as KITTI's K uses them)
with depth z goes to X = (u - cx) z / fx, Y = (v - cy) z / fy, Z = z in the camera frame
(x right, y down, z forward), coloured by the image. Pixels with no depth are left out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mtdepth.pipeline.files import atomic_write

_VERTEX = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])


def back_project(depth: np.ndarray, rgb: np.ndarray, intrinsics: tuple[float, float, float, float]) -> np.ndarray:
    """Structured vertices (x, y, z metres; red, green, blue) of every pixel with depth > 0."""
    fx, fy, cx, cy = intrinsics
    rows, cols = np.nonzero(depth > 0)
    z = depth[rows, cols].astype(np.float32)
    vertices = np.empty(z.size, dtype=_VERTEX)
    vertices["x"] = (cols - cx) * z / fx
    vertices["y"] = (rows - cy) * z / fy
    vertices["z"] = z
    for channel, name in enumerate(("red", "green", "blue")):
        vertices[name] = rgb[rows, cols, channel]
    return vertices


def write_ply(path: Path, vertices: np.ndarray) -> None:
    """Write structured vertices as a binary little-endian PLY, atomically."""
    header = "\n".join(
        [
            "ply",
            "format binary_little_endian 1.0",
            "comment mtdepth predict: camera frame, metres",
            f"element vertex {vertices.size}",
            "property float x",
            "property float y",
            "property float z",
            "property uchar red",
            "property uchar green",
            "property uchar blue",
            "end_header",
            "",
        ]
    ).encode("ascii")

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(header)
            fh.write(vertices.astype(_VERTEX, copy=False).tobytes())

    atomic_write(path, write)
