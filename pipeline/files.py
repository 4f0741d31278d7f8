"""Writing files safely: never seen half-written (a temporary file beside the target, renamed over it),
filesystem errors (read-only, full disk, a file where a folder should be) as one line naming the path,
and the temporaries a killed writer left behind removed by the next writer.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from mtdepth.errors import MtDepthError
from mtdepth.halt import halt

TEMPORARY_MARK = ".tmp-"  # `.NAME.tmp-PID`: what atomic_write writes before the rename

_ADVICE = {
    errno.EACCES: "make it writable or choose another location",
    errno.EPERM: "make it writable or choose another location",
    errno.EROFS: "the file system is read-only; choose another location",
    errno.ENOSPC: "the disk is full; free space and rerun (segment and train resume where they stopped)",
    errno.EDQUOT: "the disk quota is exhausted; free space and rerun (segment and train resume where they stopped)",
    errno.EFBIG: "the file is larger than this process may write (ulimit -f); raise the limit and rerun",
    errno.ENOTDIR: "a part of the path is a file; choose another location",
    errno.EISDIR: "a folder is in the way; choose another location",
}


class WriteError(MtDepthError):
    """An output cannot be written (read-only, full disk, ...): the command stops rather than go on."""


def describe(exc: OSError) -> str:
    """'reason; what to do' for an OSError."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{reason}; {_ADVICE.get(exc.errno, 'check the path and rerun')}"


def filesystem_error(exc: OSError, fallback: str) -> WriteError:
    """One line for an OSError met writing: the path (or `fallback`), the reason, what to do."""
    return WriteError(f"{exc.filename or fallback}: {describe(exc)}")


@contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Turn an OSError raised inside into one line naming `path` (the output the user chose)."""
    try:
        yield
    except OSError as exc:
        raise WriteError(f"{path}: {describe(exc)}") from None


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None], durable: bool = False) -> None:
    """Call write(temporary) for a file beside `path`, then rename it over `path`.

    `durable` also fsyncs the file before the rename (checkpoints: a power cut keeps the old
    or the new file, never an empty one). An OSError becomes one line naming `path`.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}{TEMPORARY_MARK}{os.getpid()}")
    try:
        with writing(path):
            write(temporary)
            if durable:
                with open(temporary, "rb+") as fh:
                    os.fsync(fh.fileno())
            halt("atomic_write.rename")
            os.replace(temporary, path)
    finally:
        with suppress(OSError):  # on a read-only file system even removing a missing file fails
            temporary.unlink(missing_ok=True)


def remove_debris(folder: Path) -> list[Path]:
    """Remove the temporaries killed writers left in `folder` (call it holding the folder's writer lock)."""
    debris = [p for p in folder.glob(f".*{TEMPORARY_MARK}*") if p.is_file()] if folder.is_dir() else []
    for path in debris:
        path.unlink(missing_ok=True)
    return debris
