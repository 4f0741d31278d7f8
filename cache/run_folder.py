"""A training run's folder: its layout, the resume policy and the dvclive log.

    DIR/last.pt    every epoch (atomic), what --resume continues from
    DIR/best.pt    the epoch with the lowest validation RMSE of D_final
    DIR/live/      dvclive: metrics.json, plots/metrics/**.tsv (loss curve, RMSE per epoch)

Resume modes: "never" (a fresh run; refuses a DIR holding one), "always" (--resume: continue the
run in DIR, refusing other params), "compatible" (--resume-if-compatible, what dvc.yaml uses on
its persisted run folders: continue an unfinished run of exactly these params and store, keep a
finished one, otherwise start afresh over it). A resume reads last.pt, or best.pt when last.pt is
unreadable, and rewrites DIR/live from that checkpoint's history (pipeline/run_log.py). One process
writes DIR at a time: it holds `DIR.lock` beside it (cache/lock.py) and first removes what a killed
writer left.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from mtdepth.cache.fingerprint import canonical, describe_differences
from mtdepth.cache.requirements import Data
from mtdepth.errors import MtDepthError
from mtdepth.params import Params, to_dict
from mtdepth.pipeline.checkpoint import read_resumable

LAST, BEST, LIVE = "last.pt", "best.pt", "live"
RESUME_MODES = ("never", "always", "compatible")
RESUME_KEYS = ("model", "train", "loss")  # params sections a resumed run must share, except:
FREE_ON_RESUME = ("epochs", "out", "workers", "device", "log_every", "compile")  # train.* that leave the result alone


def check_out(out: Path, resume: str) -> None:
    """Refuse an --out that is a file, or (resume mode "never" / "always") that holds a run unless
    resuming it, or holds none when resuming (nothing is overwritten)."""
    if resume not in RESUME_MODES:
        raise ValueError(f"resume mode {resume!r}")
    if out.exists() and not out.is_dir():
        raise MtDepthError(f"{out}: --out is a file, not a folder")
    if resume == "always" and not (out / LAST).is_file():
        raise MtDepthError(f"{out}: nothing to resume (no {LAST}); drop --resume to start a run there")
    if resume == "never" and (out / LAST).exists():
        raise MtDepthError(f"{out}: holds a run already ({LAST}); pass --resume to continue it or choose another --out")


def check_resume(state: dict, params: Params, data: Data, path: Path) -> None:
    """Refuse to resume a checkpoint of other training params, another resolution or another store."""
    info = state["info"]
    stored = {k: dict(v) for k, v in state.get("params", {}).items() if k in RESUME_KEYS}
    wanted = {k: v for k, v in to_dict(params).items() if k in RESUME_KEYS}
    for key in FREE_ON_RESUME:
        stored.get("train", {}).pop(key, None)
        wanted["train"].pop(key)
    if canonical(stored) != canonical(wanted):
        change = describe_differences(stored, wanted).replace("params say", "now")
        raise MtDepthError(f"{path}: cannot resume, its params differ: {change}")
    if (info["height"], info["width"]) != (data.height, data.width):
        raise MtDepthError(
            f"{path}: trained at {info['height']}x{info['width']}, the store is {data.height}x{data.width}"
        )
    old, new = info["store_provenance"], data.provenance
    if canonical(old) != canonical(new):
        change = describe_differences(old, new).replace("params say", "now")
        raise MtDepthError(f"{path}: cannot resume, the store differs from the one it trained on: {change}")


def compatible_state(out: Path, params: Params, data: Data, echo: Callable[[str], None]) -> dict | None:
    """The checkpoint in `out` when it is a run of exactly these params (epochs included) and store;
    otherwise None, after removing that run's files (checkpoints, dvclive) so a fresh one starts there."""
    if not (out / LAST).is_file():
        return None
    try:
        state = read_resumable(out / LAST, out / BEST, echo)
        check_resume(state, params, data, out / LAST)
        if state["params"]["train"]["epochs"] != params.train.epochs:
            raise MtDepthError(
                f"{out / LAST}: cannot resume, it was planned for {state['params']['train']['epochs']}"
                f" epochs, now {params.train.epochs} (the schedule depends on it)"
            )
        return state
    except MtDepthError as exc:
        echo(f"train: starting afresh in {out}: {exc}")
    for name in (LAST, BEST):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / LIVE, ignore_errors=True)
    return None


def logged_params(params: Params) -> dict:
    """The params a run's dvclive log records."""
    return {k: v for k, v in to_dict(params).items() if k in ("seed", *RESUME_KEYS)}
