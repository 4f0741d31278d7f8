"""Street layout from (seed, scene): surfaces, buildings, props and the rows of tracks (tracks.py), block by block."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mtdepth.pipeline import vkitti2_format as vk
from mtdepth.pipeline.synth.world import (
    BACKDROP_BEYOND,
    BACKDROP_HEIGHT,
    BACKDROP_WAVE,
    BLOCK_LENGTH,
    BUILDING_DEPTH,
    BUILDING_GAP,
    BUILDING_LENGTH,
    CAMERA_STEP,
    CLASS_IDS,
    FACADE,
    FACADE_COLOURS,
    FOLIAGE,
    FOLIAGE_COLOUR,
    GRAIN_SIZE,
    KERB_COLOUR,
    LANE_WIDTH,
    LAWN_COLOUR,
    LEAD_CHANCE,
    LEAD_DISTANCE,
    LEAD_SWAY,
    LEAD_SWAY_PERIOD,
    MARKING_COLOUR,
    OBJECT_RANGE,
    PARKING_WIDTH,
    PLAIN,
    POLE_MIX,
    POLE_OFFSET,
    PROP_GAP,
    ROAD,
    ROAD_COLOUR,
    SIDEWALK,
    SIDEWALK_COLOUR,
    SIDEWALK_WIDTH,
    STATIC_RANGE,
    STYLES,
    TRAFFIC_SPEED,
    TREE_OFFSET,
    VEHICLE_MIX,
    VEHICLE_SIZE,
    WALKWAYS,
    WALK_SPEED,
    WINDOW_SPACING,
    _BUILDINGS,
    _LEAD,
    _PARKED,
    _PROPS,
    _STYLE,
    _TEXTURE,
    _TRAFFIC,
    _WALKERS,
    _jitter,
    _pick,
    _pick_weighted,
    _place_along,
    _rng,
)
from mtdepth.pipeline.synth.parts import lamp_post, sign, traffic_light, tree, vehicle_parts
from mtdepth.pipeline.synth.tracks import (
    Track,
    assign_instances,
    moving_range,
    track_from_parts,
    vehicle_row,
    walker_row,
)


@dataclass(eq=False)
class Surfaces:
    """What each surface id stands for; every pixel carries one."""

    colour: np.ndarray  # (S, 3) float32 albedo, 0-255
    class_id: np.ndarray  # (S,) uint8 index into CLASS_NAMES
    instance: np.ndarray  # (S,) uint8, 0 or track id + 1
    kind: np.ndarray  # (S,) uint8 texture kind
    origin: np.ndarray  # (S,) float32 facades: where the window grid starts along Z
    spacing: np.ndarray  # (S,) float32 facades: metres between window columns
    top: np.ndarray  # (S,) float32 facades: roof height


class _SurfaceBook:
    """Collects surfaces while the street is laid out; each gets the next id."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def add(
        self,
        colour: tuple,
        class_name: str,
        kind: int = PLAIN,
        origin: float = 0.0,
        spacing: float = 0.0,
        top: float = 0.0,
    ) -> int:
        self.rows.append((colour, CLASS_IDS[class_name], 0, kind, origin, spacing, top))
        return len(self.rows) - 1

    def table(self) -> Surfaces:
        colour, class_id, instance, kind, origin, spacing, top = zip(*self.rows)
        return Surfaces(
            np.array(colour, np.float32),
            np.array(class_id, np.uint8),
            np.array(instance, np.uint8),
            np.array(kind, np.uint8),
            np.array(origin, np.float32),
            np.array(spacing, np.float32),
            np.array(top, np.float32),
        )


@dataclass(eq=False)
class Street:
    """One scene's fixed layout: everything but the appearance."""

    seed: int
    scene: str
    step: float  # metres the camera drives per frame
    camera_x: float
    kerbs: tuple[float, float]  # distance of the left and right kerb from the centre line
    walk_edges: tuple[float, float]  # outer edges of the sidewalks
    lines: np.ndarray  # (L,) X of lane lines
    dashed: np.ndarray  # (L,) bool
    buildings: np.ndarray  # structured, see _BUILDING
    backdrop: np.ndarray  # (2, 5): per side distance, base height, amplitude, wavelength, phase
    props_lo: np.ndarray  # (N, 3) street furniture boxes, world
    props_hi: np.ndarray
    props_surface: np.ndarray  # (N,)
    tracks: list[Track]
    surfaces: Surfaces
    grain: np.ndarray  # (GRAIN_SIZE, GRAIN_SIZE) float32 in [-1, 1]


_BUILDING = np.dtype(
    [
        ("side", np.int8),
        ("face", np.float32),
        ("z0", np.float32),
        ("z1", np.float32),
        ("depth", np.float32),
        ("height", np.float32),
        ("surface", np.int32),
    ]
)


def _lay_out_buildings(seed, scene, style, book, side, facade_at, z_range) -> list[tuple]:
    """Buildings on one side as _BUILDING rows, with gaps; each one a surface of its own."""

    def gap(rng):
        return rng.uniform(*BUILDING_GAP) if rng.random() < style.gap_chance else 0.0

    def make(rng):
        return rng.uniform(*BUILDING_LENGTH), rng

    rows = []
    for z0, length, rng, _ in _place_along(seed, scene, (_BUILDINGS, side), z_range, gap, make):
        height = rng.uniform(*style.height)
        surface = book.add(
            _jitter(rng, _pick(rng, FACADE_COLOURS)),
            "Building",
            FACADE,
            origin=z0 + rng.uniform(0, 1),
            spacing=rng.uniform(*WINDOW_SPACING),
            top=height,
        )
        face = facade_at + rng.uniform(*style.setback)
        rows.append((side, face, z0, z0 + length, rng.uniform(*BUILDING_DEPTH), height, surface))
    return rows


def _lay_out_props(seed, scene, style, book, side, kerb, z_range) -> list[tuple]:
    """Kerbside furniture on one side as [((lo, hi), surface)] world boxes."""
    boxes = []
    spots = _place_along(seed, scene, (_PROPS, side), z_range, lambda r: r.uniform(*PROP_GAP), lambda r: (0.5, r))
    for z, _, rng, _ in spots:
        if rng.random() < style.tree_chance:
            boxes += tree(rng, book, side * (kerb + TREE_OFFSET), z)
            continue
        x, name = side * (kerb + POLE_OFFSET), _pick_weighted(rng, POLE_MIX)
        if name == "lamp":
            boxes += lamp_post(rng, book, x, z, side)
        elif name == "sign":
            boxes += sign(rng, book, x, z)
        else:
            boxes += traffic_light(rng, book, x, z)
    return boxes


def build_street(seed: int, scene: str, frames: int) -> Street:
    """Lay out scene `scene` for a sequence of `frames` frames; the same (seed, scene) gives the same street."""
    rng = _rng(seed, scene, _STYLE)
    style = _pick(rng, STYLES)
    step = rng.uniform(*CAMERA_STEP)
    lanes = int(rng.integers(1, 3))  # per direction
    parking = [rng.random() < style.parking_chance for _ in range(2)]  # left, right
    kerbs = tuple(lanes * LANE_WIDTH + p * PARKING_WIDTH for p in parking)
    walk_edges = tuple(k + rng.uniform(*SIDEWALK_WIDTH) for k in kerbs)
    camera_x = (lanes - 0.5) * LANE_WIDTH
    lines = [0.0] + [s * k * LANE_WIDTH for s in (-1, 1) for k in range(1, lanes + 1)]
    dashed = [True] + [k < lanes for s in (-1, 1) for k in range(1, lanes + 1)]

    book = _SurfaceBook()
    for colour, class_name, kind in (
        (vk.CLASS_COLORS["Sky"], "Sky", PLAIN),
        (ROAD_COLOUR, "Road", ROAD),
        (MARKING_COLOUR, "Road", PLAIN),
        (SIDEWALK_COLOUR, "Road", SIDEWALK),
        (KERB_COLOUR, "Road", PLAIN),
        (LAWN_COLOUR, "Terrain", FOLIAGE),
        (FOLIAGE_COLOUR, "Vegetation", FOLIAGE),
    ):
        book.add(colour, class_name, kind)

    last_z = step * (frames - 1)
    static_range = (-BLOCK_LENGTH, last_z + STATIC_RANGE)
    object_range = (-BLOCK_LENGTH, last_z + OBJECT_RANGE + BLOCK_LENGTH)
    buildings, props = [], []
    for side_index, side in enumerate((-1, 1)):
        buildings += _lay_out_buildings(seed, scene, style, book, side, walk_edges[side_index], static_range)
        props += _lay_out_props(seed, scene, style, book, side, kerbs[side_index], object_range)
    buildings = np.array(buildings, _BUILDING)

    backdrop = np.zeros((2, 5), np.float32)
    low, high = BACKDROP_HEIGHT
    for side_index in range(2):
        deepest = walk_edges[side_index] + style.setback[1] + BUILDING_DEPTH[1]  # behind any building
        backdrop[side_index] = (
            deepest + BACKDROP_BEYOND,
            (low + high) / 2,
            (high - low) / 2,
            rng.uniform(*BACKDROP_WAVE),
            rng.uniform(0, 2 * np.pi),
        )

    tracks = []
    longest = max(length[1] for length, _, _ in VEHICLE_SIZE.values())
    for side_index, side in enumerate((-1, 1)):
        heading = float(side)  # right-hand traffic: +Z on the right, -Z on the left
        if parking[side_index]:
            x = side * (lanes * LANE_WIDTH + PARKING_WIDTH / 2)
            tracks += vehicle_row(seed, scene, book, (_PARKED, side), x, heading, 0.0, style.parked_gap, object_range)
        for lane in range(lanes):
            if side > 0 and lane == lanes - 1:
                continue  # the camera's lane: only lead vehicles
            lane_rng = _rng(seed, scene, _TRAFFIC, side, lane)
            speed = heading * lane_rng.uniform(*TRAFFIC_SPEED)
            tracks += vehicle_row(
                seed,
                scene,
                book,
                (_TRAFFIC, side, lane),
                side * (lane + 0.5) * LANE_WIDTH,
                heading,
                speed,
                style.traffic_gap,
                moving_range(speed, step, frames, longest),
            )
        for walkway, (across, walk_heading) in enumerate(WALKWAYS):
            walk_rng = _rng(seed, scene, _WALKERS, side, walkway)
            speed = walk_heading * walk_rng.uniform(*WALK_SPEED)
            x = side * (kerbs[side_index] + across * (walk_edges[side_index] - kerbs[side_index]))
            tracks += walker_row(
                seed,
                scene,
                book,
                (_WALKERS, side, walkway),
                x,
                speed,
                style.walker_gap,
                moving_range(speed, step, frames, longest),
            )
    lead_rng = _rng(seed, scene, _LEAD)
    if lead_rng.random() < LEAD_CHANCE:
        class_name = _pick_weighted(lead_rng, VEHICLE_MIX)
        _, parts = vehicle_parts(lead_rng, class_name, 1.0)
        tracks.append(
            track_from_parts(
                (_LEAD,),
                class_name,
                camera_x,
                lead_rng.uniform(*LEAD_DISTANCE),
                step,
                parts,
                book,
                sway=lead_rng.uniform(*LEAD_SWAY),
                sway_period=lead_rng.uniform(*LEAD_SWAY_PERIOD),
                phase=lead_rng.uniform(0, 2 * np.pi),
            )
        )

    surfaces = book.table()
    tracks = assign_instances(tracks, surfaces, step, frames)
    props_lo = np.array([b[0][0] for b in props], np.float32).reshape(-1, 3)
    props_hi = np.array([b[0][1] for b in props], np.float32).reshape(-1, 3)
    grain = _rng(seed, scene, _TEXTURE).uniform(-1, 1, (GRAIN_SIZE, GRAIN_SIZE)).astype(np.float32)
    return Street(
        seed,
        scene,
        step,
        camera_x,
        kerbs,
        walk_edges,
        np.array(lines, np.float32),
        np.array(dashed),
        buildings,
        backdrop,
        props_lo,
        props_hi,
        np.array([b[1] for b in props], np.int32),
        tracks,
        surfaces,
        grain,
    )
