"""Writes, one home: a file never seen half-written (a temporary beside it, renamed over it), a folder
(built beside it, swapped in with two renames), the JSON and CSV writers outputs share; filesystem errors
(read-only, full disk, a file where a folder should be) as one line naming the path; and the temporaries
a killed writer left behind removed by the next writer.
"""

from __future__ import annotations

import csv
import errno
import json
import math
import os
import re
import shutil
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


# Folders: built as NAME.partial-PID beside the target, then swapped in with two renames (the old
# one retired as NAME.old-PID first); what a killed run left is cleaned up or put back by `recover`.
PARTIAL, RETIRED = "partial", "old"


def is_empty_or_absent(folder: Path) -> bool:
    return not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _leftovers(target: Path) -> dict[str, dict[int, Path]]:
    """`partial` and `old` folders beside `target` of runs whose process is gone, by pid."""
    found: dict[str, dict[int, Path]] = {PARTIAL: {}, RETIRED: {}}
    pattern = re.compile(rf"{re.escape(target.name)}\.({PARTIAL}|{RETIRED})-(\d+)")
    for sibling in target.parent.iterdir() if target.parent.is_dir() else ():
        match = pattern.fullmatch(sibling.name)
        if match and not _pid_alive(int(match[2])):
            found[match[1]][int(match[2])] = sibling
    return found


def recover(target: Path) -> None:
    """Undo what killed runs left: put back a target retired by a run killed between its two renames,
    and delete the rest (half-written folders, retired copies no longer needed)."""
    found = _leftovers(target)
    for pid, retired in sorted(found[RETIRED].items()):
        if not target.exists():
            retired.rename(target)
        else:
            shutil.rmtree(retired)
    for partial in found[PARTIAL].values():
        shutil.rmtree(partial)


def check_target(target: Path) -> None:
    """Refuse an output path that cannot be written or must never be replaced, in one line."""
    if target.exists() and not target.is_dir():
        raise MtDepthError(f"{target}: output path exists and is a file; choose another --out")
    for parent in target.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise MtDepthError(
                    f"{target}: {parent} is a file, so no folder can be made under it; choose another --out"
                )
            break
    if Path.cwd().resolve().is_relative_to(target.resolve()):
        raise MtDepthError(f"{target}: is the current folder or one above it; name a folder below it (e.g. data/synth)")


def partial_folder(target: Path) -> Path:
    """Where this process builds `target` before `swap_in`."""
    return target.with_name(f"{target.name}.{PARTIAL}-{os.getpid()}")


def swap_in(partial: Path, target: Path) -> None:
    """Replace `target` by the finished `partial` (two renames; a kill between them is undone by `recover`)."""
    if target.exists():
        retired = target.with_name(f"{target.name}.{RETIRED}-{os.getpid()}")
        target.rename(retired)
        partial.rename(target)
        shutil.rmtree(retired)
    else:
        partial.rename(target)


def write_folder(out: Path, write: Callable[[Path], None]) -> None:
    """Build the output folder beside `out` with write(folder), then swap it in: never half-written."""
    with writing(out):
        recover(out)
        partial = partial_folder(out)
        partial.mkdir(parents=True)
        try:
            write(partial)
            swap_in(partial, out)
        finally:
            shutil.rmtree(partial, ignore_errors=True)


def finite(value):
    """`value` (dicts, lists, numbers) with every infinite float as None: JSON has no infinity (a params file's
    `.inf`, a calibration bin's open end)."""
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(item) for item in value]
    return None if isinstance(value, float) and math.isinf(value) else value


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
