"""Reading a committed store: frame table, arrays, provenance, info, and a full verify.

    reader = open_store(url)
    reader.frames, reader.arrays(), reader.provenance(name), reader.array(name)
    reader.require(name, provenance)   # MtDepthError naming each differing key, both values
    reader.info(), reader.verify()
    read_frames(url, name, array, start, stop)   # one shard's run; damage is one MtDepthError line

A committed array whose shard file is missing or has another size than its commit record
is refused (never served as fill zeros); a checksum failure names the array and shard.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import zarr

from mtdepth.cache.fingerprint import canonical, describe_differences, fingerprint
from mtdepth.cache.frames import FrameTable
from mtdepth.cache.layout import (
    GEOMETRY,
    NOT_FOUND,
    commit_record,
    committed_array,
    frame_column_name,
    open_array,
    progress_name,
    shard_bounds,
    shard_count,
    shard_key,
)
from mtdepth.cache.location import Location, key_sizes
from mtdepth.cache.schema import ARRAYS, FRAME_COLUMNS, MASK_PREFIX, SCHEMA_VERSION, array_spec
from mtdepth.errors import MtDepthError

CORE_ARRAYS = ("rgb", "depth", "sparse")  # what stage two always reads
REPAIR_HINT = "rerun `mtdepth segment` with the same params to rewrite it"
DECODE_HINT = "run `mtdepth cache verify` on the store, then `mtdepth segment --repair`"


def frame_column_provenance(frames: FrameTable, column: str) -> dict:
    """Frame columns other than split depend on the rows only; split on the whole table."""
    if column == "split":
        return {"schema_version": SCHEMA_VERSION, "frames_fingerprint": frames.fingerprint()}
    return {"schema_version": SCHEMA_VERSION, "rows_fingerprint": frames.rows_fingerprint()}


def read_frame_columns(root: zarr.Group) -> FrameTable:
    """The frame table as stored; MtDepthError naming the first column that is missing or does not decode."""
    columns = {}
    for column in FRAME_COLUMNS:
        name = frame_column_name(column)
        array = open_array(root, name)
        if array is None:
            raise MtDepthError(f"frame column {name!r} is missing")
        try:
            columns[column] = array[:]
        except Exception as exc:  # any decoding failure (checksum, codec) is damage
            raise MtDepthError(f"frame column {name!r} does not decode ({type(exc).__name__}: {exc})") from None
    try:
        return FrameTable.from_arrays(columns)
    except ValueError as exc:
        raise MtDepthError(f"frame table is inconsistent ({exc})") from None


def shard_problems(array: zarr.Array, expected: list[int], shards: list[int]) -> dict[int, str]:
    """shard -> what is wrong with its file (missing, or another size than `expected`), for `shards`."""
    sizes = key_sizes(array.store, [shard_key(array, shard) for shard in shards])
    problems = {}
    for shard, size in zip(shards, sizes):
        if size is None:
            problems[shard] = f"shard file {shard_key(array, shard)} missing"
        elif size != expected[shard]:
            problems[shard] = (
                f"shard file {shard_key(array, shard)} holds {size} bytes, committed with {expected[shard]}"
            )
    return problems


def read_frames(url: str, name: str, array: zarr.Array, start: int, stop: int) -> np.ndarray:
    """Frames [start, stop) (within one shard) of a committed array; damage is one MtDepthError line."""
    shard = start // array.shards[0]
    where = f"store {url}: array {name!r} shard {shard} (frames {start}-{stop - 1})"
    size = key_sizes(array.store, [shard_key(array, shard)])[0]
    if not size:
        raise MtDepthError(
            f"{where}: shard file {shard_key(array, shard)} is {'missing' if size is None else 'empty'}; {REPAIR_HINT}"
        )
    try:
        return array[start:stop]
    except Exception as exc:  # checksum or codec failure
        raise MtDepthError(f"{where}: does not decode ({type(exc).__name__}: {exc}); {DECODE_HINT}") from None


class StoreReader:
    """Read access to a committed store: frame table, arrays, provenance, info, verify."""

    def __init__(self, location: Location, root: zarr.Group):
        self.url = location.url
        self._root = root
        attrs = root.attrs
        self.schema_version = attrs["schema_version"]
        self.height, self.width, self.shard_frames = (attrs[key] for key in GEOMETRY)
        self.n_frames = int(attrs["frames"])
        self._frames: FrameTable | None = None

    @property
    def frames(self) -> FrameTable:
        """The frame table (read once); MtDepthError if it is damaged."""
        if self._frames is None:
            try:
                frames = read_frame_columns(self._root)
            except MtDepthError as exc:
                raise MtDepthError(f"store {self.url}: {exc}; {REPAIR_HINT}") from None
            if frames.fingerprint() != self._root.attrs.get("frames_fingerprint"):
                raise MtDepthError(
                    f"store {self.url}: frame table does not match its frames_fingerprint; {REPAIR_HINT}"
                )
            self._frames = frames
        return self._frames

    @property
    def n_shards(self) -> int:
        return shard_count(self.n_frames, self.shard_frames)

    def split_column(self) -> np.ndarray:
        """frames/split as a numpy array (SPLIT_CODES values)."""
        return np.asarray(self.frames.split, dtype=np.uint8)

    def arrays(self) -> list[str]:
        """Data arrays present in the store (committed or being written), in schema order."""
        return [
            name
            for name in ARRAYS
            if commit_record(self._root, name) is not None or open_array(self._root, progress_name(name)) is not None
        ]

    def mask_sources(self) -> list[str]:
        """Mask sources with a committed array, e.g. ['yolo', 'gt']."""
        return [
            name[len(MASK_PREFIX) :]
            for name in self.arrays()
            if name.startswith(MASK_PREFIX) and self.is_committed(name)
        ]

    def is_committed(self, name: str) -> bool:
        return commit_record(self._root, name) is not None

    def array(self, name: str) -> zarr.Array:
        """The committed data array `name`; MtDepthError if absent, incomplete, or a shard file is missing or damaged."""
        array_spec(name)
        found = committed_array(self._root, name)
        if found is None:
            if name in self.arrays():
                raise MtDepthError(
                    f"store {self.url}: array {name!r} is incomplete (its writing was interrupted); rerun stage one"
                )
            present = ", ".join(self.arrays()) or "none"
            raise MtDepthError(f"store {self.url}: has no array {name!r} (arrays: {present})")
        record, array = found
        if array is None:
            raise MtDepthError(
                f"store {self.url}: array {name!r}: its committed version {record['version']} is missing; {REPAIR_HINT}"
            )
        problems = shard_problems(array, record["shard_bytes"], list(range(self.n_shards)))
        if problems:
            shard, problem = next(iter(problems.items()))
            start, stop = shard_bounds(shard, self.n_frames, self.shard_frames)
            raise MtDepthError(
                f"store {self.url}: array {name!r} shard {shard} (frames {start}-{stop - 1}): {problem}; {REPAIR_HINT}"
            )
        return array

    def provenance(self, name: str) -> dict:
        """The provenance array `name` was committed with."""
        self.array(name)
        return dict(commit_record(self._root, name)["provenance"])

    def scale(self, name: str) -> float:
        """Metres per stored unit of a depth-like array."""
        return float(self.array(name).attrs["scale"])

    def require(self, name: str, provenance: dict | None = None) -> zarr.Array:
        """The committed array `name`, refusing one made from other inputs than `provenance`."""
        array = self.array(name)
        record = commit_record(self._root, name)
        if provenance is not None and record["fingerprint"] != fingerprint(canonical(provenance)):
            raise MtDepthError(
                f"store {self.url}: array {name!r} was made with "
                f"{describe_differences(dict(record['provenance']), provenance)}; rerun stage one"
            )
        return array

    def info(self) -> dict:
        """Everything `mtdepth cache info` shows, as plain data."""
        frames = self.frames
        arrays = {}
        for name in self.arrays():
            found = committed_array(self._root, name)
            record, array = found if found else (None, None)
            stored = array.nbytes_stored() if array is not None else 0
            arrays[name] = {
                "shape": list(ARRAYS[name].shape(self.n_frames, self.height, self.width)),
                "dtype": ARRAYS[name].dtype,
                "chunks": list(array.chunks) if array is not None else None,
                "shards": list(array.shards or array.chunks) if array is not None else None,
                "codecs": describe_codecs(array) if array is not None else "-",
                "raw_bytes": array.nbytes if array is not None else 0,
                "stored_bytes": stored,
                "ratio": array.nbytes / stored if stored else None,
                "committed": record is not None,
                "version": record["version"] if record else None,
                "fingerprint": record["fingerprint"] if record else None,
                "provenance": record["provenance"] if record else None,
                "attrs": {
                    k: v
                    for k, v in (array.attrs if array is not None else {}).items()
                    if k not in ("fingerprint", "provenance")
                },
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
        """Problems found (empty when sound): frame table, commits, fingerprints, every shard's size and decoding.

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
            frames = read_frame_columns(self._root)
        except MtDepthError as exc:
            return [str(exc)]
        attrs = self._root.attrs
        if len(frames) != self.n_frames or (frames.fingerprint(), frames.rows_fingerprint()) != (
            attrs.get("frames_fingerprint"),
            attrs.get("rows_fingerprint"),
        ):
            return ["frame table does not match the root's frames / frames_fingerprint / rows_fingerprint"]
        problems = []
        for column in FRAME_COLUMNS:
            array = self._root[frame_column_name(column)]
            if array.attrs.get("fingerprint") != fingerprint(array.attrs.get("provenance")):
                problems.append(f"array {frame_column_name(column)!r}: fingerprint is not the hash of its provenance")
            elif array.attrs.get("provenance") != frame_column_provenance(frames, column):
                problems.append(f"array {frame_column_name(column)!r}: provenance does not match the frame table")
        return problems

    def _verify_array(self, name: str, on_shard: Callable[[], None] | None) -> list[str]:
        found = committed_array(self._root, name)
        if found is None:
            progress = open_array(self._root, progress_name(name))
            written = int((progress[:] > 0).sum()) if progress is not None else 0
            return [f"array {name!r} is not committed ({written} of {self.n_shards} shards written)"]
        record, data = found
        if record["fingerprint"] != fingerprint(record["provenance"]):
            return [f"array {name!r}: fingerprint is not the hash of its provenance"]
        spec = ARRAYS[name]
        expected_shape = spec.shape(self.n_frames, self.height, self.width)
        if data is None:
            return [f"array {name!r}: committed version {record['version']} is missing or unreadable"]
        if (
            data.shape != expected_shape
            or data.dtype != np.dtype(spec.dtype)
            or len(record["shard_bytes"]) != self.n_shards
        ):
            return [f"array {name!r} is {data.shape} {data.dtype}, the schema says {expected_shape} {spec.dtype}"]
        problems = []
        files = shard_problems(data, record["shard_bytes"], list(range(self.n_shards)))
        for shard in range(self.n_shards):
            start, stop = shard_bounds(shard, self.n_frames, self.shard_frames)
            where = f"array {name!r} shard {shard} (frames {start}-{stop - 1})"
            if shard in files:
                problems.append(f"{where}: {files[shard]}")
            else:
                try:
                    data[start:stop]
                except Exception as exc:  # any decoding failure is a finding, not a crash
                    problems.append(f"{where}: does not decode ({type(exc).__name__}: {exc})")
            if on_shard is not None:
                on_shard()
        return problems


def describe_codecs(array: zarr.Array) -> str:
    """The codec chain of one chunk, e.g. 'bytes > zstd(level=3) > crc32c'."""
    parts = []
    for codec in (*array.filters, array.serializer, *array.compressors):
        described = codec.to_dict()
        config = described.get("configuration", {})
        parts.append(described["name"] + (f"({', '.join(f'{k}={v}' for k, v in config.items())})" if config else ""))
    return " > ".join(parts)


def open_root(location: Location, read_only: bool) -> zarr.Group:
    """The root group of an mtdepth store at `location`; MtDepthError if there is none."""
    if not location.exists():
        raise MtDepthError(f"store {location.url}: not found")
    try:
        root = zarr.open_group(location.open(read_only=read_only), mode="r" if read_only else "r+")
    except NOT_FOUND:
        raise MtDepthError(f"store {location.url}: not a zarr v3 store (no readable root zarr.json)") from None
    if "schema_version" not in root.attrs:
        raise MtDepthError(
            f"store {location.url}: a zarr group, but not an mtdepth store (no schema_version attribute)"
        )
    return root


def schema_problem(url: str, stored: object) -> str | None:
    if stored == SCHEMA_VERSION:
        return None
    return f"store {url}: written with store schema version {stored}, this mtdepth uses schema version {SCHEMA_VERSION}"


def open_store(url: str | os.PathLike) -> StoreReader:
    """Open a committed store read-only; MtDepthError if missing, not a store, another schema or incomplete."""
    location = Location.parse(url)
    root = open_root(location, read_only=True)
    problem = schema_problem(location.url, root.attrs.get("schema_version"))
    if problem:
        raise MtDepthError(f"{problem}; rebuild it with stage one (--overwrite)")
    if "frames_fingerprint" not in root.attrs:
        raise MtDepthError(
            f"store {location.url}: incomplete (stage one was interrupted while creating it); rerun stage one"
        )
    return StoreReader(location, root)
