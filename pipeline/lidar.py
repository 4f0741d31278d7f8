"""A spinning LiDAR simulated from a camera's dense depth: scan lines, sensor offset, see-through points.

The camera's depth is lifted to 3-D points and moved into the sensor's frame (the sensor sits at
`offset` in camera axes: x right, y down, z forward; KITTI's Velodyne is ~0.27 m behind and ~0.08 m
above the camera, axes parallel). There the points are splatted, nearest first, onto a fine grid of
(elevation, azimuth) whose rows include every beam and whose columns include every firing.
Cells no camera point reaches, lying between two reached cells of one grid row or column, are what
the sensor sees and the camera does not (disocclusion: the sensor looks past a foreground edge);
they take the farther of the two sides, the background. Each beam's firing returns what its cell
holds: the nearest camera point that reached it (which lands back on its own pixel), or for a filled
cell the far side's range along the firing's ray. The returns are projected back into the camera,
nearest first per pixel, and a return in front
of the camera-visible surface is dropped (the camera would see it). A return behind that surface is
a see-through point: background depth on a foreground pixel, as real KITTI frames carry. (The idea
follows OMNI-DC's simulator, `src/data/__init__.py`: render in the sensor's view, fill, project back,
keep the deeper returns.) Range noise is Gaussian along the ray. Pure numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# A return this fraction of its depth in front of the camera-visible surface at its pixel is one the
# camera would see, so it is dropped; within it, it is the same surface (pixel rounding on slopes).
SURFACE_TOLERANCE = 0.02
RANGE_KEY = 1 << 24  # ranges in whole millimetres below this (16.7 km) share one int64 sort key with the cell


@dataclass(frozen=True)
class LidarSpec:
    """The sensor: beams evenly spaced in elevation, one firing every `azimuth_step`, its pose, its noise."""

    beams: int = 64  # KITTI's Velodyne HDL-64E
    top: float = 2.0  # degrees of elevation of the top beam
    bottom: float = -24.9  # degrees of elevation of the bottom beam
    azimuth_step: float = 0.17  # degrees between firings (HDL-64E at 10 Hz: ~2,000 per turn)
    offset: tuple[float, float, float] = (0.0, -0.08, -0.27)  # metres, sensor in camera axes (x, y down, z fwd)
    noise: float = 0.02  # metres, standard deviation of the range
    fill_gap: float = 3.0  # degrees: the widest hole between two reached cells taken as seen past an edge

    def elevations(self, lines: int) -> np.ndarray:
        """Elevation (radians) of the beams kept when only `lines` of them fire, top first."""
        keep = np.unique(np.round(np.linspace(0, self.beams - 1, lines)).astype(int))
        return np.radians(self.top + (self.bottom - self.top) * keep / max(self.beams - 1, 1))


def scan(
    depth_m: np.ndarray,
    intrinsics: tuple[float, float, float, float],
    spec: LidarSpec,
    lines: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Sparse depth (float32 metres, 0 = no return) a LiDAR of `spec` firing `lines` beams gives in this camera."""
    depth = np.asarray(depth_m, dtype=np.float32)
    fx, fy, cx, cy = intrinsics
    grid = _Grid(spec, lines, pitch=1.0 / max(fx, fy))
    v, u = np.nonzero(depth > 0)
    z = depth[v, u].astype(np.float64)
    points = np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z]) - np.asarray(spec.offset)[:, None]
    ranges, winner = grid.render(points)
    ranges = _fill_axis(ranges, grid.row_gap)
    ranges = _fill_axis(ranges.T, grid.col_gap).T
    cols, azimuths = grid.firings(ranges.shape[1])
    rows = grid.beam_rows
    r = ranges[rows[:, None], cols[None, :]]
    hit = winner[rows[:, None], cols[None, :]]
    # A reached cell returns the camera point that won it (exactly on its own pixel); a filled cell
    # returns its range along the cell's own ray, projected into the camera.
    own = hit[hit >= 0]
    elev = np.broadcast_to(grid.top - rows[:, None] * grid.d_elev, r.shape)
    az = np.broadcast_to(azimuths[None, :], r.shape)
    filled = (hit < 0) & np.isfinite(r)
    fv, fu, fz, fr = _project(r[filled], elev[filled], az[filled], intrinsics, spec)
    inside = (fu >= 0) & (fu < depth.shape[1]) & (fv >= 0) & (fv < depth.shape[0]) & (fz > 0)
    rv = np.concatenate([v[own], fv[inside]])
    ru = np.concatenate([u[own], fu[inside]])
    rz = np.concatenate([z[own], fz[inside]])
    rr = np.concatenate([np.linalg.norm(points[:, own], axis=0), fr[inside]])
    return _nearest_returns(depth, rv, ru, rz, rr, spec.noise, rng)


class _Grid:
    """The fine (elevation, azimuth) grid in the sensor's frame: beam b is row b * per_beam, firing j is
    column j * per_step.

    Cells are at least one camera pixel wide, so a surface the camera sees whole reaches every cell it covers.
    """

    def __init__(self, spec: LidarSpec, lines: int, pitch: float):
        spacing = math.radians(spec.top - spec.bottom) / max(spec.beams - 1, 1)
        self.per_beam = max(1, math.floor(spacing / pitch)) if spec.beams > 1 else 1
        self.d_elev = spacing / self.per_beam if spec.beams > 1 else pitch
        step = math.radians(spec.azimuth_step)
        self.per_step = max(1, math.floor(step / pitch))
        self.d_az = step / self.per_step
        self.top = math.radians(spec.top)
        self.rows = (spec.beams - 1) * self.per_beam + 1
        self.beam_rows = np.round((self.top - spec.elevations(lines)) / self.d_elev).astype(int)
        self.row_gap = max(1, math.ceil(math.radians(spec.fill_gap) / self.d_elev))
        self.col_gap = max(1, math.ceil(math.radians(spec.fill_gap) / self.d_az))
        self.first_col = 0

    def render(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Range of the nearest point per cell (inf where none) and that point's index (-1 where none)."""
        x, y, z = points
        ranges = np.sqrt(x * x + y * y + z * z)
        rows = np.round((self.top - np.arctan2(-y, np.hypot(x, z))) / self.d_elev).astype(np.int64)
        cols = np.round(np.arctan2(x, z) / self.d_az).astype(np.int64)
        inside = np.nonzero((rows >= 0) & (rows < self.rows))[0]
        if len(inside) == 0:
            return np.full((self.rows, 1), np.inf), np.full((self.rows, 1), -1)
        self.first_col = int(cols[inside].min()) - self.col_gap
        width = int(cols[inside].max()) - self.first_col + self.col_gap + 1
        cell = rows[inside] * width + cols[inside] - self.first_col
        millimetres = np.minimum(np.round(ranges[inside] * 1000), RANGE_KEY - 1).astype(np.int64)
        order = np.argsort(cell * RANGE_KEY + millimetres, kind="stable")  # by cell, nearest first (to the mm)
        first = np.ones(len(order), dtype=bool)
        first[1:] = cell[order][1:] != cell[order][:-1]
        best = inside[order[first]]
        image = np.full(self.rows * width, np.inf)
        winner = np.full(self.rows * width, -1, dtype=np.int64)
        image[cell[order[first]]] = ranges[best]
        winner[cell[order[first]]] = best
        return image.reshape(self.rows, width), winner.reshape(self.rows, width)

    def firings(self, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Grid columns of the firings inside a grid `width` wide, and their azimuths (radians)."""
        global_cols = np.arange(self.first_col, self.first_col + width)
        cols = np.nonzero(global_cols % self.per_step == 0)[0]
        return cols, (cols + self.first_col) * self.d_az


def _fill_axis(ranges: np.ndarray, max_gap: int) -> np.ndarray:
    """Fill each empty run of at most `max_gap` cells down axis 0 between two reached cells with the farther
    of its two ends: what the sensor sees past a foreground edge, and the camera does not, is background."""
    n = ranges.shape[0]
    reached = np.isfinite(ranges)
    index = np.arange(n)[:, None]
    before = np.maximum.accumulate(np.where(reached, index, -1), axis=0)
    after = np.flip(np.minimum.accumulate(np.flip(np.where(reached, index, n), axis=0), axis=0), axis=0)
    hole = ~reached & (before >= 0) & (after < n) & (after - before - 1 <= max_gap)
    cols = np.broadcast_to(np.arange(ranges.shape[1]), ranges.shape)
    far = np.maximum(ranges[np.clip(before, 0, n - 1), cols], ranges[np.clip(after, 0, n - 1), cols])
    return np.where(hole, far, ranges)


def _project(
    r: np.ndarray, elev: np.ndarray, az: np.ndarray, intrinsics: tuple[float, float, float, float], spec: LidarSpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pixel row, column and depth in the camera of returns at range `r` along rays (elev, az), and `r`."""
    fx, fy, cx, cy = intrinsics
    x = r * np.cos(elev) * np.sin(az) + spec.offset[0]
    y = -r * np.sin(elev) + spec.offset[1]
    z = r * np.cos(elev) * np.cos(az) + spec.offset[2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.round(np.where(z > 0, x / z * fx + cx, -1)).astype(np.int64)
        v = np.round(np.where(z > 0, y / z * fy + cy, -1)).astype(np.int64)
    return v, u, z, r


def _nearest_returns(
    depth: np.ndarray,
    v: np.ndarray,
    u: np.ndarray,
    z: np.ndarray,
    r: np.ndarray,
    noise: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """The nearest return per pixel with range noise; none in front of the camera-visible surface."""
    order = np.lexsort((z, u, v))  # by pixel (raster order), nearest first
    v, u, z, r = v[order], u[order], z[order], r[order]
    first = np.ones(len(v), dtype=bool)
    first[1:] = (v[1:] != v[:-1]) | (u[1:] != u[:-1])
    v, u, z, r = v[first], u[first], z[first], r[first]
    seen = depth[v, u]
    keep = (seen > 0) & (z >= seen * (1 - SURFACE_TOLERANCE))
    if noise > 0:
        z = z * (1 + rng.normal(0.0, noise, len(z)) / r)  # one draw per returned pixel, in raster order
    sparse = np.zeros(depth.shape, dtype=np.float32)
    sparse[v[keep], u[keep]] = np.maximum(z[keep], 0.0)
    return sparse
