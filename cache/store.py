"""Writing and reading the stage-one Zarr v3 store: sharded, resumable, with provenance.

Writing (stage one):

    writer = open_for_write(url, frames: FrameTable, height, width, shard_frames, overwrite=False)
    for name, provenance in arrays_to_make:
        for shard in writer.pending(name, provenance):      # [] when already committed as asked
            start, stop = writer.shard_bounds(shard)
            writer.write_shard(name, shard, block)          # block: frames start..stop-1
        writer.commit(name)                                 # provenance + fingerprint attrs, last

Reading (stage two, `mtdepth cache`):

    reader = open_store(url)
    reader.frames, reader.arrays(), reader.provenance(name), reader.array(name)
    reader.require(name, provenance)   # MtDepthError naming each differing key, both values
    reader.info(), reader.verify()

Commit protocol. `pending` writes the target provenance into `_progress/<name>` (one uint8
per shard) after (re)creating the data array; `write_shard` writes one whole shard, then
sets its progress byte; `commit` checks every byte and then writes the data array's
`provenance` and `fingerprint` attrs in one metadata write. An array without `fingerprint`
is incomplete and readers refuse it. A rerun after a kill at any point redoes only the
shards without a progress byte, so it ends in the same store an uninterrupted run makes.
The store root is committed the same way: `frames_fingerprint` is its last attribute.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import zarr

from mtdepth import __version__
from mtdepth.cache.fingerprint import canonical, describe_differences, fingerprint
from mtdepth.cache.frames import FrameTable
from mtdepth.cache.location import Location, delete_key, key_exists
from mtdepth.cache.schema import (
    ARRAYS,
    FRAME_COLUMNS,
    FRAME_DTYPES,
    FRAMES_GROUP,
    MASK_PREFIX,
    PROGRESS_GROUP,
    SCHEMA_VERSION,
    ArraySpec,
    array_spec,
)
from mtdepth.errors import MtDepthError

__all__ = ["FrameTable", "StoreReader", "StoreWriter", "open_for_write", "open_store"]

CORE_ARRAYS = ("rgb", "depth", "sparse")  # what stage two always reads
GEOMETRY = ("height", "width", "shard_frames")
DONE = 1
WRITE_CONFIG = {"write_empty_chunks": True}  # all-zero frames stored too: every shard holds every chunk


def whole_shard_codecs(frames: int):
    """zarr config context that encodes/decodes a whole shard's chunks as one concurrent batch.

    zarr-python 3 handles one chunk at a time by default (~0.5-1 ms of overhead per chunk);
    reads and writes of a whole shard run about 1.5-2.5x faster batched.
    """
    return zarr.config.set({"codec_pipeline.batch_size": frames})


_NOT_FOUND = (KeyError, FileNotFoundError, ValueError)  # missing or unreadable node (zarr errors are ValueErrors)


def _open_array(group: zarr.Group, name: str) -> zarr.Array | None:
    """The array at `name` under `group`, or None if absent, unreadable or a group."""
    try:
        node = group[name]
    except _NOT_FOUND:
        return None
    return node if isinstance(node, zarr.Array) else None


def _is_committed(group: zarr.Group, name: str) -> bool:
    """Whether array `name` exists and carries its commit-point `fingerprint` attribute."""
    array = _open_array(group, name)
    return array is not None and "fingerprint" in array.attrs


def _progress_name(name: str) -> str:
    return f"{PROGRESS_GROUP}/{name}"


def _frame_column_name(column: str) -> str:
    return f"{FRAMES_GROUP}/{column}"


def _frame_column_provenance(frames: FrameTable, column: str) -> dict:
    """Frame columns other than split depend on the rows only; split on the whole table."""
    if column == "split":
        return {"schema_version": SCHEMA_VERSION, "frames_fingerprint": frames.fingerprint()}
    return {"schema_version": SCHEMA_VERSION, "rows_fingerprint": frames.rows_fingerprint()}


def shard_count(frames: int, shard_frames: int) -> int:
    """Shards per data array."""
    return math.ceil(frames / shard_frames)


def shard_bounds(shard: int, frames: int, shard_frames: int) -> tuple[int, int]:
    """Frames [start, stop) of shard `shard`; the last shard may hold fewer frames."""
    if not 0 <= shard < shard_count(frames, shard_frames):
        raise IndexError(f"shard {shard} out of range 0..{shard_count(frames, shard_frames) - 1}")
    start = shard * shard_frames
    return start, min(start + shard_frames, frames)


def _shard_key(array: zarr.Array, shard: int) -> str:
    """Store key of shard `shard` (along the frame axis) of `array`."""
    return f"{array.path}/{array.metadata.encode_chunk_key((shard,) + (0,) * (array.ndim - 1))}"


def _open_root(location: Location, read_only: bool) -> zarr.Group:
    """The root group of an mtdepth store at `location`; MtDepthError if there is none."""
    if not location.exists():
        raise MtDepthError(f"store {location.url}: not found")
    try:
        root = zarr.open_group(location.open(read_only=read_only), mode="r" if read_only else "r+")
    except _NOT_FOUND:
        raise MtDepthError(f"store {location.url}: not a zarr v3 store (no readable root zarr.json)") from None
    if "schema_version" not in root.attrs:
        raise MtDepthError(f"store {location.url}: a zarr group, but not an mtdepth store (no schema_version attribute)")
    return root


def _schema_problem(url: str, stored: Any) -> str | None:
    if stored == SCHEMA_VERSION:
        return None
    return f"store {url}: written with store schema version {stored}, this mtdepth uses schema version {SCHEMA_VERSION}"


class StoreWriter:
    """Writes data arrays shard by shard into a store whose frame table is already committed."""

    def __init__(self, location: Location, root: zarr.Group, frames: FrameTable, height: int, width: int, shard_frames: int):
        self.url = location.url
        self.frames = frames
        self.height, self.width, self.shard_frames = height, width, shard_frames
        self._root = root

    @property
    def n_shards(self) -> int:
        return shard_count(len(self.frames), self.shard_frames)

    def shard_bounds(self, shard: int) -> tuple[int, int]:
        """Frames [start, stop) of shard `shard`."""
        return shard_bounds(shard, len(self.frames), self.shard_frames)

    def pending(self, name: str, provenance: dict) -> list[int]:
        """Shards of `name` still to write so that it ends with `provenance` ([] if committed so)."""
        spec = array_spec(name)
        provenance = canonical(provenance)
        target = fingerprint(provenance)
        data = _open_array(self._root, name)
        if data is not None and data.attrs.get("fingerprint") == target:
            return []
        progress = _open_array(self._root, _progress_name(name))
        resumable = (
            data is not None
            and progress is not None
            and "fingerprint" not in data.attrs
            and progress.attrs.get("target") == target
            and data.shape == spec.shape(len(self.frames), self.height, self.width)
            and progress.shape == (self.n_shards,)
        )
        if resumable:
            done = progress[:]
            return [shard for shard in range(self.n_shards) if done[shard] != DONE]
        self._create(spec, provenance, target)
        return list(range(self.n_shards))

    def _create(self, spec: ArraySpec, provenance: dict, target: str) -> None:
        """(Re)create the data array empty, then its progress array holding the target (last)."""
        progress_name = _progress_name(spec.name)
        if _open_array(self._root, progress_name) is not None:
            del self._root[progress_name]
        frame_shape = spec.frame_shape(self.height, self.width)
        self._root.create_array(
            spec.name,
            shape=spec.shape(len(self.frames), self.height, self.width),
            dtype=spec.dtype,
            chunks=(1, *frame_shape),
            shards=(self.shard_frames, *frame_shape),
            filters=(),
            compressors=spec.compressors,
            fill_value=0,
            attributes=dict(spec.attrs),
            overwrite=True,
        )
        self._root.create_array(
            progress_name,
            shape=(self.n_shards,),
            dtype="uint8",
            chunks=(1,),
            fill_value=0,
            compressors=None,
            attributes={"target": target, "provenance": provenance},
            overwrite=True,
        )

    def _open_for_shards(self, name: str) -> tuple[zarr.Array, zarr.Array]:
        """Data and progress arrays of `name`, which `pending` must have opened for writing."""
        array_spec(name)
        data = _open_array(self._root, name)
        progress = _open_array(self._root, _progress_name(name))
        if data is None or progress is None or "fingerprint" in data.attrs:
            raise RuntimeError(f"store {self.url}: array {name!r} is not being written; call pending() first")
        return data, progress

    def write_shard(self, name: str, shard: int, block: np.ndarray) -> None:
        """Write frames shard_bounds(shard) of `name` from `block`, then mark the shard done."""
        data, progress = self._open_for_shards(name)
        start, stop = self.shard_bounds(shard)
        expected = (stop - start, *data.shape[1:])
        if block.shape != expected or block.dtype != data.dtype:
            raise MtDepthError(
                f"store {self.url}: array {name!r} shard {shard} needs {expected} {data.dtype}, "
                f"got {block.shape} {block.dtype}"
            )
        delete_key(data.store, _shard_key(data, shard))  # a shard is always written whole, from nothing
        with whole_shard_codecs(stop - start):
            data.with_config(WRITE_CONFIG)[start:stop] = block
        progress[shard] = DONE

    def commit(self, name: str) -> None:
        """After every shard is written: write `provenance` and `fingerprint` (the commit point).

        A no-op for an array already committed (pending() returned []).
        """
        if _is_committed(self._root, name):
            return
        data, progress = self._open_for_shards(name)
        missing = np.flatnonzero(progress[:] != DONE).tolist()
        if missing:
            raise RuntimeError(f"store {self.url}: array {name!r} cannot commit, shards {missing} not written")
        data.attrs.update({"provenance": progress.attrs["provenance"], "fingerprint": progress.attrs["target"]})


def _write_frame_columns(root: zarr.Group, frames: FrameTable, columns: tuple[str, ...]) -> None:
    """Write frame columns whole, each with its provenance and fingerprint."""
    for column in columns:
        provenance = _frame_column_provenance(frames, column)
        values = frames.column_array(column)
        array = root.create_array(
            _frame_column_name(column),
            shape=values.shape,
            dtype=FRAME_DTYPES[column],  # str: zarr's variable-length UTF-8 strings
            chunks=values.shape,
            overwrite=True,
        )
        array[:] = values
        array.attrs.update({"provenance": provenance, "fingerprint": fingerprint(provenance)})


def _create_store(location: Location, frames: FrameTable, geometry: dict[str, int]) -> zarr.Group:
    """A fresh store: root attrs, frame table, then `frames_fingerprint` (the root's commit point)."""
    root = zarr.open_group(
        location.open(read_only=False),
        mode="w",
        attributes={
            "schema_version": SCHEMA_VERSION,
            "mtdepth_version": __version__,
            **geometry,
            "rows_fingerprint": frames.rows_fingerprint(),
        },
    )
    _write_frame_columns(root, frames, FRAME_COLUMNS)
    root.attrs["frames_fingerprint"] = frames.fingerprint()
    return root


def _reuse_problem(url: str, attrs: dict, frames: FrameTable, geometry: dict[str, int]) -> str | None:
    """Why an existing store cannot take these frames and geometry, or None."""
    problem = _schema_problem(url, attrs.get("schema_version"))
    if problem:
        return problem
    for key, value in geometry.items():
        if attrs.get(key) != value:
            return f"store {url}: {key} is {attrs.get(key)} in the store, {value} now"
    if attrs.get("rows_fingerprint") != frames.rows_fingerprint():
        return f"store {url}: holds another set of frames than the {len(frames)} selected now"
    return None


def open_for_write(
    url: str | os.PathLike, frames: FrameTable, height: int, width: int, shard_frames: int, overwrite: bool = False
) -> StoreWriter:
    """Create the store at `url`, or reopen it when schema, geometry and frames match.

    A mismatch raises MtDepthError naming it, unless `overwrite` (then the store is rebuilt
    empty). A split that alone differs is rewritten in place: no array depends on it.
    A location holding anything but an mtdepth store is never written into.
    """
    location = Location.parse(url)
    if len(frames) == 0:
        raise MtDepthError(f"store {location.url}: no frames selected")
    geometry = {"height": height, "width": width, "shard_frames": shard_frames}
    if not location.has_entries():
        return StoreWriter(location, _create_store(location, frames, geometry), frames, height, width, shard_frames)
    try:
        root = _open_root(location, read_only=False)
    except MtDepthError:
        raise MtDepthError(f"{location.url}: exists and is not an mtdepth store; refusing to write into it") from None
    location.remove_partial_files()
    problem = _reuse_problem(location.url, dict(root.attrs), frames, geometry)
    if problem and not overwrite:
        raise MtDepthError(f"{problem}; rebuild it with --overwrite")
    if problem or "frames_fingerprint" not in root.attrs:  # mismatch, or creation was interrupted
        root = _create_store(location, frames, geometry)
    elif root.attrs["frames_fingerprint"] != frames.fingerprint():
        _write_frame_columns(root, frames, ("split",))
        root.attrs["frames_fingerprint"] = frames.fingerprint()
    return StoreWriter(location, root, frames, height, width, shard_frames)


class StoreReader:
    """Read access to a committed store: frame table, arrays, provenance, info, verify."""

    def __init__(self, location: Location, root: zarr.Group):
        self.url = location.url
        self._root = root
        attrs = root.attrs
        self.schema_version = attrs["schema_version"]
        self.height, self.width, self.shard_frames = (attrs[key] for key in GEOMETRY)
        self._frames: FrameTable | None = None

    @property
    def frames(self) -> FrameTable:
        """The frame table (read once)."""
        if self._frames is None:
            columns = {}
            for column in FRAME_COLUMNS:
                array = _open_array(self._root, _frame_column_name(column))
                if array is None:
                    raise MtDepthError(f"store {self.url}: frame column {_frame_column_name(column)!r} is missing")
                columns[column] = array[:]
            self._frames = FrameTable.from_arrays(columns)
        return self._frames

    @property
    def n_shards(self) -> int:
        return shard_count(len(self.frames), self.shard_frames)

    def split_column(self) -> np.ndarray:
        """frames/split as a numpy array (SPLIT_CODES values)."""
        return self._root[_frame_column_name("split")][:]

    def arrays(self) -> list[str]:
        """Data arrays present in the store (committed or not), in schema order."""
        return [name for name in ARRAYS if _open_array(self._root, name) is not None]

    def mask_sources(self) -> list[str]:
        """Mask sources with a committed array, e.g. ['yolo', 'gt']."""
        return [name[len(MASK_PREFIX):] for name in self.arrays() if name.startswith(MASK_PREFIX) and self.is_committed(name)]

    def is_committed(self, name: str) -> bool:
        return _is_committed(self._root, name)

    def array(self, name: str) -> zarr.Array:
        """The committed data array `name`; MtDepthError if absent or incomplete."""
        array_spec(name)
        array = _open_array(self._root, name)
        if array is None:
            present = ", ".join(self.arrays()) or "none"
            raise MtDepthError(f"store {self.url}: has no array {name!r} (arrays: {present})")
        if "fingerprint" not in array.attrs:
            raise MtDepthError(f"store {self.url}: array {name!r} is incomplete (its writing was interrupted); rerun stage one")
        return array

    def provenance(self, name: str) -> dict:
        """The provenance array `name` was committed with."""
        return dict(self.array(name).attrs["provenance"])

    def scale(self, name: str) -> float:
        """Metres per stored unit of a depth-like array."""
        return float(self.array(name).attrs["scale"])

    def require(self, name: str, provenance: dict | None = None) -> zarr.Array:
        """The committed array `name`, refusing one made from other inputs than `provenance`."""
        array = self.array(name)
        if provenance is not None and array.attrs["fingerprint"] != fingerprint(canonical(provenance)):
            stored = dict(array.attrs["provenance"])
            raise MtDepthError(
                f"store {self.url}: array {name!r} was made with {describe_differences(stored, provenance)}; "
                "rerun stage one"
            )
        return array

    def info(self) -> dict:
        """Everything `mtdepth cache info` shows, as plain data."""
        frames = self.frames
        arrays = {}
        for name in self.arrays():
            array = _open_array(self._root, name)
            stored = array.nbytes_stored()
            arrays[name] = {
                "shape": list(array.shape),
                "dtype": str(array.dtype),
                "chunks": list(array.chunks),
                "shards": list(array.shards or array.chunks),
                "codecs": describe_codecs(array),
                "raw_bytes": array.nbytes,
                "stored_bytes": stored,
                "ratio": array.nbytes / stored if stored else None,
                "committed": "fingerprint" in array.attrs,
                "fingerprint": array.attrs.get("fingerprint"),
                "provenance": array.attrs.get("provenance"),
                "attrs": {k: v for k, v in array.attrs.items() if k not in ("fingerprint", "provenance")},
            }
        attrs = self._root.attrs
        return {
            "url": self.url,
            "schema_version": self.schema_version,
            "mtdepth_version": attrs.get("mtdepth_version"),
            "height": self.height,
            "width": self.width,
            "shard_frames": self.shard_frames,
            "frames": len(frames),
            "splits": frames.split_counts(),
            "frames_fingerprint": attrs.get("frames_fingerprint"),
            "stored_bytes": sum(a["stored_bytes"] for a in arrays.values()),
            "arrays": arrays,
        }

    def verify(self, on_shard: Callable[[], None] | None = None) -> list[str]:
        """Problems found (empty when sound): frames, shapes, commits, fingerprints, every shard decoding.

        `on_shard` is called after each shard is checked (for a progress bar).
        """
        problems = self._verify_frames()
        present = self.arrays()
        problems += [f"array {name!r} is missing" for name in CORE_ARRAYS if name not in present]
        for name in present:
            problems += self._verify_array(name, on_shard)
        return problems

    def _verify_frames(self) -> list[str]:
        try:
            frames = self.frames
        except (MtDepthError, *_NOT_FOUND) as exc:
            return [f"frame table unreadable: {exc}"]
        problems = []
        attrs = self._root.attrs
        if (frames.fingerprint(), frames.rows_fingerprint()) != (attrs.get("frames_fingerprint"), attrs.get("rows_fingerprint")):
            problems.append("frame table does not match the root's frames_fingerprint / rows_fingerprint")
        for column in FRAME_COLUMNS:
            array = self._root[_frame_column_name(column)]
            problems += _fingerprint_problems(_frame_column_name(column), array)
            if array.attrs.get("provenance") != _frame_column_provenance(frames, column):
                problems.append(f"array {_frame_column_name(column)!r}: provenance does not match the frame table")
        return problems

    def _verify_array(self, name: str, on_shard: Callable[[], None] | None) -> list[str]:
        spec = ARRAYS[name]
        data = _open_array(self._root, name)
        expected_shape = spec.shape(len(self.frames), self.height, self.width)
        if data.shape != expected_shape or data.dtype != np.dtype(spec.dtype):
            return [f"array {name!r} is {data.shape} {data.dtype}, the schema says {expected_shape} {spec.dtype}"]
        progress = _open_array(self._root, _progress_name(name))
        done = progress[:] if progress is not None and progress.shape == (self.n_shards,) else None
        if "fingerprint" not in data.attrs:
            written = 0 if done is None else int((done == DONE).sum())
            return [f"array {name!r} is not committed ({written} of {self.n_shards} shards written)"]
        problems = _fingerprint_problems(name, data)
        if done is None or progress.attrs.get("target") != data.attrs["fingerprint"]:
            problems.append(f"array {name!r}: progress record missing or for another fingerprint")
        for shard in range(self.n_shards):
            start, stop = shard_bounds(shard, len(self.frames), self.shard_frames)
            where = f"array {name!r} shard {shard} (frames {start}-{stop - 1})"
            if done is not None and done[shard] != DONE:
                problems.append(f"{where}: not marked written")
            if not key_exists(data.store, _shard_key(data, shard)):
                problems.append(f"{where}: shard file {_shard_key(data, shard)} missing")
            else:
                try:
                    data[start:stop]
                except Exception as exc:  # any decoding failure is a finding, not a crash
                    problems.append(f"{where}: does not decode ({type(exc).__name__}: {exc})")
            if on_shard is not None:
                on_shard()
        return problems


def _fingerprint_problems(name: str, array: zarr.Array) -> list[str]:
    provenance = array.attrs.get("provenance")
    if provenance is None or array.attrs.get("fingerprint") != fingerprint(provenance):
        return [f"array {name!r}: fingerprint is not the hash of its provenance"]
    return []


def describe_codecs(array: zarr.Array) -> str:
    """The codec chain of one chunk, e.g. 'bytes > zstd(level=3) > crc32c'."""
    parts = []
    for codec in (*array.filters, array.serializer, *array.compressors):
        described = codec.to_dict()
        config = described.get("configuration", {})
        parts.append(described["name"] + (f"({', '.join(f'{k}={v}' for k, v in config.items())})" if config else ""))
    return " > ".join(parts)


def open_store(url: str | os.PathLike) -> StoreReader:
    """Open a committed store read-only; MtDepthError if missing, not a store, another schema or incomplete."""
    location = Location.parse(url)
    root = _open_root(location, read_only=True)
    problem = _schema_problem(location.url, root.attrs.get("schema_version"))
    if problem:
        raise MtDepthError(f"{problem}; rebuild it with stage one")
    if "frames_fingerprint" not in root.attrs:
        raise MtDepthError(f"store {location.url}: incomplete (stage one was interrupted while creating it); rerun stage one")
    return StoreReader(location, root)

