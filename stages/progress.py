"""What every command shares: progress bars (tqdm, shown only on a terminal) and list options."""

from __future__ import annotations

import sys
from collections.abc import Iterable

from tqdm import tqdm


def progress_bar(iterable: Iterable | None = None, **kwargs) -> tqdm:
    """A tqdm bar on stderr, disabled when stderr is not a TTY (logs, CI, DVC pipes)."""
    kwargs.setdefault("disable", not sys.stderr.isatty())
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, file=sys.stderr, **kwargs)


def comma_list(value: str | None) -> tuple[str, ...] | None:
    """'a, b,c' -> ('a', 'b', 'c'); None (option not given) stays None."""
    return None if value is None else tuple(v.strip() for v in value.split(",") if v.strip())
