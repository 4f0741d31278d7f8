"""A test hook for kill tests: `MTDEPTH_HALT=POINT[:N[:SIGNAL]]` makes this process send itself SIGNAL
(KILL by default; STOP freezes it) the N-th time (1 by default) it reaches `halt(POINT)`.

Points: "train.log" (before an epoch's log row), "run_log.metric" (after each metric of a row),
"train.checkpoint" (after the row, before
best.pt/last.pt), "train.last" (after best.pt, before last.pt), "train.epoch" (after last.pt),
"atomic_write.rename" (a temporary file written, not yet renamed over its target).
Unset (always, outside tests), a halt costs one environment lookup.
"""

from __future__ import annotations

import os
import signal

VARIABLE = "MTDEPTH_HALT"
_reached: dict[str, int] = {}


def halt(point: str) -> None:
    """Signal this process if MTDEPTH_HALT names `point` and this is its N-th arrival there."""
    spec = os.environ.get(VARIABLE)
    if not spec or spec.split(":")[0] != point:
        return
    parts = spec.split(":")
    count, name = (parts[1:2] or ["1"])[0], (parts[2:3] or ["KILL"])[0]
    _reached[point] = _reached.get(point, 0) + 1
    if _reached[point] == int(count):
        os.kill(os.getpid(), getattr(signal, f"SIG{name}"))
