"""One `mtdepth train` run: store checks, model, loaders, DDP, epochs, checkpoints, dvclive.

One code path for one process and for torchrun (`RANK`/`WORLD_SIZE`/`LOCAL_RANK` set):
each rank reads its own share of the store, validation errors are all-reduced as sums,
and only rank 0 writes checkpoints and logs. Layout of `--out DIR`:

    DIR/last.pt    every epoch (atomic), what --resume continues from
    DIR/best.pt    the epoch with the lowest validation RMSE of D_final
    DIR/live/      dvclive: metrics.json, plots/metrics/**.tsv (loss curve, RMSE per epoch)

Resume modes: "never" (a fresh run; refuses a DIR holding one), "always" (--resume: continue the
run in DIR, refusing other params), "compatible" (--resume-if-compatible, what dvc.yaml uses on
its persisted run folders: continue an unfinished run of exactly these params and store, keep a
finished one, otherwise start afresh over it).
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from mtdepth.cache.dataset import CachedDepthDataset, check_mask_source
from mtdepth.cache.fingerprint import canonical, describe_differences
from mtdepth.cache.requirements import arrays_for, required_provenance
from mtdepth.cache.sampling import rank_loaders
from mtdepth.cache.store import open_store
from mtdepth.errors import MtDepthError
from mtdepth.params import Params, to_dict
from mtdepth.pipeline.checkpoint import (CheckpointInfo, checkpoint_state, model_from_state, read_checkpoint,
                                         save_checkpoint)
from mtdepth.pipeline.losses import MultiTaskLoss
from mtdepth.pipeline.metrics import rmse_mae_mm
from mtdepth.pipeline.models import DepthCompletionNet, build_model
from mtdepth.pipeline.prefill import MASK_AWARE
from mtdepth.pipeline.training import EpochStats, NonFiniteLoss, StepSettings, Trainer, evaluate_sums, steps_per_epoch

LAST, BEST, LIVE = "last.pt", "best.pt", "live"
RESUME_KEYS = ("model", "train", "loss")  # params sections a resumed run must share, except:
FREE_ON_RESUME = ("epochs", "out", "workers", "device", "log_every", "compile")  # train.* that leave the result alone
COMPILE_MIN_STEPS = 1000  # torch.compile costs about a minute once; it saves ~25% of a step (bench_train)


@dataclass(frozen=True)
class Ranks:
    """Where this process stands in a torchrun job (rank 0 of 1 when run alone)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def start_distributed(device: str) -> tuple[Ranks, torch.device]:
    """Join the torchrun process group when launched by torchrun; pick this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    ranks = Ranks(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))
    if device == "auto":
        device = f"cuda:{ranks.local_rank}" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MtDepthError(f"train.device: {device!r} asked for, but this machine has no CUDA device")
    try:
        chosen = torch.device(device)
    except RuntimeError:
        raise MtDepthError(f"train.device: {device!r} is not a torch device (auto, cpu, cuda:0, ...)") from None
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo")
    return ranks, chosen


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' -> bf16 on CUDA with bf16 (else fp16) and on CPUs with bf16 units (else fp32)."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    try:
        return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"
    except (AttributeError, RuntimeError):
        return "fp32"


def step_settings(params: Params, device: torch.device) -> StepSettings:
    t = params.train
    precision = resolve_precision(t.precision, device)
    channels_last = t.channels_last == "on" or (t.channels_last == "auto" and precision != "fp32")
    return StepSettings(device=device, precision=precision, channels_last=channels_last, accumulate=t.accumulate,
                        grad_clip=t.grad_clip, lr=t.lr, schedule=t.schedule, warmup_steps=t.warmup_steps,
                        min_lr_ratio=t.min_lr_ratio, log_every=t.log_every)


def use_compile(setting: str, total_steps: int) -> bool:
    """Whether to torch.compile: 'auto' when the run is long enough to repay the compile and a C compiler exists."""
    if setting != "auto":
        return setting == "on"
    return total_steps >= COMPILE_MIN_STEPS and any(shutil.which(cc) for cc in ("cc", "gcc", "clang"))


def new_model(params: Params) -> DepthCompletionNet:
    """The network params describe (train.model, model.*, data.max_depth)."""
    m = params.model
    config = {"name": params.train.model, "channels": list(m.unet_channels), "max_depth": params.data.max_depth,
              "init_depth": m.init_depth, "prefill": m.prefill, "output": m.output, "keep_sparse": m.keep_sparse}
    if params.train.model == "mtdepth":
        config.update(attention_dim=m.attention_dim, attention_size=list(m.attention_size),
                      fusion_channels=m.fusion_channels, head_channels=m.head_channels, se_reduction=m.se_reduction,
                      query=m.query)
    return build_model(config)


RESUME_MODES = ("never", "always", "compatible")


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


@dataclass
class Data:
    """The store's datasets for a run and what the checkpoint records of them."""

    train: CachedDepthDataset
    val: CachedDepthDataset
    provenance: dict[str, dict]
    height: int
    width: int


def open_data(params: Params, store: str) -> Data:
    """Training and validation datasets, refusing a store made with other params (naming the keys)."""
    reader = open_store(store)
    # the U-Net takes no mask, unless its fill is mask-aware
    reads_mask = params.train.model == "mtdepth" or params.model.prefill in MASK_AWARE
    mask = params.train.mask_source if reads_mask else "none"
    check_mask_source(reader, mask)
    required = required_provenance(reader, params, arrays_for(mask, "gt" in reader.mask_sources()))
    size = params.model.attention_size
    if params.train.model == "mtdepth" and (size[0] > reader.height or size[1] > reader.width):
        raise MtDepthError(f"model.attention_size {list(size)} is larger than the store's "
                           f"{reader.height}x{reader.width} frames")
    train = CachedDepthDataset(store, "train", mask, required=required, prefill=params.model.prefill)
    val = CachedDepthDataset(store, "val", mask, prefill=params.model.prefill)
    if len(train) == 0:
        raise MtDepthError(f"store {store}: its train split has no frames")
    return Data(train, val, canonical(required), reader.height, reader.width)


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
        raise MtDepthError(f"{path}: trained at {info['height']}x{info['width']}, the store is "
                           f"{data.height}x{data.width}")
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
        state = read_checkpoint(out / LAST)
        check_resume(state, params, data, out / LAST)
        if state["params"]["train"]["epochs"] != params.train.epochs:
            raise MtDepthError(f"{out / LAST}: cannot resume, it was planned for {state['params']['train']['epochs']}"
                               f" epochs, now {params.train.epochs} (the schedule depends on it)")
        return state
    except MtDepthError as exc:
        echo(f"train: starting afresh in {out}: {exc}")
    for name in (LAST, BEST):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / LIVE, ignore_errors=True)
    return None


def _reduce(value: torch.Tensor, ranks: Ranks) -> torch.Tensor:
    if ranks.world > 1:
        dist.all_reduce(value)
    return value


def epoch_metrics(stats: EpochStats, sums: dict, ranks: Ranks, lr: float) -> dict[str, float]:
    """Flat per-epoch metrics (train loss terms averaged over ranks, validation errors pooled)."""
    losses = _reduce(torch.tensor(list(stats.losses.values()), dtype=torch.float64, device=sums["final"].device),
                     ranks) / ranks.world
    metrics = {f"train/{k}": float(v) for k, v in zip(stats.losses, losses)}
    for name, total in sums.items():
        for key, value in rmse_mae_mm(_reduce(total, ranks)).items():
            metrics[f"val/{name}_{key}"] = value
    metrics.update({"data_wait_fraction": stats.data_wait_fraction, "epoch_seconds": stats.seconds, "lr": lr})
    return metrics


def run(params: Params, store: str, out: Path, resume: str,
        progress: Callable[..., object], echo: Callable[[str], None]) -> dict:
    """Train as params say from `store` into `out`; returns the last epoch's metrics and paths."""
    ranks, device = start_distributed(params.train.device)
    try:
        return _run(params, store, out, resume, progress, echo, ranks, device)
    finally:
        if ranks.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _run(params, store, out, resume, progress, echo, ranks: Ranks, device: torch.device) -> dict:
    check_out(out, resume)
    data = open_data(params, store)
    state = None
    if resume == "always":
        state = read_checkpoint(out / LAST)
        check_resume(state, params, data, out / LAST)
    elif resume == "compatible":
        state = compatible_state(out, params, data, echo) if ranks.is_main else None
        if ranks.world > 1:
            state = _broadcast_state(state, out, ranks)
        if state is not None and state["epoch"] >= params.train.epochs:
            echo(f"train: {out / LAST} has finished its {state['epoch']} epochs; nothing to train")
            return {"metrics": state["history"][-1] if state["history"] else {},
                    "best_val_rmse_mm": state["best_val_rmse_mm"], "best_epoch": state["best_epoch"], "out": str(out)}
        resume = "always" if state is not None else "never"
    torch.manual_seed(params.seed)
    model = model_from_state(state, out / LAST) if state else new_model(params)
    settings = step_settings(params, device)
    model = model.to(device, memory_format=torch.channels_last if settings.channels_last else torch.contiguous_format)
    t = params.train
    optimizer = torch.optim.Adam(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    wrapped = model  # checkpoints always save `model` itself, never a wrapper
    if ranks.world > 1:
        wrapped = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)
    loss = MultiTaskLoss(params.loss.w_init, params.loss.w_obj, params.loss.w_seg, params.data.max_depth,
                         params.loss.depth_error)
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
    train_loader, val_loader = rank_loaders(data.train, data.val, t.batch, t.workers, params.seed, ranks.rank,
                                            ranks.world, pin_memory=device.type == "cuda")
    micro = len(train_loader)
    total_steps = t.epochs * steps_per_epoch(micro, t.accumulate)
    compiled = use_compile(t.compile, total_steps)
    if compiled:
        trainer.model = torch.compile(wrapped, dynamic=False)  # static shapes: one size per run
    live = None
    if ranks.is_main:
        out.mkdir(parents=True, exist_ok=True)
        live = _open_live(out, resume == "always", params)
        echo(f"train: {params.train.model} (mask {data.train.mask_source}) on {len(data.train)} train / "
             f"{len(data.val)} val frames {data.height}x{data.width}, {ranks.world} process(es) on {device}, "
             f"{settings.precision}{' channels_last' if settings.channels_last else ''}"
             f"{' compiled' if compiled else ''}, "
             f"{steps_per_epoch(micro, t.accumulate)} steps/epoch")
    metrics = {}
    try:
        for epoch in range(start_epoch, t.epochs):
            train_loader.sampler.set_epoch(epoch)
            first = epoch * steps_per_epoch(micro, t.accumulate)
            bar = progress(train_loader, total=micro, desc=f"epoch {epoch + 1}/{t.epochs}",
                           **({} if ranks.is_main else {"disable": True}))
            trainer.on_log = lambda step, value: bar.set_postfix(loss=f"{value:.4g}")
            try:
                stats = trainer.train_epoch(bar, first, total_steps, micro)
            except NonFiniteLoss as exc:
                raise MtDepthError(f"{exc} (epoch {epoch + 1}); stopped, last good checkpoint kept: "
                                   f"{out / LAST if (out / LAST).exists() else 'none yet'}; lower train.lr "
                                   "or use train.precision fp32") from None
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
                _log_live(live, metrics, epoch)
                info = CheckpointInfo(model.config, data.train.mask_source, data.height, data.width,
                                      params.data.max_depth, str(store), data.provenance, _segmenter(params, data),
                                      epoch + 1, best[0])
                saved = checkpoint_state(model, info, optimizer=optimizer.state_dict(),
                                         scaler=trainer.scaler.state_dict(), rng={"torch": torch.get_rng_state()},
                                         history=history, best_epoch=best[1], params=to_dict(params))
                if improved:
                    save_checkpoint(out / BEST, saved)
                save_checkpoint(out / LAST, saved)
                echo(_epoch_line(metrics, t.epochs))
    finally:
        if live is not None:
            live.end()
    return {"metrics": metrics, "best_val_rmse_mm": best[0], "best_epoch": best[1], "out": str(out)}


def _broadcast_state(state: dict | None, out: Path, ranks: Ranks) -> dict | None:
    """Rank 0 decided whether to resume; every other rank follows, reading the checkpoint itself."""
    decision = [state is not None]
    dist.broadcast_object_list(decision, src=0)
    if ranks.is_main or not decision[0]:
        return state
    return read_checkpoint(out / LAST)


def _segmenter(params: Params, data: Data) -> dict | None:
    """The segmenter a predict run should use, when the model was trained on YOLO masks."""
    if data.train.mask_source != "yolo":
        return None
    s = params.segmenter
    return {"weights": s.weights, "imgsz": s.imgsz, "conf": s.conf, "iou": s.iou, "classes": list(s.classes)}


def _epoch_line(m: dict, epochs: int) -> str:
    return (f"epoch {m['epoch']}/{epochs}: loss {m['train/loss']:.4g}; val RMSE {m['val/final_rmse_mm']:.0f} mm "
            f"(D_init {m['val/init_rmse_mm']:.0f}), MAE {m['val/final_mae_mm']:.0f} mm; "
            f"data wait {100 * m['data_wait_fraction']:.1f}%; {m['epoch_seconds']:.1f} s")


def _open_live(out: Path, resume: bool, params: Params):
    from dvclive import Live

    live = Live(dir=str(out / LIVE), resume=resume, save_dvc_exp=False, dvcyaml=None)
    if not resume:
        live.log_params({k: v for k, v in to_dict(params).items() if k in ("seed", *RESUME_KEYS)})
    return live


def _log_live(live, metrics: dict, epoch: int) -> None:
    live.step = epoch
    for key, value in metrics.items():
        if key != "epoch":
            live.log_metric(key, value)
    live.next_step()
