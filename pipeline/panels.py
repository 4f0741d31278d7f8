"""Figure-2 panels: one PNG per frame with RGB, mask, sparse input, GT, D_init, D_final, |error| and
the regions the metrics score.

Every depth image shares one colour map and range (0 to max_depth metres, one colour bar), and
the error map has a fixed range (0 to error_max metres), so panels of two models compare at a
glance. Invalid pixels (no GT, no sample) are light grey. Drawn with matplotlib's Agg canvas (no
pyplot state, no display).

    render_panel(path, PanelFrame(...), PanelStyle(max_depth=80, ...))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib import colormaps  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

FIGSIZE_IN = (12.0, 10.0)  # 4 rows x 2 columns of 2:1 frames, colour bars on the right
ERROR_CMAP = "magma"
REGION_COLOURS = ("dimgrey", "royalblue", "gold")  # matplotlib colour names, by region code
INVALID_COLOUR = "lightgrey"  # apart from both colour maps and from the white page


@dataclass(frozen=True)
class PanelFrame:
    """One frame's images, numpy, (H, W) metres unless noted."""

    title: str
    rgb: np.ndarray  # (H, W, 3) in [0, 1]
    gt: np.ndarray  # 0 = invalid
    sparse: np.ndarray  # 0 = no sample
    mask: np.ndarray  # 0/1
    mask_label: str  # which mask it is, e.g. "mask (yolo)"
    final: np.ndarray
    init: np.ndarray | None  # None for a one-output baseline
    regions: np.ndarray  # (H, W) index into region_names
    region_names: tuple[str, ...]  # e.g. ("background", "object", "boundary")


@dataclass(frozen=True)
class PanelStyle:
    max_depth: float
    cmap: str = "turbo"
    error_max: float = 5.0
    dpi: int = 100


def panel_size(style: PanelStyle) -> tuple[int, int]:
    """(width, height) in pixels of every panel PNG."""
    return round(FIGSIZE_IN[0] * style.dpi), round(FIGSIZE_IN[1] * style.dpi)


def _invalid_masked(values: np.ndarray, valid: np.ndarray) -> np.ma.MaskedArray:
    return np.ma.masked_array(values, mask=~valid)


def render_panel(path: str | Path, frame: PanelFrame, style: PanelStyle) -> None:
    """Write the panel of `frame` to `path` (PNG, panel_size(style) pixels)."""
    depth_cmap = colormaps[style.cmap].with_extremes(bad=INVALID_COLOUR)
    error_cmap = colormaps[ERROR_CMAP].with_extremes(bad=INVALID_COLOUR)
    valid = frame.gt > 0
    depth_kw = {"cmap": depth_cmap, "vmin": 0.0, "vmax": style.max_depth, "interpolation": "nearest"}

    fig = Figure(figsize=FIGSIZE_IN, dpi=style.dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(4, 2)
    fig.suptitle(frame.title)
    axes[0, 0].imshow(np.clip(frame.rgb, 0, 1), interpolation="nearest")
    axes[0, 0].set_title("RGB")
    axes[0, 1].imshow(frame.mask, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes[0, 1].set_title(frame.mask_label)
    axes[1, 0].imshow(_invalid_masked(frame.sparse, frame.sparse > 0), **depth_kw)
    axes[1, 0].set_title(f"sparse input ({int((frame.sparse > 0).sum())} samples)")
    depth_image = axes[1, 1].imshow(_invalid_masked(frame.gt, valid), **depth_kw)
    axes[1, 1].set_title("ground truth")
    if frame.init is None:
        axes[2, 0].text(0.5, 0.5, "no D_init (one-output baseline)", ha="center", va="center")
    else:
        axes[2, 0].imshow(frame.init, **depth_kw)
        axes[2, 0].set_title("D_init")
    axes[2, 1].imshow(frame.final, **depth_kw)
    axes[2, 1].set_title("D_final")
    error = np.abs(frame.final - frame.gt)
    error_image = axes[3, 0].imshow(
        _invalid_masked(error, valid), cmap=error_cmap, vmin=0.0, vmax=style.error_max, interpolation="nearest"
    )
    mean_error = float(error[valid].mean()) if valid.any() else float("nan")
    axes[3, 0].set_title(f"|D_final - GT| (mean {mean_error:.2f} m on valid pixels)")
    regions = ListedColormap(REGION_COLOURS[: len(frame.region_names)])
    axes[3, 1].imshow(
        frame.regions, cmap=regions, vmin=-0.5, vmax=len(frame.region_names) - 0.5, interpolation="nearest"
    )
    axes[3, 1].set_title(
        "scored regions: " + ", ".join(f"{name} {colour}" for name, colour in zip(frame.region_names, REGION_COLOURS)),
        fontsize="small",
    )
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.colorbar(depth_image, ax=axes[1:3, :].ravel().tolist(), label="depth (m)", fraction=0.04)
    fig.colorbar(error_image, ax=axes[3, :].ravel().tolist(), label="absolute error (m)", fraction=0.04)
    fig.savefig(path, dpi=style.dpi, facecolor="white")
