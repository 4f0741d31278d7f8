"""Box parts of the street's objects: vehicles, pedestrians, trees, lamp posts, signs, traffic lights.

Each builder returns axis-aligned boxes (lo, hi) with a colour or a surface from the layout's
surface book; `layout` places them along the street.
"""

from __future__ import annotations

import numpy as np

from mtdepth.pipeline.synth.world import (
    BARK_COLOUR,
    CHILD_CHANCE,
    CHILD_HEIGHT,
    CHIN,
    CLOTHES,
    FACADE_COLOURS,
    FOLIAGE,
    FOLIAGE_COLOUR,
    GLASS_COLOUR,
    HIP,
    HOUSING_COLOUR,
    LAMP_ARM,
    LAMP_HEIGHT,
    LEG_SWING,
    METAL_COLOUR,
    PERSON_HEIGHT,
    SHOULDER,
    SIGNAL_HEIGHT,
    SIGN_COLOURS,
    SIGN_HALF_WIDTH,
    SIGN_HEIGHT,
    SKIN,
    TREE_CROWN_BASE,
    TREE_CROWN_HALF_WIDTH,
    TREE_CROWN_HEIGHT,
    TYRE_COLOUR,
    VEHICLE_PAINTS,
    VEHICLE_SIZE,
    WHEEL_DIAMETER,
    _jitter,
    _pick,
)


def _box(lo: tuple, hi: tuple) -> tuple[np.ndarray, np.ndarray]:
    return np.array(lo, np.float32), np.array(hi, np.float32)


def vehicle_parts(rng: np.random.Generator, class_name: str, heading: float) -> tuple[float, list]:
    """(length, [(lo, hi, colour)]) of a Car, Van or Truck whose front points along heading*Z."""
    length, width, roof = (rng.uniform(*size) for size in VEHICLE_SIZE[class_name])
    wheel = WHEEL_DIAMETER[class_name]
    half, paint = width / 2, _jitter(rng, _pick(rng, VEHICLE_PAINTS), 8)
    front, back = length / 2, -length / 2
    axle = front - 1.3 * wheel  # front axle; the rear one mirrors it
    parts = []
    if class_name == "Car":
        belt = wheel + 0.35 * (roof - wheel)
        parts += [
            _box((-half, wheel / 2, back), (half, belt, front)) + (paint,),
            _box((-half + 0.08, belt, back + 0.25 * length), (half - 0.08, roof, front - 0.3 * length))
            + (GLASS_COLOUR,),
        ]
    elif class_name == "Van":
        nose = front - 0.9
        parts += [
            _box((-half, wheel / 2, back), (half, roof, nose)) + (paint,),
            _box((-half, wheel / 2, nose), (half, wheel + 0.5, front)) + (paint,),
        ]
    else:
        cab = front - 2.0
        parts += [
            _box((-half, wheel / 2, cab), (half, 0.8 * roof, front)) + (paint,),
            _box((-half, 0.9 * wheel, back), (half, roof, cab - 0.3)) + (_jitter(rng, _pick(rng, FACADE_COLOURS)),),
        ]
        axle = front - 1.2 * wheel
    for z in (axle, -axle):
        parts.append(_box((-half + 0.02, 0.0, z - wheel / 2), (half - 0.02, wheel, z + wheel / 2)) + (TYRE_COLOUR,))
    if heading < 0:
        along_z = np.array([False, False, True])  # mirrored along Z, where lo and hi swap
        parts = [(np.where(along_z, -hi, lo), np.where(along_z, -lo, hi), colour) for lo, hi, colour in parts]
    return length, parts


def pedestrian_parts(rng: np.random.Generator) -> tuple[list, np.ndarray]:
    """([(lo, hi, colour)], swing per part) of a person: two legs, torso with arms, neck, head."""
    height = rng.uniform(*(CHILD_HEIGHT if rng.random() < CHILD_CHANCE else PERSON_HEIGHT))
    s = height / np.mean(PERSON_HEIGHT)  # widths scale with height
    hip, shoulder, chin = HIP * height, SHOULDER * height, CHIN * height
    trousers, shirt, skin = _pick(rng, CLOTHES), _pick(rng, CLOTHES), _pick(rng, SKIN)
    parts = [
        _box((-0.17 * s, 0.0, -0.08), (-0.03 * s, hip, 0.08)) + (trousers,),
        _box((0.03 * s, 0.0, -0.08), (0.17 * s, hip, 0.08)) + (trousers,),
        _box((-0.23 * s, hip, -0.12), (0.23 * s, shoulder, 0.12)) + (shirt,),
        _box((-0.06 * s, shoulder, -0.06), (0.06 * s, chin, 0.06)) + (skin,),
        _box((-0.09 * s, chin, -0.11), (0.09 * s, height, 0.11)) + (skin,),
    ]
    swing = np.array([1.0, -1.0, 0.0, 0.0, 0.0], np.float32) * LEG_SWING * s
    return parts, swing


def tree(rng, book, x, z) -> list[tuple]:
    """Trunk and a box of a crown, as [((lo, hi), surface)]."""
    base, half, height = (rng.uniform(*r) for r in (TREE_CROWN_BASE, TREE_CROWN_HALF_WIDTH, TREE_CROWN_HEIGHT))
    trunk = 0.13  # half width
    return [
        (_box((x - trunk, 0, z - trunk), (x + trunk, base + 0.5, z + trunk)), book.add(BARK_COLOUR, "Tree")),
        (
            _box((x - half, base, z - half), (x + half, base + height, z + half)),
            book.add(_jitter(rng, FOLIAGE_COLOUR, 20), "Tree", FOLIAGE),
        ),
    ]


def lamp_post(rng, book, x, z, side) -> list[tuple]:
    """Pole, an arm reaching over the road, and the lamp at its end."""
    top, arm_end = rng.uniform(*LAMP_HEIGHT), x - side * rng.uniform(*LAMP_ARM)
    metal = book.add(METAL_COLOUR, "Pole")
    return [
        (_box((x - 0.08, 0, z - 0.08), (x + 0.08, top, z + 0.08)), metal),
        (_box((min(x, arm_end), top - 0.12, z - 0.05), (max(x, arm_end), top, z + 0.05)), metal),
        (_box((arm_end - 0.25, top - 0.25, z - 0.15), (arm_end + 0.25, top - 0.05, z + 0.15)), metal),
    ]


def sign(rng, book, x, z) -> list[tuple]:
    """A thin post and a square plate facing the camera."""
    bottom, half = rng.uniform(*SIGN_HEIGHT), rng.uniform(*SIGN_HALF_WIDTH)
    return [
        (_box((x - 0.04, 0, z - 0.04), (x + 0.04, bottom, z + 0.04)), book.add(METAL_COLOUR, "Pole")),
        (
            _box((x - half, bottom, z - 0.06), (x + half, bottom + 2 * half, z - 0.03)),
            book.add(_pick(rng, SIGN_COLOURS), "TrafficSign"),
        ),
    ]


def traffic_light(rng, book, x, z) -> list[tuple]:
    """A post and the housing of a traffic light on top."""
    bottom = rng.uniform(*SIGNAL_HEIGHT)
    return [
        (_box((x - 0.07, 0, z - 0.07), (x + 0.07, bottom, z + 0.07)), book.add(METAL_COLOUR, "Pole")),
        (
            _box((x - 0.17, bottom, z - 0.3), (x + 0.17, bottom + 0.9, z - 0.07)),
            book.add(HOUSING_COLOUR, "TrafficLight"),
        ),
    ]
