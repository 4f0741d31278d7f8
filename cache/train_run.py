"""One `mtdepth train` run, top to bottom: set-up, then one loop over epochs.

One code path for one process and for torchrun (`RANK`/`WORLD_SIZE`/`LOCAL_RANK` set):
each rank reads its own share of the store, validation errors are all-reduced as sums,
and only rank 0 writes checkpoints and logs, holding the run folder's lock (one writer per run
folder). The run folder's layout, the resume modes and the log repair are cache/run_folder.py's; devices and DDP pipeline/distributed.py's; precision, compile
and the step pipeline/training.py's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch

from mtdepth.cache.requirements import Data, open_data
from mtdepth.cache.lock import folder_writer
from mtdepth.cache.run_folder import BEST, LAST, LIVE, check_out, check_resume, compatible_state, logged_params
from mtdepth.cache.sampling import rank_loaders
from mtdepth.errors import MtDepthError
from mtdepth.halt import halt
from mtdepth.params import Params, to_dict
from mtdepth.pipeline.checkpoint import (
    CheckpointInfo,
    checkpoint_state,
    model_from_state,
    read_resumable,
    save_checkpoint,
)
from mtdepth.pipeline.files import remove_debris, writing
from mtdepth.pipeline.distributed import Ranks, all_reduce, broadcast_flag, start_distributed, stop_distributed
from mtdepth.pipeline.losses import MultiTaskLoss
from mtdepth.pipeline.metrics import rmse_mae_mm
from mtdepth.pipeline.models import new_model
from mtdepth.pipeline.run_log import log_epoch, open_log, repair_log
from mtdepth.pipeline.training import (
    EpochStats,
    NonFiniteLoss,
    Trainer,
    evaluate_sums,
    step_settings,
    steps_per_epoch,
    use_compile,
)


def run(
    params: Params, store: str, out: Path, resume: str, progress: Callable[..., object], echo: Callable[[str], None]
) -> dict:
    """Train as params say from `store` into `out`; returns the last epoch's metrics and paths."""
    ranks, device = start_distributed(params.train.device)
    try:  # one writer per run folder: rank 0 holds `<out>.lock` for the whole run
        with folder_writer(out, f"run folder {out}") if ranks.is_main else nullcontext():
            return _run(params, store, out, resume, progress, echo, ranks, device)
    finally:
        stop_distributed(ranks)


def _run(params, store, out, resume, progress, echo, ranks: Ranks, device: torch.device) -> dict:
    t = params.train
    # -- the store and what to resume ------------------------------------------------------------------
    check_out(out, resume)
    if ranks.is_main:
        remove_debris(out)  # temporaries of a killed writer (this process holds the run folder's lock)
    data = open_data(params, store)
    state = None
    if resume == "always":
        state = read_resumable(out / LAST, out / BEST, echo)
        check_resume(state, params, data, out / LAST)
    elif resume == "compatible":
        state = compatible_state(out, params, data, echo) if ranks.is_main else None
        if ranks.world > 1 and broadcast_flag(state is not None) and not ranks.is_main:
            state = read_resumable(out / LAST, out / BEST, lambda line: None)  # rank 0 decided; the others follow
        if state is not None and state["epoch"] >= t.epochs:
            echo(f"train: {out / LAST} has finished its {state['epoch']} epochs; nothing to train")
            if ranks.is_main:
                with writing(out / LIVE):
                    repair_log(out / LIVE, logged_params(params), state["history"])
            return {
                "metrics": state["history"][-1] if state["history"] else {},
                "best_val_rmse_mm": state["best_val_rmse_mm"],
                "best_epoch": state["best_epoch"],
                "out": str(out),
            }
        resume = "always" if state is not None else "never"
    # -- model, optimizer, loss ------------------------------------------------------------------------
    torch.manual_seed(params.seed)
    model = model_from_state(state, out / LAST) if state else new_model(params)
    settings = step_settings(t, device, params.seed)
    model = model.to(device, memory_format=torch.channels_last if settings.channels_last else torch.contiguous_format)
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    wrapped = model  # checkpoints always save `model` itself, never a wrapper
    if ranks.world > 1:
        wrapped = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device] if device.type == "cuda" else None
        )
    loss = MultiTaskLoss(
        params.loss.w_init,
        params.loss.w_obj,
        params.loss.w_seg,
        params.data.max_depth,
        params.loss.depth_error,
        params.loss.w_conf,
    )
    trainer = Trainer(wrapped, optimizer, loss, settings)
    start_epoch, history, best = 0, [], (None, None)
    if state:
        optimizer.load_state_dict(state["optimizer"])
        trainer.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"])
        start_epoch, history = state["epoch"], list(state["history"])
        best = (state["best_val_rmse_mm"], state["best_epoch"])
        if ranks.is_main:
            echo(f"train: resuming {out / LAST} after its epoch {start_epoch}")
    if start_epoch >= t.epochs:
        raise MtDepthError(f"{out / LAST}: already trained for {start_epoch} epochs; raise train.epochs / --epochs")
    # -- loaders, compile, logs ------------------------------------------------------------------------
    train_loader, val_loader = rank_loaders(
        data.train, data.val, t.batch, t.workers, params.seed, ranks.rank, ranks.world, pin_memory=device.type == "cuda"
    )
    micro = len(train_loader)
    total_steps = t.epochs * steps_per_epoch(micro, t.accumulate)
    compiled = use_compile(t.compile, total_steps)
    if compiled:
        trainer.model = torch.compile(wrapped, dynamic=False)  # static shapes: one size per run
    live = None
    if ranks.is_main:
        with writing(out):
            out.mkdir(parents=True, exist_ok=True)
            live = open_log(out / LIVE, logged_params(params), history)  # the checkpoint's epochs, no others
        echo(
            f"train: {t.model} (mask {data.train.mask_source}) on {len(data.train)} train / "
            f"{len(data.val)} val frames {data.height}x{data.width}, {ranks.world} process(es) on {device}, "
            f"{settings.precision}{' channels_last' if settings.channels_last else ''}"
            f"{' compiled' if compiled else ''}, "
            f"{steps_per_epoch(micro, t.accumulate)} steps/epoch"
        )
    # -- the loop --------------------------------------------------------------------------------------
    metrics = {}
    try:
        for epoch in range(start_epoch, t.epochs):
            train_loader.sampler.set_epoch(epoch)
            first = epoch * steps_per_epoch(micro, t.accumulate)
            bar = progress(
                train_loader,
                total=micro,
                desc=f"epoch {epoch + 1}/{t.epochs}",
                **({} if ranks.is_main else {"disable": True}),
            )
            trainer.on_log = lambda step, value: bar.set_postfix(loss=f"{value:.4g}")
            try:
                stats = trainer.train_epoch(bar, first, total_steps, micro)
            except NonFiniteLoss as exc:
                raise MtDepthError(
                    f"{exc} (epoch {epoch + 1}); stopped, last good checkpoint kept: "
                    f"{out / LAST if (out / LAST).exists() else 'none yet'}; lower train.lr "
                    "or use train.precision fp32"
                ) from None
            finally:
                bar.close()
            sums = evaluate_sums(model, val_loader, settings, params.data.max_depth)
            metrics = {"epoch": epoch + 1, **epoch_metrics(stats, sums, ranks, optimizer.param_groups[0]["lr"])}
            history.append(metrics)
            rmse = metrics["val/final_rmse_mm"]
            improved = best[0] is None or math.isnan(rmse) or rmse < best[0]  # no val frames: last is best
            if improved:
                best = (rmse, epoch + 1)
            if ranks.is_main:
                halt("train.log")
                with writing(out / LIVE):
                    log_epoch(live, metrics)
                halt("train.checkpoint")
                info = CheckpointInfo(
                    model.config,
                    data.train.mask_source,
                    data.height,
                    data.width,
                    params.data.max_depth,
                    str(store),
                    data.provenance,
                    _segmenter(params, data),
                    epoch + 1,
                    best[0],
                )
                saved = checkpoint_state(
                    model,
                    info,
                    optimizer=optimizer.state_dict(),
                    scaler=trainer.scaler.state_dict(),
                    rng={"torch": torch.get_rng_state()},
                    history=history,
                    best_epoch=best[1],
                    params=to_dict(params),
                )
                if improved:
                    save_checkpoint(out / BEST, saved)
                halt("train.last")
                save_checkpoint(out / LAST, saved)
                halt("train.epoch")
                echo(_epoch_line(metrics, t.epochs))
    finally:
        if live is not None:
            live.end()
    return {"metrics": metrics, "best_val_rmse_mm": best[0], "best_epoch": best[1], "out": str(out)}


def epoch_metrics(stats: EpochStats, sums: dict, ranks: Ranks, lr: float) -> dict[str, float]:
    """Flat per-epoch metrics (train loss terms averaged over ranks, validation errors pooled)."""
    losses = (
        all_reduce(torch.tensor(list(stats.losses.values()), dtype=torch.float64, device=sums["final"].device), ranks)
        / ranks.world
    )
    metrics = {f"train/{k}": float(v) for k, v in zip(stats.losses, losses)}
    for name, total in sums.items():
        for key, value in rmse_mae_mm(all_reduce(total, ranks)).items():
            metrics[f"val/{name}_{key}"] = value
    metrics.update({"data_wait_fraction": stats.data_wait_fraction, "epoch_seconds": stats.seconds, "lr": lr})
    return metrics


def _segmenter(params: Params, data: Data) -> dict | None:
    """The segmenter a predict run should use, when the model was trained on YOLO masks."""
    if data.train.mask_source != "yolo":
        return None
    s = params.segmenter
    return {"weights": s.weights, "imgsz": s.imgsz, "conf": s.conf, "iou": s.iou, "classes": list(s.classes)}


def _epoch_line(m: dict, epochs: int) -> str:
    return (
        f"epoch {m['epoch']}/{epochs}: loss {m['train/loss']:.4g}; val RMSE {m['val/final_rmse_mm']:.0f} mm "
        f"(D_init {m['val/init_rmse_mm']:.0f}), MAE {m['val/final_mae_mm']:.0f} mm; "
        f"data wait {100 * m['data_wait_fraction']:.1f}%; {m['epoch_seconds']:.1f} s"
    )
