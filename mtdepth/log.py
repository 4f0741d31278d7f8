"""Progress bars: tqdm on stderr, shown only on a terminal (logs, CI and DVC pipes get none)."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from tqdm import tqdm


def progress_bar(iterable: Iterable | None = None, **kwargs) -> tqdm:
    """A tqdm bar on stderr, disabled when stderr is not a TTY (logs, CI, DVC pipes)."""
    kwargs.setdefault("disable", not sys.stderr.isatty())
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, file=sys.stderr, **kwargs)
