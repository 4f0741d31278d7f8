"""The depth preview `mtdepth predict` writes: one colour map and range (0..max_depth) for every frame."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from PIL import Image

from mtdepth.pipeline.files import atomic_write

COLOUR_MAP = "turbo_r"  # near red, far blue
BAR_DPI = 100
BAR_INCHES = 0.6  # the scale bar strip below the map


@functools.lru_cache(maxsize=8)
def _scale_bar(width: int, max_depth: float) -> np.ndarray:
    """RGB uint8 (h, width, 3): the colour map's scale bar over 0..max_depth in metres (matplotlib, drawn once)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import Normalize
    from matplotlib.cm import ScalarMappable
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width / BAR_DPI, BAR_INCHES), dpi=BAR_DPI)
    canvas = FigureCanvasAgg(figure)
    bar = figure.add_axes((0.1, 0.62, 0.8, 0.25))
    mappable = ScalarMappable(Normalize(0.0, max_depth), COLOUR_MAP)
    figure.colorbar(mappable, cax=bar, orientation="horizontal").set_label("depth (m)", fontsize=8, labelpad=1)
    bar.tick_params(labelsize=7)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def write_preview(path: Path, depth: np.ndarray, max_depth: float) -> None:
    """The depth map coloured over 0..max_depth (the same map and range for every frame) above its scale bar, as PNG."""
    from matplotlib import colormaps

    colours = colormaps[COLOUR_MAP](np.clip(depth / max_depth, 0.0, 1.0), bytes=True)[..., :3]
    bar = _scale_bar(depth.shape[1], float(max_depth))
    image = Image.fromarray(np.concatenate([colours, bar]))
    atomic_write(path, lambda tmp: image.save(tmp, format="PNG", compress_level=1))
