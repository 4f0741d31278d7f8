"""Constants of the synthetic world (cross-section, blocks, traffic, colours, classes, surfaces) and the camera.

Also the seeded random streams, and the block-by-block placement that the layout and the tracks share.
"""

from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass
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
FACADE_COLOURS = (
    (200, 190, 170),
    (225, 220, 205),
    (160, 85, 65),
    (150, 150, 150),
    (215, 195, 140),
    (170, 190, 200),
    (120, 110, 100),
)
VEHICLE_PAINTS = (
    (235, 235, 235),
    (25, 25, 28),
    (160, 162, 165),
    (95, 98, 102),
    (150, 30, 30),
    (35, 60, 120),
    (40, 75, 50),
    (210, 180, 40),
)
CLOTHES = (
    (30, 30, 40),
    (60, 70, 110),
    (150, 40, 40),
    (200, 200, 195),
    (70, 90, 60),
    (120, 100, 80),
    (40, 40, 40),
    (190, 150, 60),
)
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


# ============================================================================= random streams


def _rng(seed: int, scene: str, *keys: int) -> np.random.Generator:
    """The random stream of one part of one scene's layout."""
    entropy = [seed % 2**64, zlib.crc32(scene.encode())] + [k % 2**32 for k in keys]
    return np.random.default_rng(entropy)


def _pick(rng: np.random.Generator, options: tuple) -> tuple:
    return options[rng.integers(len(options))]


def _pick_weighted(rng: np.random.Generator, mix: tuple) -> str:
    """A name from a mix of (name, weight) pairs, drawn with those weights."""
    names, weights = zip(*mix)
    return names[rng.choice(len(names), p=np.array(weights) / sum(weights))]


def _jitter(rng: np.random.Generator, colour: tuple, amount: float = 12.0) -> tuple:
    return tuple(np.clip(np.asarray(colour) + rng.uniform(-amount, amount, 3), 0, 255))


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
