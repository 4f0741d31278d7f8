"""Appearance: each condition's look (light, haze, rain) applied to a cast frame; labels come from the geometry alone."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from mtdepth.pipeline.synth.layout import Street, Surfaces
from mtdepth.pipeline.synth.raycast import Geometry, cast_frame
from mtdepth.pipeline.synth.world import (
    Camera,
    GLASS_COLOUR,
    KERB,
    MARKING,
    NORMALS,
    PAVEMENT,
    ROAD_SURFACE,
    SKY,
    _CLASS_RGB,
    _RAIN,
    _rng,
)


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
    "clone": Look(
        (-0.5, 0.75, -0.45), 0.6, 0.55, (1.0, 1.0, 1.0), 1.0, (70, 130, 210), (185, 215, 240), 0.002, (190, 210, 230)
    ),
    "morning": Look(
        (0.8, 0.35, 0.5), 0.65, 0.5, (1.06, 0.98, 0.84), 1.0, (120, 160, 215), (240, 215, 185), 0.006, (235, 220, 200)
    ),
    "sunset": Look(
        (-0.3, 0.15, 0.95), 0.7, 0.42, (1.2, 0.82, 0.58), 1.1, (80, 90, 150), (250, 150, 80), 0.005, (240, 160, 100)
    ),
    "overcast": Look(
        (0.0, 1.0, 0.0), 0.25, 0.7, (0.95, 0.97, 1.0), 0.7, (170, 175, 180), (205, 207, 210), 0.008, (195, 197, 200)
    ),
    "fog": Look(
        (0.0, 1.0, 0.0), 0.2, 0.72, (0.95, 0.97, 1.0), 0.6, (205, 207, 210), (205, 207, 210), 0.045, (205, 207, 210)
    ),
    "rain": Look(
        (0.0, 1.0, 0.0),
        0.15,
        0.55,
        (0.85, 0.9, 0.95),
        0.6,
        (115, 120, 128),
        (150, 155, 160),
        0.012,
        (150, 155, 160),
        wet=0.4,
        rain_streaks=3000.0,
    ),
}
RAIN_STREAK_LENGTH = 0.035  # of the image height
RAIN_SLANT = 0.2  # pixels sideways per pixel down
RAIN_OPACITY = 0.3
RAIN_COLOUR = (210, 215, 220)
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


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


def _rain_streaks(camera: Camera, rng: np.random.Generator, look: Look) -> np.ndarray:
    """Flat pixel indices of short slanted rain streaks (none without rain)."""
    height, width = camera.height, camera.width
    count = int(look.rain_streaks * height * width / 1e6)
    length = max(2, int(RAIN_STREAK_LENGTH * height))
    v = rng.integers(-length, height, count)[:, None] + np.arange(length)
    u = rng.integers(0, width, count)[:, None] + np.rint(np.arange(length) * RAIN_SLANT).astype(int)
    inside = (v >= 0) & (v < height) & (u < width)
    return v[inside] * width + u[inside]
