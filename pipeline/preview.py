"""The previews `mtdepth predict` writes: depth in one colour map and range (0..max_depth) for every frame,
and a confidence net's expected error in another (0..a fixed top); pixels without depth (0) are black."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from PIL import Image

from mtdepth.pipeline.files import atomic_write

COLOUR_MAP = "turbo_r"  # near red, far blue
ERROR_COLOUR_MAP = "magma"  # small expected error dark, large bright
BAR_DPI = 100
BAR_INCHES = 0.6  # the scale bar strip below the map


@functools.lru_cache(maxsize=8)
def _scale_bar(width: int, top: float, colour_map: str, label: str) -> np.ndarray:
    """RGB uint8 (h, width, 3): the colour map's scale bar over 0..top (matplotlib, drawn once)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import Normalize
    from matplotlib.cm import ScalarMappable
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width / BAR_DPI, BAR_INCHES), dpi=BAR_DPI)
    canvas = FigureCanvasAgg(figure)
    bar = figure.add_axes((0.1, 0.62, 0.8, 0.25))
    mappable = ScalarMappable(Normalize(0.0, top), colour_map)
    figure.colorbar(mappable, cax=bar, orientation="horizontal").set_label(label, fontsize=8, labelpad=1)
    bar.tick_params(labelsize=7)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def write_preview(path: Path, depth: np.ndarray, max_depth: float) -> None:
    """The depth map coloured over 0..max_depth (the same map and range for every frame) above its scale bar, as PNG."""
    _write(path, depth, float(max_depth), COLOUR_MAP, "depth (m)")


def write_error_preview(path: Path, error: np.ndarray, top: float) -> None:
    """The expected absolute error (metres) coloured over 0..top above its scale bar, as PNG."""
    _write(path, error, float(top), ERROR_COLOUR_MAP, "expected absolute error (m)")


def _write(path: Path, values: np.ndarray, top: float, colour_map: str, label: str) -> None:
    from matplotlib import colormaps

    colours = colormaps[colour_map](np.clip(values / top, 0.0, 1.0), bytes=True)[..., :3]
    colours[~(values > 0)] = 0  # no depth (predict --max-error): black
    bar = _scale_bar(values.shape[1], top, colour_map, label)
    image = Image.fromarray(np.concatenate([colours, bar]))
    atomic_write(path, lambda tmp: image.save(tmp, format="PNG", compress_level=1))
