"""Writing a file so that it is never seen half-written: a temporary file beside it, renamed over it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from mtdepth.errors import MtDepthError


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None], durable: bool = False) -> None:
    """Call write(temporary) for a file beside `path`, then rename it over `path`.

    `durable` also fsyncs the file before the rename (checkpoints: a power cut keeps the old
    or the new file, never an empty one). An OSError becomes one line naming `path`.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(temporary)
        if durable:
            with open(temporary, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        raise MtDepthError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        temporary.unlink(missing_ok=True)
