"""Run a command with its outputs on a real read-only or full file system (shared by test files).

A root test cannot make a folder read-only with chmod, so the command runs in its own mount
namespace (`unshare --mount --map-root-user`, no privileges needed) over a small tmpfs that is
remounted read-only, or filled up to `free` bytes, after the prior outputs are copied in. What
the tmpfs holds when the command ends is copied out (the filler left behind) for the test to compare.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FILLER = ".filler"
SIZE = "64m"

SCRIPT = """
set -e
mount -t tmpfs -o size={size} tmpfs {disk}
cp -a {prior}/. {disk}/
{fault}
set +e
"$@"
code=$?
cp -a {disk}/. {after}/
rm -f {after}/{filler}
exit $code
"""


def unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        [
            "unshare",
            "--mount",
            "--map-root-user",
            "sh",
            "-c",
            "d=$(mktemp -d) && mount -t tmpfs -o size=1m tmpfs $d && umount $d && rmdir $d",
        ],
        capture_output=True,
    )
    return probe.returncode == 0


needs_unshare = pytest.mark.skipif(
    not unshare_works(), reason="needs `unshare --mount --map-root-user` (user namespaces) for a tmpfs"
)


def run_on_faulty_disk(
    command: list[str], disk: Path, prior: Path, after: Path, fault: str, free: int = 0, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Run `command` with `disk` a tmpfs holding a copy of `prior`, made read-only ("read-only") or left
    with `free` bytes ("full"); `after` receives the tmpfs's contents when it ends."""
    disk.mkdir(parents=True, exist_ok=True)
    after.mkdir(parents=True, exist_ok=True)
    if fault == "read-only":
        step = f"mount -o remount,ro {disk}"
    elif fault == "full":
        fill = (
            f"import shutil; n = shutil.disk_usage({str(disk)!r}).free - {free}; "
            f"open({str(disk / FILLER)!r}, 'wb').write(bytes(max(n, 0)))"
        )
        step = f"{shlex.quote(sys.executable)} -c {shlex.quote(fill)}"
    else:
        raise ValueError(fault)
    script = SCRIPT.format(
        size=SIZE,
        disk=shlex.quote(str(disk)),
        prior=shlex.quote(str(prior)),
        after=shlex.quote(str(after)),
        filler=FILLER,
        fault=step,
    )
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        ["unshare", "--mount", "--map-root-user", "sh", "-c", script, "sh", *command],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every file under `folder`."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
