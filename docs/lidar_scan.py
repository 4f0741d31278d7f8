"""Draw docs/lidar-scan.png: a simulated 64-line scan over its RGB, see-through points marked.

python docs/lidar_scan.py DATA_ROOT [FRAME_KEY_PREFIX]   (a Virtual KITTI 2 layout tree; `mtdepth synth` makes one)
"""

from __future__ import annotations

import sys

import numpy as np
from matplotlib import colormaps
from PIL import Image

from mtdepth.params import SparseParams
from mtdepth.pipeline.lidar import scan
from mtdepth.pipeline.patterns import lidar_spec
from mtdepth.pipeline.sparse import stable_rng
from mtdepth.pipeline.vkitti2 import index_frames, load_frame

MAX_DEPTH = 80.0
SEE_THROUGH_M = 1.5  # a return this much deeper than the camera-visible surface is drawn as see-through
ZOOM = (slice(140, 280), slice(0, 621))  # the rows and columns shown again below at twice the size
COLOURS = 96  # palette size of the PNG (keeps it small)


def main(root: str, prefix: str = "Scene01/clone/Camera_0/00000") -> None:
    ref = next(r for r in index_frames(root) if r.key.startswith(prefix))
    frame = load_frame(ref, 32, 32, MAX_DEPTH, keep_source=True)
    rgb, depth = frame.source
    sparse = scan(depth, ref.intrinsics, lidar_spec(SparseParams()), 64, stable_rng(0, ref.key))
    image = (rgb.astype(np.float32) * 0.45).astype(np.uint8)  # dim the RGB so the returns stand out
    v, u = np.nonzero(sparse)
    colours = (colormaps["turbo"](np.clip(sparse[v, u] / MAX_DEPTH, 0, 1))[:, :3] * 255).astype(np.uint8)
    image[v, u] = colours
    see = sparse[v, u] > depth[v, u] + SEE_THROUGH_M
    for dv in (-1, 0, 1):  # see-through points as 3x3 magenta dots
        for du in (-1, 0, 1):
            rows, cols = np.clip(v[see] + dv, 0, image.shape[0] - 1), np.clip(u[see] + du, 0, image.shape[1] - 1)
            image[rows, cols] = (255, 0, 255)
    print(f"{ref.key}: {len(v)} returns ({len(v) / sparse.size:.2%} of pixels), {int(see.sum())} see-through")
    zoom = image[ZOOM].repeat(2, axis=0).repeat(2, axis=1)
    gap = np.full((4, image.shape[1], 3), 255, dtype=np.uint8)
    picture = Image.fromarray(np.concatenate([image, gap, zoom[:, : image.shape[1]]]))
    picture.quantize(COLOURS, dither=Image.Dither.NONE).save("docs/lidar-scan.png", optimize=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
