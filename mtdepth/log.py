"""Messages and progress, one path: the standard `logging` module for warnings and errors a run goes on
past, tqdm for progress bars. The CLI installs one handler (`setup_logging`) that prints each record
as one line, `mtdepth: warning: ...`, through tqdm so a running bar is not torn.

    log = logging.getLogger(__name__)      # in any module
    log.warning("%s: not the segmenter the model was trained with", path)
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

from tqdm import tqdm


def progress_bar(iterable: Iterable | None = None, **kwargs) -> tqdm:
    """A tqdm bar on stderr, disabled when stderr is not a TTY (logs, CI, DVC pipes)."""
    kwargs.setdefault("disable", not sys.stderr.isatty())
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, file=sys.stderr, **kwargs)


class OneLineHandler(logging.Handler):
    """`mtdepth: LEVEL: message` on stderr (as it is when the record is emitted), above any progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(f"mtdepth: {record.levelname.lower()}: {record.getMessage()}", file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never raise into the run
            self.handleError(record)


def setup_logging(level: int = logging.INFO) -> None:
    """Route the `mtdepth` loggers to one OneLineHandler (idempotent: one handler however often called)."""
    root = logging.getLogger("mtdepth")
    root.handlers = [h for h in root.handlers if not isinstance(h, OneLineHandler)]
    root.addHandler(OneLineHandler())
    root.setLevel(level)
    root.propagate = False
