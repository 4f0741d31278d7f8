"""Where a store lives: a local folder or an fsspec URL, opened as a zarr v3 store.

- `data/store.zarr`, `/abs/path`, `file:///abs/path`: a local folder (zarr LocalStore,
  which writes every key through a temporary file and a rename, so a killed writer
  leaves either the old or the new value of a key, never a torn one);
- any other `protocol://...` (memory://, s3://, gs://, ...): zarr FsspecStore; a
  memory:// store lives in its process (and in forked DataLoader workers).

A location that is an existing file, or lies under one, is refused with MtDepthError naming
it; `filesystem_error` turns an OSError met while writing into one line naming the path
and what to do.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import fsspec
from fsspec.core import split_protocol
from zarr.abc.store import Store
from zarr.core.sync import sync
from zarr.storage import FsspecStore, LocalStore

from mtdepth.errors import MtDepthError
from mtdepth.pipeline.files import filesystem_error  # noqa: F401  (re-exported; its home is pipeline/files.py)

LOCAL_PROTOCOLS = (None, "file", "local")
ROOT_METADATA = "zarr.json"
PARTIAL_SUFFIX = ".partial"  # LocalStore's temporary files, left behind only by a killed writer


@dataclass(frozen=True)
class Location:
    """A store location as the user named it (`url`), and where it resolves."""

    url: str
    protocol: str | None
    path: str

    @classmethod
    def parse(cls, url: str | os.PathLike) -> Location:
        """Split `url` into protocol and path; refuse an existing file."""
        text = os.fspath(url)
        protocol, path = split_protocol(text)
        location = cls(text, protocol, str(Path(path).expanduser()) if protocol in LOCAL_PROTOCOLS else path)
        if location.filesystem().isfile(location.path):
            raise MtDepthError(f"{text}: is a file, not a store folder")
        if location.is_local:
            blocker = _file_above(Path(location.path))
            if blocker is not None:
                raise MtDepthError(
                    f"{text}: {blocker} is a file, so no store folder can be made under it; choose another store path"
                )
        return location

    @property
    def is_local(self) -> bool:
        return self.protocol in LOCAL_PROTOCOLS

    def filesystem(self) -> fsspec.AbstractFileSystem:
        """The fsspec filesystem of this location (synchronous); MtDepthError if fsspec cannot serve it."""
        try:
            return fsspec.filesystem("file" if self.is_local else self.protocol)
        except (ImportError, ValueError) as exc:
            raise MtDepthError(f"store {self.url}: cannot open {self.protocol}:// locations ({exc})") from None

    def open(self, read_only: bool) -> Store:
        """The zarr store at this location."""
        if self.is_local:
            return LocalStore(self.path, read_only=read_only)
        return FsspecStore.from_url(self.url, read_only=read_only)

    def exists(self) -> bool:
        """Whether anything (file or folder) is at this location."""
        return self.filesystem().exists(self.path)

    def has_entries(self) -> bool:
        """Whether a folder at this location holds anything."""
        fs = self.filesystem()
        return fs.isdir(self.path) and bool(fs.ls(self.path))

    def remove_partial_files(self) -> None:
        """Delete temporary files a killed LocalStore write left behind (local folders only)."""
        if not self.is_local:
            return
        for folder, _, names in os.walk(self.path):
            for name in names:
                if name.endswith(PARTIAL_SUFFIX):
                    os.unlink(os.path.join(folder, name))


def _file_above(path: Path) -> Path | None:
    """The nearest existing ancestor of `path` if it is not a folder, else None."""
    for parent in path.absolute().parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def delete_key(store: Store, key: str) -> None:
    """Remove `key` from `store` if present (synchronous)."""
    sync(store.delete(key))


def key_sizes(store: Store, keys: list[str]) -> list[int | None]:
    """Stored size in bytes of each key, None where it is missing (one concurrent round)."""

    async def sizes() -> list[int | None]:
        found = await asyncio.gather(*(store.getsize(key) for key in keys), return_exceptions=True)
        return [None if isinstance(size, (FileNotFoundError, KeyError)) else _raise_other(size) for size in found]

    return sync(sizes())


def _raise_other(size: int | BaseException) -> int:
    if isinstance(size, BaseException):
        raise size
    return size


def children(store: Store, prefix: str) -> list[str]:
    """Names directly under `prefix` (files and folders)."""

    async def listing() -> list[str]:
        return [name async for name in store.list_dir(prefix)]

    return sorted(sync(listing()))


def delete_tree(store: Store, prefix: str) -> None:
    """Remove every key under `prefix` (synchronous)."""
    sync(store.delete_dir(prefix))
