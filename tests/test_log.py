"""One logging path: the CLI's handler prints each record as one `mtdepth: LEVEL: message` line on stderr."""

from __future__ import annotations

import logging

from mtdepth.log import OneLineHandler, setup_logging


def test_one_handler_however_often_set_up_and_one_line_per_record(capsys):
    setup_logging()
    setup_logging()
    root = logging.getLogger("mtdepth")
    assert sum(isinstance(h, OneLineHandler) for h in root.handlers) == 1
    logging.getLogger("mtdepth.cache.requirements").warning("%s: segmenter weights not here", "w.pt")
    assert capsys.readouterr().err == "mtdepth: warning: w.pt: segmenter weights not here\n"
