"""One writer per store (and per run folder): an advisory lock on a file beside it, `<store>.lock`.

The writer holds `fcntl.flock` on the file for as long as it writes and records its pid,
host and start time in it, so a refused second writer can name the holder. The kernel
drops the lock when the holder dies, so a killed writer never leaves a lock that blocks.
`folder_writer` guards any local output folder the same way (`mtdepth train`'s run folders).
Within one process the lock is re-entrant (a count per lock file). Stores at fsspec URLs
(object stores, memory://) are not locked: nothing portable offers an exclusive create.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mtdepth.cache.location import Location, filesystem_error
from mtdepth.errors import MtDepthError

LOCK_SUFFIX = ".lock"
_held: dict[str, tuple[int, int]] = {}  # lock path -> (file descriptor, times taken in this process)


def lock_path(location: Location) -> Path | None:
    """The lock file of a local store; None for fsspec URLs."""
    if not location.is_local:
        return None
    folder = Path(location.path).absolute()
    return folder.with_name(folder.name + LOCK_SUFFIX)


def _holder(fd: int) -> str:
    """'pid 123 on host since 2026-01-01 10:00:00 UTC' from a lock file's contents."""
    try:
        raw = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return f"pid {raw['pid']} on {raw['host']} since {raw['since']}"
    except (ValueError, KeyError, TypeError):
        return "another process"


def _try_lock(path: Path, label: str) -> int:
    """A descriptor of `path` holding its exclusive lock; MtDepthError while someone else holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _refuse(fd, path, label)
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:  # else the file was removed by its last holder after we opened it: start over
            return fd
        os.close(fd)


def _refuse(fd: int, path: Path, label: str) -> None:
    holder = _holder(fd)
    os.close(fd)
    raise MtDepthError(f"{label}: another writer holds it ({holder}; lock file {path}); wait for it to finish")


def acquire(location: Location) -> None:
    """Take the store's writer lock; MtDepthError naming the holder if another process has it."""
    path = lock_path(location)
    if path is not None:
        acquire_path(path, f"store {location.url}")


def release(location: Location) -> None:
    """Give the store's lock back (the last release in this process removes the lock file)."""
    path = lock_path(location)
    if path is not None:
        release_path(path)


def folder_lock_path(folder: Path) -> Path:
    """The lock file of a local output folder (a run folder): `<folder>.lock` beside it."""
    folder = folder.absolute()
    return folder.with_name(folder.name + LOCK_SUFFIX)


@contextmanager
def folder_writer(folder: Path, label: str) -> Iterator[None]:
    """Hold `folder`'s writer lock for the block; MtDepthError naming the holder if another process has it."""
    path = folder_lock_path(folder)
    acquire_path(path, label)
    try:
        yield
    finally:
        release_path(path)


def acquire_path(path: Path, label: str) -> None:
    """Take the lock of lock file `path` (re-entrant in a process); `label` names what it guards in a refusal."""
    key = str(path)
    if key in _held:
        fd, count = _held[key]
        _held[key] = (fd, count + 1)
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = _try_lock(path, label)
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since}).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, record, 0)
    except OSError as exc:
        raise filesystem_error(exc, key) from None
    _held[key] = (fd, 1)


def release_path(path: Path) -> None:
    """Give the lock of `path` back (the last release in this process removes the lock file)."""
    key = str(path)
    if key not in _held:
        return
    fd, count = _held.pop(key)
    if count > 1:
        _held[key] = (fd, count - 1)
        return
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    os.close(fd)
