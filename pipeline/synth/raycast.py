"""Ray casting: the street analytically (ground rows, facade columns), boxes by a slab test, z-buffered; exact z-depth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mtdepth.pipeline.synth.layout import Street
from mtdepth.pipeline.synth.tracks import in_view, track_positions
from mtdepth.pipeline.synth.world import (
    BACKDROP,
    CAMERA_HEIGHT,
    CROWN_HEIGHT,
    CROWN_WIDTH,
    Camera,
    DASH_LENGTH,
    DASH_PERIOD,
    FACADE,
    GRAIN_AMPLITUDE,
    GRAIN_PER_METRE,
    GRAIN_SIZE,
    JOINT_SHADE,
    KERB,
    KERB_HEIGHT,
    LAWN,
    LINE_HALF_WIDTH,
    MARKING,
    NEAR_CLIP,
    NEG_X,
    NEG_Y,
    NEG_Z,
    N_NORMALS,
    OBJECT_RANGE,
    PAVEMENT,
    PAVING_JOINT,
    PAVING_TILE,
    POS_X,
    POS_Y,
    ROAD_SURFACE,
    SIDEWALK,
    SKY,
    STATIC_RANGE,
    STOREY_HEIGHT,
    STRIDE,
    WINDOW_ACROSS,
    WINDOW_BRIGHTNESS,
    WINDOW_HASH,
    WINDOW_UP,
)


@dataclass(eq=False)
class Geometry:
    """What a frame's rays hit, and the surface detail there, whatever the condition."""

    index: int
    depth: np.ndarray  # (H, W) float32 metres along z, inf for sky
    face: np.ndarray  # (H, W) int32: surface * N_NORMALS + normal
    surface: np.ndarray  # (H, W) int32
    detail: np.ndarray  # (H, W) float32 brightness factor: grain anchored to surfaces, paving joints
    panes: np.ndarray  # (n,) flat indices of window-pane pixels
    pane_normal: np.ndarray  # (n,) their normals
    pane_brightness: np.ndarray  # (n,) float32, each window a little different


def cast_frame(street: Street, camera: Camera, index: int) -> Geometry:
    """Cast every pixel of frame `index`: the street analytically, then every box in view."""
    camera_z = street.step * index
    with np.errstate(divide="ignore", invalid="ignore"):
        depth, face = _cast_walls(street, camera, camera_z)
        _cast_ground(street, camera, camera_z, depth, face)
        lo, hi, surface = _boxes_in_view(street, index, camera_z)
        _cast_boxes(street, camera, camera_z, lo, hi, surface, depth, face)
    surface = face // N_NORMALS
    return Geometry(index, depth, face, surface, *_detail(street, camera, camera_z, depth, face, surface))


def _cast_walls(street: Street, camera: Camera, camera_z: float) -> tuple[np.ndarray, np.ndarray]:
    """Facades, near end walls and the treeline: vertical planes, so each hits a column at one depth.

    Per column, each candidate wall covers the rows below its top edge; a row sees the nearest
    candidate that covers it. Sorting the candidates by depth and taking the running minimum
    of their first covered rows, the visible candidate of row v is the one whose rank equals
    the number of candidates whose running first row lies below v: all candidates but those
    whose running first row is v or above, a cumulative count down the rows.
    """
    dx, width, height = camera.dx, camera.width, camera.height
    cam_x = street.camera_x
    depths, tops, faces = [], [], []
    b = street.buildings
    b = b[(b["z1"] > camera_z + NEAR_CLIP) & (b["z0"] < camera_z + STATIC_RANGE)]
    for side_index, (side, inward) in enumerate(((-1, POS_X), (1, NEG_X))):
        columns = side * dx > 0
        mine = b[b["side"] == side]
        t = (side * mine["face"][:, None] - cam_x) / dx
        z = camera_z + t
        on_facade = (z >= mine["z0"][:, None]) & (z < mine["z1"][:, None])
        depths.append(np.where(columns & (t > NEAR_CLIP) & on_facade, t, np.inf))
        t_end = (mine["z0"] - camera_z)[:, None]
        reach = side * (cam_x + t_end * dx)
        inside = (reach >= mine["face"][:, None]) & (reach <= (mine["face"] + mine["depth"])[:, None])
        depths.append(np.where(columns & (t_end > NEAR_CLIP) & inside, t_end, np.inf))
        tops += [np.repeat(mine["height"][:, None], width, 1)] * 2
        faces += [mine["surface"] * N_NORMALS + inward, mine["surface"] * N_NORMALS + NEG_Z]

        distance, base, amplitude, wavelength, phase = street.backdrop[side_index]
        t = (side * distance - cam_x) / dx
        depths.append(np.where(columns & (t > NEAR_CLIP), t, np.inf)[None])
        along = camera_z + t
        crowns = CROWN_HEIGHT * np.abs(np.sin(np.pi * along / CROWN_WIDTH + phase))
        tops.append((base + amplitude * np.sin(2 * np.pi * along / wavelength + phase) + crowns)[None])
        faces.append(np.array([BACKDROP * N_NORMALS + inward]))

    t = np.concatenate(depths).astype(np.float32)  # (K, W)
    top = np.concatenate(tops)
    face = np.broadcast_to(np.concatenate(faces)[:, None], t.shape)
    first_row = np.where(np.isfinite(t), np.floor(camera.cy + camera.fy * (CAMERA_HEIGHT - top) / t) + 1, height)
    first_row = np.clip(first_row, 0, height).astype(np.int64)

    order = np.argsort(t, axis=0, kind="stable")
    t, face = np.take_along_axis(t, order, 0), np.take_along_axis(face, order, 0)
    covered_from = np.minimum.accumulate(np.take_along_axis(first_row, order, 0), axis=0)
    counts = np.bincount((covered_from * width + np.arange(width)).ravel(), minlength=(height + 1) * width)
    rank = len(t) - np.cumsum(counts.reshape(height + 1, width)[:height], axis=0)  # (H, W)
    t = np.concatenate([t, np.full((1, width), np.inf, np.float32)])
    face = np.concatenate([face, np.full((1, width), SKY * N_NORMALS)]).astype(np.int32)
    visible = rank * width + np.arange(width)  # flat index of the visible candidate
    return np.take(t, visible), np.take(face, visible)


def _cast_ground(street: Street, camera: Camera, camera_z: float, depth: np.ndarray, face: np.ndarray) -> None:
    """Road (with lane lines), kerbs, sidewalks and lawn, where nearer than the walls."""
    rows = camera.dy > 0
    dy, dx, cam_x = camera.dy[rows], camera.dx, street.camera_x
    left, right = street.kerbs
    t_road = (CAMERA_HEIGHT / dy)[:, None]
    x_road = cam_x + t_road * dx
    t_walk = ((CAMERA_HEIGHT - KERB_HEIGHT) / dy)[:, None]
    x_walk = cam_x + t_walk * dx
    on_road = (x_road > -left) & (x_road < right)
    on_walk = (x_walk <= -left) | (x_walk >= right)
    t_kerb = (np.where(dx < 0, -left, right) - cam_x) / dx
    t = np.where(on_road, t_road, np.where(on_walk, t_walk, t_kerb))

    dashes = ((camera_z + t_road) % DASH_PERIOD) < DASH_LENGTH
    marked = np.zeros_like(on_road)
    for x_line, dashed in zip(street.lines, street.dashed):
        line = np.abs(x_road - x_line) < LINE_HALF_WIDTH
        marked |= (line & dashes) if dashed else line
    lawn = (x_walk < -street.walk_edges[0]) | (x_walk > street.walk_edges[1])
    walk_face = np.where(lawn, LAWN * N_NORMALS + POS_Y, PAVEMENT * N_NORMALS + POS_Y)
    road_face = np.where(marked, MARKING * N_NORMALS + POS_Y, ROAD_SURFACE * N_NORMALS + POS_Y)
    kerb_face = np.where(dx < 0, KERB * N_NORMALS + POS_X, KERB * N_NORMALS + NEG_X)
    ground_face = np.where(on_road, road_face, np.where(on_walk, walk_face, kerb_face))

    nearer = t < depth[rows]
    depth[rows] = np.where(nearer, t, depth[rows])
    face[rows] = np.where(nearer, ground_face, face[rows])


def _boxes_in_view(street: Street, index: int, camera_z: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lo, hi, surface) of every box drawn in frame `index`: props and the parts of tracks in view."""
    keep = (street.props_hi[:, 2] > camera_z + NEAR_CLIP) & (street.props_lo[:, 2] < camera_z + OBJECT_RANGE)
    los, his, surfaces = [street.props_lo[keep]], [street.props_hi[keep]], [street.props_surface[keep]]
    if street.tracks:
        z = track_positions(street.tracks, [index])
        for track, track_z, shown in zip(street.tracks, z[:, 0], in_view(street.tracks, z, camera_z)[:, 0]):
            if not shown:
                continue
            gait = np.sin(2 * np.pi * abs(track.speed) * index / STRIDE + track.phase)
            offset = np.zeros((len(track.swing), 3), np.float32)
            offset[:, 0], offset[:, 2] = track.x, track_z + track.swing * gait
            los.append(track.lo + offset)
            his.append(track.hi + offset)
            surfaces.append(track.surfaces)
    return np.concatenate(los), np.concatenate(his), np.concatenate(surfaces)


def _cast_boxes(
    street: Street,
    camera: Camera,
    camera_z: float,
    lo: np.ndarray,
    hi: np.ndarray,
    surface: np.ndarray,
    depth: np.ndarray,
    face: np.ndarray,
) -> None:
    """Slab-test each box inside its screen rectangle and keep its hits where nearest."""
    cam = np.array([street.camera_x, CAMERA_HEIGHT, camera_z], np.float32)
    rel_lo, rel_hi = lo - cam, hi - cam  # camera-centred, Y still up
    near_z = np.maximum(rel_lo[:, 2], NEAR_CLIP)
    in_front = rel_hi[:, 2] > NEAR_CLIP
    # screen rectangle of the box clipped to the near plane: extremes of x/z and -y/z
    xs = np.stack([x / z for x in (rel_lo[:, 0], rel_hi[:, 0]) for z in (near_z, rel_hi[:, 2])])
    ys = np.stack([-y / z for y in (rel_lo[:, 1], rel_hi[:, 1]) for z in (near_z, rel_hi[:, 2])])
    c0 = np.clip(np.floor(camera.cx + camera.fx * xs.min(0)), 0, camera.width).astype(int)
    c1 = np.clip(np.ceil(camera.cx + camera.fx * xs.max(0)) + 1, 0, camera.width).astype(int)
    r0 = np.clip(np.floor(camera.cy + camera.fy * ys.min(0)), 0, camera.height).astype(int)
    r1 = np.clip(np.ceil(camera.cy + camera.fy * ys.max(0)) + 1, 0, camera.height).astype(int)
    x_normal = np.where(camera.dx > 0, NEG_X, POS_X)
    y_normal = np.where(camera.dy > 0, POS_Y, NEG_Y)
    for b in np.flatnonzero(in_front & (c1 > c0) & (r1 > r0)):
        cols, rows = slice(c0[b], c1[b]), slice(r0[b], r1[b])
        dx, dy = camera.dx[cols], camera.dy[rows]
        ta, tb = rel_lo[b, 0] / dx, rel_hi[b, 0] / dx
        tx_in, tx_out = np.minimum(ta, tb), np.maximum(ta, tb)
        ta, tb = -rel_hi[b, 1] / dy, -rel_lo[b, 1] / dy
        ty_in, ty_out = np.minimum(ta, tb)[:, None], np.maximum(ta, tb)[:, None]
        enter = np.maximum(np.maximum(tx_in, ty_in), rel_lo[b, 2])
        leave = np.minimum(np.minimum(tx_out, ty_out), rel_hi[b, 2])
        zbuf = depth[rows, cols]
        hit = (enter <= leave) & (enter > NEAR_CLIP) & (enter < zbuf)
        if not hit.any():
            continue
        normal = np.where(enter == ty_in, y_normal[rows][:, None], np.where(enter == tx_in, x_normal[cols], NEG_Z))
        np.copyto(zbuf, enter, where=hit)
        np.copyto(face[rows, cols], surface[b] * N_NORMALS + normal, where=hit)


def _detail(
    street: Street, camera: Camera, camera_z: float, depth: np.ndarray, face: np.ndarray, surface: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Surface detail that moves with the surfaces: (brightness, panes, pane normals, pane brightness)."""
    depth = np.where(np.isfinite(depth), depth, 0)
    x = street.camera_x + depth * camera.dx
    y = CAMERA_HEIGHT - depth * camera.dy[:, None]
    z = camera_z + depth
    normal = face - surface * N_NORMALS
    axis = normal >> 1  # 0: faces across X, 1: across Y, 2: across Z
    along = np.where(axis == 0, z, x).ravel()  # texture coordinates in the face's plane
    across = np.where(axis == 1, z, y).ravel()
    mask = GRAIN_SIZE - 1
    cell = ((along * GRAIN_PER_METRE).astype(np.int32) & mask) * GRAIN_SIZE + (
        (across * GRAIN_PER_METRE).astype(np.int32) & mask
    )
    kind = np.take(street.surfaces.kind, surface).ravel()
    brightness = 1 + np.take(GRAIN_AMPLITUDE, kind) * np.take(street.grain, cell)

    paving = np.flatnonzero(kind == SIDEWALK)
    a, c = along[paving] / PAVING_TILE, across[paving] / PAVING_TILE
    joint = ((a - np.floor(a)) < PAVING_JOINT) | ((c - np.floor(c)) < PAVING_JOINT)
    brightness[paving[joint]] *= JOINT_SHADE

    walls = np.flatnonzero(kind == FACADE)
    s = surface.ravel()[walls]
    u = (along[walls] - street.surfaces.origin[s]) / street.surfaces.spacing[s]
    up = across[walls] / STOREY_HEIGHT
    column, storey = np.floor(u), np.floor(up)
    glass = (
        (u - column > WINDOW_ACROSS[0])
        & (u - column < WINDOW_ACROSS[1])
        & (up - storey > WINDOW_UP[0])
        & (up - storey < WINDOW_UP[1])
        & (storey + 1 < street.surfaces.top[s] / STOREY_HEIGHT)
    )
    panes = walls[glass]
    # the building is known by its window grid's origin: its surface id shifts with the sequence length
    building = np.rint(street.surfaces.origin[s[glass]] * 1000).astype(np.int64)
    building_prime, column_prime, storey_prime = WINDOW_HASH
    window = (
        building * building_prime
        + column[glass].astype(np.int64) * column_prime
        + storey[glass].astype(np.int64) * storey_prime
    ) % 1000
    low, high = WINDOW_BRIGHTNESS
    pane_brightness = (low + (high - low) * window / 1000).astype(np.float32)
    return brightness.reshape(depth.shape).astype(np.float32), panes, normal.ravel()[panes], pane_brightness
