"""Street layout: surfaces, buildings, props, vehicle and pedestrian tracks, laid out block by block from (seed, scene)."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Iterator

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
    NEAR_CLIP,
    OBJECT_RANGE,
    PARKING_WIDTH,
    PERSON_DEPTH,
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
    _rng,
)
from mtdepth.pipeline.synth.parts import lamp_post, pedestrian_parts, sign, traffic_light, tree, vehicle_parts


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
class Track:
    """A vehicle or pedestrian: boxes around its own origin, which moves along Z."""

    order: tuple[int, ...]  # sort key, the same whatever the sequence length
    class_name: str
    x: float
    z_start: float  # Z of its origin at frame 0
    speed: float  # metres per frame along +Z
    lo: np.ndarray  # (P, 3) part boxes relative to the origin (on the ground)
    hi: np.ndarray
    surfaces: np.ndarray  # (P,) surface ids
    swing: np.ndarray  # (P,) metres a part swings along Z with the gait (legs)
    sway: float = 0.0  # metres the whole track drifts to and fro along Z
    sway_period: float = 1.0  # frames
    phase: float = 0.0  # radians, of gait and sway
    instance: int = 0  # track id + 1, set once all tracks are known

    @cached_property
    def reach(self) -> float:
        """How far the parts reach along Z from the origin, swing included."""
        return float(max(-self.lo[:, 2].min(), self.hi[:, 2].max()) + np.abs(self.swing).max())


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


def _place_along(
    seed: int,
    scene: str,
    key: tuple[int, ...],
    z_range: tuple[float, float],
    gap: Callable[[np.random.Generator], float],
    make: Callable[[np.random.Generator], tuple[float, object]],
) -> Iterator[tuple[float, float, object, tuple]]:
    """Lay things out along Z block by block: yields (start, length, thing, order key).

    `make` returns (length, thing); things never straddle a block's end, so each block is
    laid out from its own stream and the layout of one block never depends on another.
    """
    first, last = int(np.floor(z_range[0] / BLOCK_LENGTH)), int(np.ceil(z_range[1] / BLOCK_LENGTH))
    for block in range(first, last):
        rng = _rng(seed, scene, *key, block)
        z, end = block * BLOCK_LENGTH + gap(rng), (block + 1) * BLOCK_LENGTH
        for n in itertools.count():
            length, thing = make(rng)
            if z + length > end:
                break
            yield z, length, thing, (*key, block, n)
            z += length + gap(rng)


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
    names, weights = zip(*POLE_MIX)
    boxes = []
    spots = _place_along(seed, scene, (_PROPS, side), z_range, lambda r: r.uniform(*PROP_GAP), lambda r: (0.5, r))
    for z, _, rng, _ in spots:
        if rng.random() < style.tree_chance:
            boxes += tree(rng, book, side * (kerb + TREE_OFFSET), z)
            continue
        x, name = side * (kerb + POLE_OFFSET), names[rng.choice(len(names), p=np.array(weights) / sum(weights))]
        if name == "lamp":
            boxes += lamp_post(rng, book, x, z, side)
        elif name == "sign":
            boxes += sign(rng, book, x, z)
        else:
            boxes += traffic_light(rng, book, x, z)
    return boxes


def _track(order, class_name, x, z_start, speed, parts, book, swing=None, **motion) -> Track:
    """A Track from parts [(lo, hi, colour)], each part a surface of the track's class."""
    surfaces = np.array([book.add(colour, class_name) for _, _, colour in parts], np.int32)
    lo, hi = np.stack([p[0] for p in parts]), np.stack([p[1] for p in parts])
    swing = np.zeros(len(parts), np.float32) if swing is None else swing
    return Track(order, class_name, x, z_start, speed, lo, hi, surfaces, swing, **motion)


def _choose_vehicle(rng: np.random.Generator) -> str:
    names, weights = zip(*VEHICLE_MIX)
    return names[rng.choice(len(names), p=np.array(weights) / sum(weights))]


def _vehicle_row(seed, scene, book, key, x, heading, speed, gap, z_range) -> list[Track]:
    """Vehicles in one lane or parking strip, all at one speed, so they never collide."""

    def make(rng):
        class_name = _choose_vehicle(rng)
        length, parts = vehicle_parts(rng, class_name, heading)
        return length, (class_name, parts)

    return [
        _track(order, class_name, x, z + length / 2, speed, parts, book)
        for z, length, (class_name, parts), order in _place_along(
            seed, scene, key, z_range, lambda r: r.uniform(*gap), make
        )
    ]


def _walker_row(seed, scene, book, key, x, speed, gap, z_range) -> list[Track]:
    """Pedestrians on one walkway, all at one speed along Z (0: standing)."""

    def make(rng):
        parts, swing = pedestrian_parts(rng)
        return PERSON_DEPTH, (parts, swing * (speed != 0), rng.uniform(0, 2 * np.pi))

    return [
        _track(order, "Pedestrian", x, z + depth / 2, speed, parts, book, swing=swing, phase=phase)
        for z, depth, (parts, swing, phase), order in _place_along(
            seed, scene, key, z_range, lambda r: r.uniform(*gap), make
        )
    ]


def _moving_range(speed: float, step: float, frames: int, margin: float) -> tuple[float, float]:
    """Z at frame 0 of everything moving at `speed` that comes within view in `frames` frames."""
    drift = (speed - step) * (frames - 1)
    return -margin - max(drift, 0.0), OBJECT_RANGE + margin - min(drift, 0.0)


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
            tracks += _vehicle_row(seed, scene, book, (_PARKED, side), x, heading, 0.0, style.parked_gap, object_range)
        for lane in range(lanes):
            if side > 0 and lane == lanes - 1:
                continue  # the camera's lane: only lead vehicles
            lane_rng = _rng(seed, scene, _TRAFFIC, side, lane)
            speed = heading * lane_rng.uniform(*TRAFFIC_SPEED)
            tracks += _vehicle_row(
                seed,
                scene,
                book,
                (_TRAFFIC, side, lane),
                side * (lane + 0.5) * LANE_WIDTH,
                heading,
                speed,
                style.traffic_gap,
                _moving_range(speed, step, frames, longest),
            )
        for walkway, (across, walk_heading) in enumerate(WALKWAYS):
            walk_rng = _rng(seed, scene, _WALKERS, side, walkway)
            speed = walk_heading * walk_rng.uniform(*WALK_SPEED)
            x = side * (kerbs[side_index] + across * (walk_edges[side_index] - kerbs[side_index]))
            tracks += _walker_row(
                seed,
                scene,
                book,
                (_WALKERS, side, walkway),
                x,
                speed,
                style.walker_gap,
                _moving_range(speed, step, frames, longest),
            )
    lead_rng = _rng(seed, scene, _LEAD)
    if lead_rng.random() < LEAD_CHANCE:
        class_name = _choose_vehicle(lead_rng)
        _, parts = vehicle_parts(lead_rng, class_name, 1.0)
        tracks.append(
            _track(
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
    tracks = _assign_instances(tracks, surfaces, step, frames)
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


# ============================================================================= tracks over time


def track_positions(tracks: list[Track], frames: np.ndarray) -> np.ndarray:
    """(T, F) Z of each track's origin at each of the frame indices `frames` (F,)."""
    z0, speed, sway, period, phase = (
        np.array([getattr(t, a) for t in tracks], np.float64)[:, None]
        for a in ("z_start", "speed", "sway", "sway_period", "phase")
    )
    frames = np.asarray(frames, np.float64)[None, :]
    return z0 + speed * frames + sway * np.sin(2 * np.pi * frames / period + phase)


def _in_view(tracks: list[Track], z: np.ndarray, camera_z: np.ndarray) -> np.ndarray:
    """(T, F) whether tracks at Z `z` (T, F) are within the drawn range ahead of the camera at `camera_z` (F,)."""
    reach = np.array([t.reach for t in tracks])[:, None]
    return (z + reach > camera_z + NEAR_CLIP) & (z - reach < camera_z + OBJECT_RANGE)


def _assign_instances(tracks: list[Track], surfaces: Surfaces, step: float, frames: int) -> list[Track]:
    """Keep the tracks that come into view and give each an instance id (track id + 1).

    Ids are uint8, so they are reused: greedily, in order of first appearance, a track takes
    the lowest id no track in view over the same frames holds. Frames already generated keep
    their ids when a sequence gets longer.
    """
    if not tracks:
        return tracks
    index = np.arange(frames)
    seen = _in_view(tracks, track_positions(tracks, index), step * index)
    visible = [
        (int(np.argmax(row)), int(frames - 1 - np.argmax(row[::-1])), track)  # (first, last frame, track)
        for row, track in zip(seen, tracks)
        if row.any()
    ]
    visible.sort(key=lambda v: (v[0], v[2].order))
    free, busy = list(range(1, 256)), []
    for first, last, track in visible:
        while busy and busy[0][0] < first:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if not free:
            raise RuntimeError("more than 255 tracks in view at once")
        track.instance = heapq.heappop(free)
        heapq.heappush(busy, (last, track.instance))
        surfaces.instance[track.surfaces] = track.instance
    return [v[2] for v in visible]
