"""Where things live inside a store, shared by its writer and its reader.

    zarr.json                     root: schema_version, geometry, frames, rows_fingerprint,
                                  frames_fingerprint (the frame table's commit point, last)
    frames/<column>               the frame table, one chunk per column
    <name>/zarr.json              group of data array <name>; its attributes are the commit
                                  record {version, fingerprint, provenance, shard_bytes}
    <name>/<version>/...          one version of the data array, version = "v-" + fingerprint[:16]
    _progress/<name>              the version being written: int64 (n_shards,) stored bytes
                                  of each shard written (0 = not yet); attrs target, provenance, version

Copy-on-write: a new version is written beside the committed one and the commit record
switches to it in one metadata write; the old version is deleted after that.
"""

from __future__ import annotations

import math

import zarr

from mtdepth.cache.schema import FRAMES_GROUP, PROGRESS_GROUP

GEOMETRY = ("height", "width", "shard_frames")
COMMIT_KEYS = ("version", "fingerprint", "provenance", "shard_bytes")
VERSION_PREFIX = "v-"
VERSION_DIGITS = 16
NOT_FOUND = (KeyError, FileNotFoundError, ValueError)  # missing or unreadable node (zarr errors are ValueErrors)


def version_name(target: str) -> str:
    """The folder of the version with fingerprint `target`."""
    return VERSION_PREFIX + target[:VERSION_DIGITS]


def progress_name(name: str) -> str:
    return f"{PROGRESS_GROUP}/{name}"


def frame_column_name(column: str) -> str:
    return f"{FRAMES_GROUP}/{column}"


def shard_count(frames: int, shard_frames: int) -> int:
    """Shards per data array."""
    return math.ceil(frames / shard_frames)


def shard_bounds(shard: int, frames: int, shard_frames: int) -> tuple[int, int]:
    """Frames [start, stop) of shard `shard`; the last shard may hold fewer frames."""
    if not 0 <= shard < shard_count(frames, shard_frames):
        raise IndexError(f"shard {shard} out of range 0..{shard_count(frames, shard_frames) - 1}")
    start = shard * shard_frames
    return start, min(start + shard_frames, frames)


def shard_key(array: zarr.Array, shard: int) -> str:
    """Store key of shard `shard` (along the frame axis) of `array`."""
    return f"{array.path}/{array.metadata.encode_chunk_key((shard,) + (0,) * (array.ndim - 1))}"


def open_node(group: zarr.Group, name: str) -> zarr.Array | zarr.Group | None:
    """The node at `name` under `group`, or None if absent or unreadable."""
    try:
        return group[name]
    except NOT_FOUND:
        return None


def open_array(group: zarr.Group, name: str) -> zarr.Array | None:
    """The array at `name` under `group`, or None if absent, unreadable or a group."""
    node = open_node(group, name)
    return node if isinstance(node, zarr.Array) else None


def commit_record(root: zarr.Group, name: str) -> dict | None:
    """The commit record of data array `name`, or None if it was never committed."""
    node = open_node(root, name)
    if not isinstance(node, zarr.Group) or not all(key in node.attrs for key in COMMIT_KEYS):
        return None
    return {key: node.attrs[key] for key in COMMIT_KEYS}


def committed_array(root: zarr.Group, name: str) -> tuple[dict, zarr.Array | None] | None:
    """(commit record, its version's array or None if that is unreadable); None if not committed."""
    record = commit_record(root, name)
    if record is None:
        return None
    return record, open_array(root, f"{name}/{record['version']}")
