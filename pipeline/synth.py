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
"""

from __future__ import annotations

import heapq
import itertools
import zlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from mtdepth.pipeline import vkitti2_format as vk

# ----------------------------------------------------------------------------- camera
CAMERA = "Camera_0"
CAMERA_IDS = (0, 1)  # intrinsic.txt lists both cameras of the stereo rig, as Virtual KITTI 2 does
CAMERA_HEIGHT = 1.65  # metres above the road
CAMERA_STEP = (0.8, 1.2)  # metres driven per frame, drawn per scene
NEAR_CLIP = 0.3  # metres; nearer hits are not drawn
STATIC_RANGE = 400.0  # metres ahead to which buildings are drawn
OBJECT_RANGE = 80.0  # metres ahead to which vehicles, pedestrians and street furniture are drawn

# ----------------------------------------------------------------------------- cross-section (metres)
LANE_WIDTH = 3.2
PARKING_WIDTH = 2.2
KERB_HEIGHT = 0.15
SIDEWALK_WIDTH = (2.6, 5.0)
LINE_HALF_WIDTH = 0.07
DASH_PERIOD = 9.0
DASH_LENGTH = 3.0
PAVING_TILE = 0.6  # sidewalk slabs
PAVING_JOINT = 0.06  # part of a slab that is joint
POLE_OFFSET = 0.35  # kerbside poles, behind the kerb
TREE_OFFSET = 0.7
WALKWAYS = ((0.45, 1.0), (0.7, -1.0), (0.9, 0.0))  # (part of the sidewalk width, heading); 0: standing

# ----------------------------------------------------------------------------- blocks and buildings
BLOCK_LENGTH = 60.0  # each block of street comes from its own random stream
BUILDING_LENGTH = (8.0, 28.0)
BUILDING_DEPTH = (8.0, 16.0)
BUILDING_GAP = (4.0, 14.0)
STOREY_HEIGHT = 3.2
WINDOW_SPACING = (2.2, 3.6)  # window columns, metres apart
WINDOW_ACROSS = (0.22, 0.78)  # part of a window cell, along the facade, that is glass
WINDOW_UP = (0.3, 0.85)  # part of a storey, upwards, that is glass
BACKDROP_BEYOND = 12.0  # metres from the deepest building back to the treeline
BACKDROP_HEIGHT = (7.0, 15.0)
BACKDROP_WAVE = (12.0, 40.0)  # wavelengths of the treeline's ups and downs
CROWN_WIDTH = 5.0  # the treeline's bumps, one per tree crown
CROWN_HEIGHT = 1.8
PROP_GAP = (9.0, 26.0)  # metres between kerbside props
POLE_MIX = (("lamp", 0.4), ("sign", 0.45), ("signal", 0.15))  # kerbside props that are not trees
TREE_CROWN_BASE = (2.2, 3.0)
TREE_CROWN_HALF_WIDTH = (0.9, 1.7)
TREE_CROWN_HEIGHT = (2.0, 4.0)
LAMP_HEIGHT = (6.0, 8.0)
LAMP_ARM = (1.2, 2.2)  # reaching over the road
SIGN_HEIGHT = (2.2, 2.9)  # of the plate's lower edge
SIGN_HALF_WIDTH = (0.3, 0.4)
SIGNAL_HEIGHT = (3.0, 3.6)  # of the traffic light's housing

# ----------------------------------------------------------------------------- traffic and people
LEAD_DISTANCE = (12.0, 35.0)  # a vehicle ahead in the camera's lane, at the camera's speed
LEAD_SWAY = (1.5, 5.0)  # metres it drifts to and fro
LEAD_SWAY_PERIOD = (40.0, 120.0)  # frames
LEAD_CHANCE = 0.7
TRAFFIC_SPEED = (0.6, 1.4)  # metres per frame, per lane
WALK_SPEED = (0.10, 0.16)  # metres per frame (1-1.6 m/s at 10 frames/s)
STRIDE = 1.4  # metres per gait cycle
LEG_SWING = 0.17  # metres a foot swings forward and back
CHILD_CHANCE = 0.1
PERSON_HEIGHT = (1.55, 1.95)
CHILD_HEIGHT = (1.0, 1.35)
HIP, SHOULDER, CHIN = 0.47, 0.82, 0.86  # parts of a person's height
PERSON_DEPTH = 0.3  # metres along Z a person takes on a walkway
VEHICLE_MIX = (("Car", 0.72), ("Van", 0.18), ("Truck", 0.10))
# class -> (length, width, roof height) ranges in metres, and wheel diameter
VEHICLE_SIZE = {
    "Car": ((3.9, 4.7), (1.70, 1.86), (1.40, 1.55)),
    "Van": ((4.6, 5.4), (1.88, 2.02), (1.90, 2.20)),
    "Truck": ((7.0, 9.5), (2.35, 2.50), (3.20, 3.80)),
}
WHEEL_DIAMETER = {"Car": 0.62, "Van": 0.68, "Truck": 0.95}


@dataclass(frozen=True)
class StreetStyle:
    """The ranges one kind of street draws its layout from."""

    setback: tuple[float, float]  # facades behind the sidewalk's outer edge (lawn between)
    height: tuple[float, float]  # building heights
    gap_chance: float  # of a gap before each building
    parking_chance: float  # of a parking strip on each side
    tree_chance: float  # of each kerbside prop being a tree
    parked_gap: tuple[float, float]  # metres between parked vehicles
    traffic_gap: tuple[float, float]  # metres between moving vehicles in a lane
    walker_gap: tuple[float, float]  # metres between pedestrians on a walkway


STYLES = (
    StreetStyle((0.0, 1.0), (9.0, 26.0), 0.15, 0.85, 0.2, (0.8, 6.0), (12.0, 45.0), (2.0, 16.0)),  # city
    StreetStyle((2.5, 9.0), (5.0, 11.0), 0.4, 0.55, 0.55, (1.5, 14.0), (20.0, 70.0), (6.0, 35.0)),  # suburb
)

# ----------------------------------------------------------------------------- colours (0-255 albedo)
ROAD_COLOUR = (92, 92, 96)
MARKING_COLOUR = (225, 225, 220)
SIDEWALK_COLOUR = (170, 165, 158)
KERB_COLOUR = (190, 188, 182)
LAWN_COLOUR = (88, 128, 60)
FOLIAGE_COLOUR = (60, 105, 50)
GLASS_COLOUR = (55, 70, 85)
TYRE_COLOUR = (28, 28, 30)
METAL_COLOUR = (120, 122, 125)
BARK_COLOUR = (85, 65, 45)
HOUSING_COLOUR = (35, 38, 35)
FACADE_COLOURS = ((200, 190, 170), (225, 220, 205), (160, 85, 65), (150, 150, 150), (215, 195, 140), (170, 190, 200),
                  (120, 110, 100))
VEHICLE_PAINTS = ((235, 235, 235), (25, 25, 28), (160, 162, 165), (95, 98, 102), (150, 30, 30), (35, 60, 120),
                  (40, 75, 50), (210, 180, 40))
CLOTHES = ((30, 30, 40), (60, 70, 110), (150, 40, 40), (200, 200, 195), (70, 90, 60), (120, 100, 80), (40, 40, 40),
           (190, 150, 60))
SKIN = ((235, 200, 170), (200, 150, 110), (150, 100, 70), (95, 65, 45))
SIGN_COLOURS = ((200, 30, 30), (30, 70, 170), (235, 235, 235), (240, 200, 40))
GRAIN_SIZE = 256  # side of the tiling noise texture, cells
GRAIN_PER_METRE = 8.0
# texture kinds: how much grain each gets, and which get a pattern of their own
PLAIN, ROAD, SIDEWALK, FACADE, FOLIAGE = range(5)
GRAIN_AMPLITUDE = np.array([0.02, 0.10, 0.06, 0.035, 0.35], np.float32)
JOINT_SHADE = 0.78
WINDOW_BRIGHTNESS = (0.6, 1.5)
WINDOW_HASH = (7919, 104729, 1299709)  # primes scattering (building, column, storey) over brightnesses

# ----------------------------------------------------------------------------- classes and surfaces
CLASS_COLOURS = {**vk.CLASS_COLORS, "Pedestrian": vk.PEDESTRIAN_COLOR}  # colors.txt of the dataset
CLASS_NAMES = tuple(CLASS_COLOURS)
CLASS_IDS = {name: i for i, name in enumerate(CLASS_NAMES)}
_CLASS_RGB = np.array(list(CLASS_COLOURS.values()), np.uint8)

# Fixed surfaces, first in every street's table; buildings, props and tracks follow.
SKY, ROAD_SURFACE, MARKING, PAVEMENT, KERB, LAWN, BACKDROP = range(7)

# Face normals; a pixel's face code is surface * len(NORMALS) + normal.
POS_X, NEG_X, POS_Y, NEG_Y, POS_Z, NEG_Z = range(6)
NORMALS = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], np.float32)
N_NORMALS = len(NORMALS)

# random streams, one per purpose so that each part of the layout draws independently
_STYLE, _BUILDINGS, _PROPS, _PARKED, _TRAFFIC, _WALKERS, _LEAD, _TEXTURE, _RAIN = range(9)


@dataclass(frozen=True)
class Look:
    """The appearance of one condition: light, colours of sky and haze, weather."""

    sun: tuple[float, float, float]  # direction towards the sun, world axes
    sun_strength: float
    ambient: float
    tint: tuple[float, float, float]
    saturation: float
    sky_zenith: tuple[float, float, float]
    sky_horizon: tuple[float, float, float]
    haze: float  # extinction per metre
    haze_colour: tuple[float, float, float]
    wet: float = 0.0  # darkening of wet ground, 0-1
    rain_streaks: float = 0.0  # streaks per megapixel


LOOKS = {  # sun, sun strength, ambient, tint, saturation, sky zenith, sky horizon, haze, haze colour[, wet, rain]
    "clone": Look((-0.5, 0.75, -0.45), 0.6, 0.55, (1.0, 1.0, 1.0), 1.0,
                  (70, 130, 210), (185, 215, 240), 0.002, (190, 210, 230)),
    "morning": Look((0.8, 0.35, 0.5), 0.65, 0.5, (1.06, 0.98, 0.84), 1.0,
                    (120, 160, 215), (240, 215, 185), 0.006, (235, 220, 200)),
    "sunset": Look((-0.3, 0.15, 0.95), 0.7, 0.42, (1.2, 0.82, 0.58), 1.1,
                   (80, 90, 150), (250, 150, 80), 0.005, (240, 160, 100)),
    "overcast": Look((0.0, 1.0, 0.0), 0.25, 0.7, (0.95, 0.97, 1.0), 0.7,
                     (170, 175, 180), (205, 207, 210), 0.008, (195, 197, 200)),
    "fog": Look((0.0, 1.0, 0.0), 0.2, 0.72, (0.95, 0.97, 1.0), 0.6,
                (205, 207, 210), (205, 207, 210), 0.045, (205, 207, 210)),
    "rain": Look((0.0, 1.0, 0.0), 0.15, 0.55, (0.85, 0.9, 0.95), 0.6,
                 (115, 120, 128), (150, 155, 160), 0.012, (150, 155, 160), wet=0.4, rain_streaks=3000.0),
}
RAIN_STREAK_LENGTH = 0.035  # of the image height
RAIN_SLANT = 0.2  # pixels sideways per pixel down
RAIN_OPACITY = 0.3
RAIN_COLOUR = (210, 215, 220)
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


# ============================================================================= camera


@dataclass(frozen=True, eq=False)
class Camera:
    """A level pinhole camera; dx[u] and dy[v] are the ray of pixel (u, v) per metre of depth."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    dx: np.ndarray  # (W,) float32, rightwards
    dy: np.ndarray  # (H,) float32, downwards

    @property
    def intrinsics(self) -> tuple[float, float, float, float]:
        return (self.fx, self.fy, self.cx, self.cy)


def make_camera(width: int, height: int) -> Camera:
    """Virtual KITTI 2's intrinsics scaled proportionally to width x height."""
    fx, fy, cx, cy = vk.INTRINSICS
    sx, sy = width / vk.IMAGE_SIZE[0], height / vk.IMAGE_SIZE[1]
    fx, fy, cx, cy = fx * sx, fy * sy, cx * sx, cy * sy
    dx = ((np.arange(width) - cx) / fx).astype(np.float32)
    dy = ((np.arange(height) - cy) / fy).astype(np.float32)
    return Camera(width, height, fx, fy, cx, cy, dx, dy)


# ============================================================================= layout


def _rng(seed: int, scene: str, *keys: int) -> np.random.Generator:
    """The random stream of one part of one scene's layout."""
    entropy = [seed % 2**64, zlib.crc32(scene.encode())] + [k % 2**32 for k in keys]
    return np.random.default_rng(entropy)


def _pick(rng: np.random.Generator, options: tuple) -> tuple:
    return options[rng.integers(len(options))]


def _jitter(rng: np.random.Generator, colour: tuple, amount: float = 12.0) -> tuple:
    return tuple(np.clip(np.asarray(colour) + rng.uniform(-amount, amount, 3), 0, 255))


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

    def add(self, colour: tuple, class_name: str, kind: int = PLAIN,
            origin: float = 0.0, spacing: float = 0.0, top: float = 0.0) -> int:
        self.rows.append((colour, CLASS_IDS[class_name], 0, kind, origin, spacing, top))
        return len(self.rows) - 1

    def table(self) -> Surfaces:
        colour, class_id, instance, kind, origin, spacing, top = zip(*self.rows)
        return Surfaces(np.array(colour, np.float32), np.array(class_id, np.uint8), np.array(instance, np.uint8),
                        np.array(kind, np.uint8), np.array(origin, np.float32), np.array(spacing, np.float32),
                        np.array(top, np.float32))


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


_BUILDING = np.dtype([("side", np.int8), ("face", np.float32), ("z0", np.float32), ("z1", np.float32),
                      ("depth", np.float32), ("height", np.float32), ("surface", np.int32)])


def _place_along(seed: int, scene: str, key: tuple[int, ...], z_range: tuple[float, float],
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


def _box(lo: tuple, hi: tuple) -> tuple[np.ndarray, np.ndarray]:
    return np.array(lo, np.float32), np.array(hi, np.float32)


def _vehicle_parts(rng: np.random.Generator, class_name: str, heading: float) -> tuple[float, list]:
    """(length, [(lo, hi, colour)]) of a Car, Van or Truck whose front points along heading*Z."""
    length, width, roof = (rng.uniform(*size) for size in VEHICLE_SIZE[class_name])
    wheel = WHEEL_DIAMETER[class_name]
    half, paint = width / 2, _jitter(rng, _pick(rng, VEHICLE_PAINTS), 8)
    front, back = length / 2, -length / 2
    axle = front - 1.3 * wheel  # front axle; the rear one mirrors it
    parts = []
    if class_name == "Car":
        belt = wheel + 0.35 * (roof - wheel)
        parts += [_box((-half, wheel / 2, back), (half, belt, front)) + (paint,),
                  _box((-half + 0.08, belt, back + 0.25 * length), (half - 0.08, roof, front - 0.3 * length))
                  + (GLASS_COLOUR,)]
    elif class_name == "Van":
        nose = front - 0.9
        parts += [_box((-half, wheel / 2, back), (half, roof, nose)) + (paint,),
                  _box((-half, wheel / 2, nose), (half, wheel + 0.5, front)) + (paint,)]
    else:
        cab = front - 2.0
        parts += [_box((-half, wheel / 2, cab), (half, 0.8 * roof, front)) + (paint,),
                  _box((-half, 0.9 * wheel, back), (half, roof, cab - 0.3))
                  + (_jitter(rng, _pick(rng, FACADE_COLOURS)),)]
        axle = front - 1.2 * wheel
    for z in (axle, -axle):
        parts.append(_box((-half + 0.02, 0.0, z - wheel / 2), (half - 0.02, wheel, z + wheel / 2)) + (TYRE_COLOUR,))
    if heading < 0:
        along_z = np.array([False, False, True])  # mirrored along Z, where lo and hi swap
        parts = [(np.where(along_z, -hi, lo), np.where(along_z, -lo, hi), colour) for lo, hi, colour in parts]
    return length, parts


def _pedestrian_parts(rng: np.random.Generator) -> tuple[list, np.ndarray]:
    """([(lo, hi, colour)], swing per part) of a person: two legs, torso with arms, neck, head."""
    height = rng.uniform(*(CHILD_HEIGHT if rng.random() < CHILD_CHANCE else PERSON_HEIGHT))
    s = height / np.mean(PERSON_HEIGHT)  # widths scale with height
    hip, shoulder, chin = HIP * height, SHOULDER * height, CHIN * height
    trousers, shirt, skin = _pick(rng, CLOTHES), _pick(rng, CLOTHES), _pick(rng, SKIN)
    parts = [_box((-0.17 * s, 0.0, -0.08), (-0.03 * s, hip, 0.08)) + (trousers,),
             _box((0.03 * s, 0.0, -0.08), (0.17 * s, hip, 0.08)) + (trousers,),
             _box((-0.23 * s, hip, -0.12), (0.23 * s, shoulder, 0.12)) + (shirt,),
             _box((-0.06 * s, shoulder, -0.06), (0.06 * s, chin, 0.06)) + (skin,),
             _box((-0.09 * s, chin, -0.11), (0.09 * s, height, 0.11)) + (skin,)]
    swing = np.array([1.0, -1.0, 0.0, 0.0, 0.0], np.float32) * LEG_SWING * s
    return parts, swing


def _lay_out_buildings(seed, scene, style, book, side, facade_at, z_range) -> list[tuple]:
    """Buildings on one side as _BUILDING rows, with gaps; each one a surface of its own."""
    def gap(rng):
        return rng.uniform(*BUILDING_GAP) if rng.random() < style.gap_chance else 0.0

    def make(rng):
        return rng.uniform(*BUILDING_LENGTH), rng

    rows = []
    for z0, length, rng, _ in _place_along(seed, scene, (_BUILDINGS, side), z_range, gap, make):
        height = rng.uniform(*style.height)
        surface = book.add(_jitter(rng, _pick(rng, FACADE_COLOURS)), "Building", FACADE,
                           origin=z0 + rng.uniform(0, 1), spacing=rng.uniform(*WINDOW_SPACING), top=height)
        face = facade_at + rng.uniform(*style.setback)
        rows.append((side, face, z0, z0 + length, rng.uniform(*BUILDING_DEPTH), height, surface))
    return rows


def _tree(rng, book, x, z) -> list[tuple]:
    """Trunk and a box of a crown, as [((lo, hi), surface)]."""
    base, half, height = (rng.uniform(*r) for r in (TREE_CROWN_BASE, TREE_CROWN_HALF_WIDTH, TREE_CROWN_HEIGHT))
    trunk = 0.13  # half width
    return [(_box((x - trunk, 0, z - trunk), (x + trunk, base + 0.5, z + trunk)), book.add(BARK_COLOUR, "Tree")),
            (_box((x - half, base, z - half), (x + half, base + height, z + half)),
             book.add(_jitter(rng, FOLIAGE_COLOUR, 20), "Tree", FOLIAGE))]


def _lamp_post(rng, book, x, z, side) -> list[tuple]:
    """Pole, an arm reaching over the road, and the lamp at its end."""
    top, arm_end = rng.uniform(*LAMP_HEIGHT), x - side * rng.uniform(*LAMP_ARM)
    metal = book.add(METAL_COLOUR, "Pole")
    return [(_box((x - 0.08, 0, z - 0.08), (x + 0.08, top, z + 0.08)), metal),
            (_box((min(x, arm_end), top - 0.12, z - 0.05), (max(x, arm_end), top, z + 0.05)), metal),
            (_box((arm_end - 0.25, top - 0.25, z - 0.15), (arm_end + 0.25, top - 0.05, z + 0.15)), metal)]


def _sign(rng, book, x, z) -> list[tuple]:
    """A thin post and a square plate facing the camera."""
    bottom, half = rng.uniform(*SIGN_HEIGHT), rng.uniform(*SIGN_HALF_WIDTH)
    return [(_box((x - 0.04, 0, z - 0.04), (x + 0.04, bottom, z + 0.04)), book.add(METAL_COLOUR, "Pole")),
            (_box((x - half, bottom, z - 0.06), (x + half, bottom + 2 * half, z - 0.03)),
             book.add(_pick(rng, SIGN_COLOURS), "TrafficSign"))]


def _traffic_light(rng, book, x, z) -> list[tuple]:
    """A post and the housing of a traffic light on top."""
    bottom = rng.uniform(*SIGNAL_HEIGHT)
    return [(_box((x - 0.07, 0, z - 0.07), (x + 0.07, bottom, z + 0.07)), book.add(METAL_COLOUR, "Pole")),
            (_box((x - 0.17, bottom, z - 0.3), (x + 0.17, bottom + 0.9, z - 0.07)),
             book.add(HOUSING_COLOUR, "TrafficLight"))]


def _lay_out_props(seed, scene, style, book, side, kerb, z_range) -> list[tuple]:
    """Kerbside furniture on one side as [((lo, hi), surface)] world boxes."""
    names, weights = zip(*POLE_MIX)
    boxes = []
    spots = _place_along(seed, scene, (_PROPS, side), z_range, lambda r: r.uniform(*PROP_GAP), lambda r: (0.5, r))
    for z, _, rng, _ in spots:
        if rng.random() < style.tree_chance:
            boxes += _tree(rng, book, side * (kerb + TREE_OFFSET), z)
            continue
        x, name = side * (kerb + POLE_OFFSET), names[rng.choice(len(names), p=np.array(weights) / sum(weights))]
        if name == "lamp":
            boxes += _lamp_post(rng, book, x, z, side)
        elif name == "sign":
            boxes += _sign(rng, book, x, z)
        else:
            boxes += _traffic_light(rng, book, x, z)
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
        length, parts = _vehicle_parts(rng, class_name, heading)
        return length, (class_name, parts)

    return [_track(order, class_name, x, z + length / 2, speed, parts, book)
            for z, length, (class_name, parts), order in _place_along(seed, scene, key, z_range,
                                                                      lambda r: r.uniform(*gap), make)]


def _walker_row(seed, scene, book, key, x, speed, gap, z_range) -> list[Track]:
    """Pedestrians on one walkway, all at one speed along Z (0: standing)."""
    def make(rng):
        parts, swing = _pedestrian_parts(rng)
        return PERSON_DEPTH, (parts, swing * (speed != 0), rng.uniform(0, 2 * np.pi))

    return [_track(order, "Pedestrian", x, z + depth / 2, speed, parts, book, swing=swing, phase=phase)
            for z, depth, (parts, swing, phase), order in _place_along(seed, scene, key, z_range,
                                                                       lambda r: r.uniform(*gap), make)]


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
    for colour, class_name, kind in ((vk.CLASS_COLORS["Sky"], "Sky", PLAIN), (ROAD_COLOUR, "Road", ROAD),
                                     (MARKING_COLOUR, "Road", PLAIN), (SIDEWALK_COLOUR, "Road", SIDEWALK),
                                     (KERB_COLOUR, "Road", PLAIN), (LAWN_COLOUR, "Terrain", FOLIAGE),
                                     (FOLIAGE_COLOUR, "Vegetation", FOLIAGE)):
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
        backdrop[side_index] = (deepest + BACKDROP_BEYOND, (low + high) / 2, (high - low) / 2,
                                rng.uniform(*BACKDROP_WAVE), rng.uniform(0, 2 * np.pi))

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
            tracks += _vehicle_row(seed, scene, book, (_TRAFFIC, side, lane), side * (lane + 0.5) * LANE_WIDTH, heading,
                                   speed, style.traffic_gap, _moving_range(speed, step, frames, longest))
        for walkway, (across, walk_heading) in enumerate(WALKWAYS):
            walk_rng = _rng(seed, scene, _WALKERS, side, walkway)
            speed = walk_heading * walk_rng.uniform(*WALK_SPEED)
            x = side * (kerbs[side_index] + across * (walk_edges[side_index] - kerbs[side_index]))
            tracks += _walker_row(seed, scene, book, (_WALKERS, side, walkway), x, speed, style.walker_gap,
                                  _moving_range(speed, step, frames, longest))
    lead_rng = _rng(seed, scene, _LEAD)
    if lead_rng.random() < LEAD_CHANCE:
        class_name = _choose_vehicle(lead_rng)
        _, parts = _vehicle_parts(lead_rng, class_name, 1.0)
        tracks.append(_track((_LEAD,), class_name, camera_x, lead_rng.uniform(*LEAD_DISTANCE), step, parts, book,
                             sway=lead_rng.uniform(*LEAD_SWAY), sway_period=lead_rng.uniform(*LEAD_SWAY_PERIOD),
                             phase=lead_rng.uniform(0, 2 * np.pi)))

    surfaces = book.table()
    tracks = _assign_instances(tracks, surfaces, step, frames)
    props_lo = np.array([b[0][0] for b in props], np.float32).reshape(-1, 3)
    props_hi = np.array([b[0][1] for b in props], np.float32).reshape(-1, 3)
    grain = _rng(seed, scene, _TEXTURE).uniform(-1, 1, (GRAIN_SIZE, GRAIN_SIZE)).astype(np.float32)
    return Street(seed, scene, step, camera_x, kerbs, walk_edges, np.array(lines, np.float32), np.array(dashed),
                  buildings, backdrop, props_lo, props_hi, np.array([b[1] for b in props], np.int32),
                  tracks, surfaces, grain)


# ============================================================================= tracks over time


def track_positions(tracks: list[Track], frames: np.ndarray) -> np.ndarray:
    """(T, F) Z of each track's origin at each of the frame indices `frames` (F,)."""
    z0, speed, sway, period, phase = (np.array([getattr(t, a) for t in tracks], np.float64)[:, None]
                                      for a in ("z_start", "speed", "sway", "sway_period", "phase"))
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
    visible = [(int(np.argmax(row)), int(frames - 1 - np.argmax(row[::-1])), track)  # (first, last frame, track)
               for row, track in zip(seen, tracks) if row.any()]
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


# ============================================================================= casting rays


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
        for track, track_z, shown in zip(street.tracks, z[:, 0], _in_view(street.tracks, z, camera_z)[:, 0]):
            if not shown:
                continue
            gait = np.sin(2 * np.pi * abs(track.speed) * index / STRIDE + track.phase)
            offset = np.zeros((len(track.swing), 3), np.float32)
            offset[:, 0], offset[:, 2] = track.x, track_z + track.swing * gait
            los.append(track.lo + offset)
            his.append(track.hi + offset)
            surfaces.append(track.surfaces)
    return np.concatenate(los), np.concatenate(his), np.concatenate(surfaces)


def _cast_boxes(street: Street, camera: Camera, camera_z: float, lo: np.ndarray, hi: np.ndarray,
                surface: np.ndarray, depth: np.ndarray, face: np.ndarray) -> None:
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


# ============================================================================= appearance


@dataclass(eq=False)
class SynthFrame:
    """One frame's files, as arrays: what the write functions of vkitti2_format take."""

    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32 metres along z, inf for sky
    class_rgb: np.ndarray  # (H, W, 3) uint8 class colours
    instances: np.ndarray  # (H, W) uint8, 0 background, else track id + 1


def shade_frame(street: Street, camera: Camera, geometry: Geometry, condition: str) -> SynthFrame:
    """Colour a cast frame under `condition`; depth and labels come from the geometry alone.

    Colour is computed one channel at a time: gathers and arithmetic on (H, W) planes are
    several times faster in numpy than on interleaved (H, W, 3) arrays.
    """
    look = LOOKS[condition]
    face, depth, surface, panes = geometry.face, geometry.depth, geometry.surface, geometry.panes
    sky = surface == SKY
    haze = -np.expm1(-look.haze * np.where(sky, 0, depth))
    brightness = geometry.detail * (1 - haze)
    glass = _graded(np.asarray(GLASS_COLOUR, np.float32), look)[:, None] * _light(look)[None, :]  # (3, 6)
    pane_colours = glass[:, geometry.pane_normal] * geometry.pane_brightness
    rain_rng = _rng(street.seed, street.scene, _RAIN, zlib.crc32(condition.encode()), geometry.index)
    streaks = _rain_streaks(camera, rain_rng, look)
    palette, sky_rows = _palette(street.surfaces, look), _sky_rows(camera, look)
    rgb = np.empty((camera.height, camera.width, 3), np.uint8)
    for c in range(3):
        channel = np.take(palette[c], face)
        flat = channel.ravel()
        flat[panes] = pane_colours[c]
        channel *= brightness
        channel += haze * np.float32(look.haze_colour[c])
        np.copyto(channel, np.broadcast_to(sky_rows[c][:, None], channel.shape), where=sky)
        flat[streaks] += (RAIN_COLOUR[c] - flat[streaks]) * RAIN_OPACITY
        np.clip(channel, 0, 255, out=channel)
        rgb[..., c] = channel
    class_rgb = np.take(_CLASS_RGB[street.surfaces.class_id], surface, axis=0)
    instances = np.take(street.surfaces.instance, surface)
    return SynthFrame(rgb, depth, class_rgb, instances)


def render_frame(street: Street, camera: Camera, condition: str, index: int) -> SynthFrame:
    """Cast and shade frame `index` of `street` under `condition`."""
    return shade_frame(street, camera, cast_frame(street, camera, index), condition)


def _light(look: Look) -> np.ndarray:
    """(6,) brightness of a face of each normal."""
    sun = np.asarray(look.sun, np.float32)
    return look.ambient + look.sun_strength * np.clip(NORMALS @ (sun / np.linalg.norm(sun)), 0, None)


def _graded(colour: np.ndarray, look: Look) -> np.ndarray:
    """Albedo (..., 3) after the condition's saturation and tint."""
    grey = (colour @ LUMA)[..., None]
    return (grey + look.saturation * (colour - grey)) * np.asarray(look.tint, np.float32)


def _palette(surfaces: Surfaces, look: Look) -> np.ndarray:
    """(3, S * 6) lit colour of every face code, one row per channel."""
    colour = _graded(surfaces.colour, look)
    colour[[ROAD_SURFACE, MARKING, PAVEMENT, KERB]] *= 1 - look.wet
    lit = colour[:, None, :] * _light(look)[None, :, None]
    return np.ascontiguousarray(lit.reshape(-1, 3).T, np.float32)


def _sky_rows(camera: Camera, look: Look) -> np.ndarray:
    """(3, H) sky colour per row: the horizon colour blending into the zenith colour upwards."""
    elevation = np.clip(-camera.dy / np.abs(camera.dy).max(), 0, 1)[None, :]
    horizon, zenith = (np.asarray(c, np.float32)[:, None] for c in (look.sky_horizon, look.sky_zenith))
    return (horizon * (1 - elevation) + zenith * elevation).astype(np.float32)


def _detail(street: Street, camera: Camera, camera_z: float, depth: np.ndarray, face: np.ndarray,
            surface: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
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
    cell = (((along * GRAIN_PER_METRE).astype(np.int32) & mask) * GRAIN_SIZE
            + ((across * GRAIN_PER_METRE).astype(np.int32) & mask))
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
    glass = ((u - column > WINDOW_ACROSS[0]) & (u - column < WINDOW_ACROSS[1]) & (up - storey > WINDOW_UP[0])
             & (up - storey < WINDOW_UP[1]) & (storey + 1 < street.surfaces.top[s] / STOREY_HEIGHT))
    panes = walls[glass]
    # the building is known by its window grid's origin: its surface id shifts with the sequence length
    building = np.rint(street.surfaces.origin[s[glass]] * 1000).astype(np.int64)
    building_prime, column_prime, storey_prime = WINDOW_HASH
    window = (building * building_prime + column[glass].astype(np.int64) * column_prime
              + storey[glass].astype(np.int64) * storey_prime) % 1000
    low, high = WINDOW_BRIGHTNESS
    pane_brightness = (low + (high - low) * window / 1000).astype(np.float32)
    return brightness.reshape(depth.shape).astype(np.float32), panes, normal.ravel()[panes], pane_brightness


def _rain_streaks(camera: Camera, rng: np.random.Generator, look: Look) -> np.ndarray:
    """Flat pixel indices of short slanted rain streaks (none without rain)."""
    height, width = camera.height, camera.width
    count = int(look.rain_streaks * height * width / 1e6)
    length = max(2, int(RAIN_STREAK_LENGTH * height))
    v = rng.integers(-length, height, count)[:, None] + np.arange(length)
    u = rng.integers(0, width, count)[:, None] + np.rint(np.arange(length) * RAIN_SLANT).astype(int)
    inside = (v >= 0) & (v < height) & (u < width)
    return v[inside] * width + u[inside]


# ============================================================================= files


def modality_path(root: Path, modality: str, scene: str, condition: str, index: int) -> Path:
    """Where frame `index` of one modality goes under the dataset root."""
    return vk.archive_dir(root, modality) / vk.frame_path(modality, scene, condition, CAMERA, index)


def write_textgt(root: Path, scene: str, condition: str, frames: int, camera: Camera) -> None:
    """intrinsic.txt (both cameras, every frame) and colors.txt (with Pedestrian) of one sequence."""
    folder = vk.archive_dir(root, vk.TEXTGT)
    intrinsic = folder / vk.textgt_path(scene, condition, "intrinsic.txt")
    intrinsic.parent.mkdir(parents=True, exist_ok=True)
    vk.write_intrinsics(intrinsic, range(frames), CAMERA_IDS, camera.intrinsics)
    vk.write_colors(folder / vk.textgt_path(scene, condition, "colors.txt"), CLASS_COLOURS)


def write_frame(root: Path, scene: str, condition: str, index: int, frame: SynthFrame) -> None:
    """Write one frame's RGB, depth, class and instance files."""
    for modality, write, data in (("rgb", vk.write_rgb, frame.rgb),
                                  ("depth", vk.write_depth_units, vk.encode_depth(frame.depth)),
                                  ("classSegmentation", vk.write_class_rgb, frame.class_rgb),
                                  ("instanceSegmentation", vk.write_instances, frame.instances)):
        path = modality_path(root, modality, scene, condition, index)
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path, data)


def write_dataset(root: Path, seed: int, scenes: tuple[str, ...], conditions: tuple[str, ...], frames: int,
                  width: int, height: int) -> Iterator[tuple[str, str, int]]:
    """Write the whole dataset under `root`; yields (scene, condition, index) after each frame.

    Each frame is cast once and shaded under every condition, as the geometry is shared.
    """
    camera = make_camera(width, height)
    for scene in scenes:
        street = build_street(seed, scene, frames)
        for condition in conditions:
            write_textgt(root, scene, condition, frames, camera)
        for index in range(frames):
            geometry = cast_frame(street, camera, index)
            for condition in conditions:
                write_frame(root, scene, condition, index, shade_frame(street, camera, geometry, condition))
                yield scene, condition, index
