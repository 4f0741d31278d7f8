"""Vehicle and pedestrian tracks: laid out in rows along the street, moved frame by frame, given instance ids."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from mtdepth.pipeline.synth.parts import pedestrian_parts, vehicle_parts
from mtdepth.pipeline.synth.world import (
    NEAR_CLIP,
    OBJECT_RANGE,
    PERSON_DEPTH,
    VEHICLE_MIX,
    _pick_weighted,
    _place_along,
)

if TYPE_CHECKING:
    from mtdepth.pipeline.synth.layout import Surfaces


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


def track_from_parts(order, class_name, x, z_start, speed, parts, book, swing=None, **motion) -> Track:
    """A Track from parts [(lo, hi, colour)], each part a surface of the track's class."""
    surfaces = np.array([book.add(colour, class_name) for _, _, colour in parts], np.int32)
    lo, hi = np.stack([p[0] for p in parts]), np.stack([p[1] for p in parts])
    swing = np.zeros(len(parts), np.float32) if swing is None else swing
    return Track(order, class_name, x, z_start, speed, lo, hi, surfaces, swing, **motion)


def vehicle_row(seed, scene, book, key, x, heading, speed, gap, z_range) -> list[Track]:
    """Vehicles in one lane or parking strip, all at one speed, so they never collide."""

    def make(rng):
        class_name = _pick_weighted(rng, VEHICLE_MIX)
        length, parts = vehicle_parts(rng, class_name, heading)
        return length, (class_name, parts)

    return [
        track_from_parts(order, class_name, x, z + length / 2, speed, parts, book)
        for z, length, (class_name, parts), order in _place_along(
            seed, scene, key, z_range, lambda r: r.uniform(*gap), make
        )
    ]


def walker_row(seed, scene, book, key, x, speed, gap, z_range) -> list[Track]:
    """Pedestrians on one walkway, all at one speed along Z (0: standing)."""

    def make(rng):
        parts, swing = pedestrian_parts(rng)
        return PERSON_DEPTH, (parts, swing * (speed != 0), rng.uniform(0, 2 * np.pi))

    return [
        track_from_parts(order, "Pedestrian", x, z + depth / 2, speed, parts, book, swing=swing, phase=phase)
        for z, depth, (parts, swing, phase), order in _place_along(
            seed, scene, key, z_range, lambda r: r.uniform(*gap), make
        )
    ]


def moving_range(speed: float, step: float, frames: int, margin: float) -> tuple[float, float]:
    """Z at frame 0 of everything moving at `speed` that comes within view in `frames` frames."""
    drift = (speed - step) * (frames - 1)
    return -margin - max(drift, 0.0), OBJECT_RANGE + margin - min(drift, 0.0)


def track_positions(tracks: list[Track], frames: np.ndarray) -> np.ndarray:
    """(T, F) Z of each track's origin at each of the frame indices `frames` (F,)."""
    z0, speed, sway, period, phase = (
        np.array([getattr(t, a) for t in tracks], np.float64)[:, None]
        for a in ("z_start", "speed", "sway", "sway_period", "phase")
    )
    frames = np.asarray(frames, np.float64)[None, :]
    return z0 + speed * frames + sway * np.sin(2 * np.pi * frames / period + phase)


def in_view(tracks: list[Track], z: np.ndarray, camera_z: np.ndarray) -> np.ndarray:
    """(T, F) whether tracks at Z `z` (T, F) are within the drawn range ahead of the camera at `camera_z` (F,)."""
    reach = np.array([t.reach for t in tracks])[:, None]
    return (z + reach > camera_z + NEAR_CLIP) & (z - reach < camera_z + OBJECT_RANGE)


def assign_instances(tracks: list[Track], surfaces: Surfaces, step: float, frames: int) -> list[Track]:
    """Keep the tracks that come into view and give each an instance id (track id + 1).

    Ids are uint8, so they are reused: greedily, in order of first appearance, a track takes
    the lowest id no track in view over the same frames holds. Frames already generated keep
    their ids when a sequence gets longer.
    """
    if not tracks:
        return tracks
    index = np.arange(frames)
    seen = in_view(tracks, track_positions(tracks, index), step * index)
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
