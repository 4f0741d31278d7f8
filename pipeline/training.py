"""The stage-two training loop, as functions over any iterable of batches.

`mtdepth train` builds the loaders from the store and passes them in; tests pass lists.
A batch is a dict of tensors: rgb, sparse, valid, mask, fill, depth, gt_mask (cache/dataset.py).

    trainer = Trainer(model, optimizer, loss, settings)          # model may be DDP-wrapped
    stats = trainer.train_epoch(batches, first_step, total_steps)
    sums = evaluate_sums(model, batches, settings)               # {"init": [..], "final": [..]}

Mixed precision without branches in the loop: `autocast(settings)` is a no-op context for
fp32 and torch.autocast otherwise; the grad scaler is enabled for fp16 only. Step order:
scale -> backward -> (every `accumulate` micro-batches) unscale -> clip -> step -> update
-> zero_grad. The learning rate is a pure function of the global step (`lr_at`), so a
resumed run needs no scheduler state.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from mtdepth.errors import MtDepthError
from mtdepth.pipeline.losses import MultiTaskLoss
from mtdepth.pipeline.metrics import error_sums

INPUTS = ("rgb", "sparse", "valid", "mask", "fill")  # a batch without "fill" passes None (no prefill)
TARGETS = ("depth", "gt_mask")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
LOSS_TERMS = ("loss", "final", "init", "seg", "conf")  # conf: 0 for a net without confidence
COMPILE_MIN_STEPS = 1000  # torch.compile costs about a minute once; it saves ~25% of a step (bench_train)


@dataclass(frozen=True)
class StepSettings:
    """How each step runs: device, precision, memory format, accumulation, clipping, schedule."""

    device: torch.device
    precision: str = "fp32"  # fp32, bf16 or fp16 (resolved; never "auto")
    channels_last: bool = False
    accumulate: int = 1
    grad_clip: float = 0.0
    lr: float = 1e-3
    schedule: str = "cosine"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.05
    log_every: int = 10
    flip: float = 0.0  # probability of mirroring a training frame left-right
    seed: int = 0  # of the flips: epoch e's draws depend on (seed, its first step) only


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


def step_settings(train, device: torch.device, seed: int = 0) -> StepSettings:
    """The settings `train` params (a TrainParams) give on `device`, precision and memory format resolved."""
    precision = resolve_precision(train.precision, device)
    channels_last = train.channels_last == "on" or (train.channels_last == "auto" and precision != "fp32")
    return StepSettings(
        device=device,
        precision=precision,
        channels_last=channels_last,
        accumulate=train.accumulate,
        grad_clip=train.grad_clip,
        lr=train.lr,
        schedule=train.schedule,
        warmup_steps=train.warmup_steps,
        min_lr_ratio=train.min_lr_ratio,
        log_every=train.log_every,
        flip=train.flip,
        seed=seed,
    )


def use_compile(setting: str, total_steps: int) -> bool:
    """Whether to torch.compile: 'auto' when the run is long enough to repay the compile and a C compiler exists."""
    if setting != "auto":
        return setting == "on"
    return total_steps >= COMPILE_MIN_STEPS and any(shutil.which(cc) for cc in ("cc", "gcc", "clang"))


def lr_at(step: int, total_steps: int, s: StepSettings) -> float:
    """Learning rate of optimizer step `step` (0-based): linear warm-up, then constant or cosine."""
    if step < s.warmup_steps:
        return s.lr * (step + 1) / s.warmup_steps
    if s.schedule == "constant":
        return s.lr
    span = max(1, total_steps - s.warmup_steps)
    progress = min(1.0, (step - s.warmup_steps) / span)
    return s.lr * (s.min_lr_ratio + (1 - s.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def autocast(s: StepSettings) -> contextlib.AbstractContextManager:
    """torch.autocast for bf16/fp16, a null context for fp32."""
    if s.precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=s.device.type, dtype=DTYPES[s.precision])


def to_device(batch: dict, s: StepSettings) -> dict:
    """The batch's tensors on the training device (4-D ones in the chosen memory format)."""
    memory = torch.channels_last if s.channels_last else torch.contiguous_format
    return {
        key: batch[key].to(s.device, non_blocking=True, memory_format=memory)
        for key in (*INPUTS, *TARGETS)
        if key in batch
    }


def mirror(batch: dict, p: float, generator: torch.Generator) -> dict:
    """Each frame of the batch mirrored left-right with probability `p`, every map of it alike."""
    chosen = torch.rand(batch["rgb"].shape[0], generator=generator) < p
    if not chosen.any():
        return batch
    where = chosen.view(-1, 1, 1, 1).to(batch["rgb"].device)
    return {key: torch.where(where, value.flip(-1), value) for key, value in batch.items()}


def steps_per_epoch(micro_batches: int, accumulate: int) -> int:
    """Optimizer steps in an epoch of `micro_batches` (a last partial group still steps)."""
    return math.ceil(micro_batches / accumulate)


@dataclass
class EpochStats:
    """What one training epoch did: mean loss terms, steps, time and the share spent waiting for data."""

    losses: dict[str, float]
    steps: int
    seconds: float
    data_wait_seconds: float

    @property
    def data_wait_fraction(self) -> float:
        return self.data_wait_seconds / self.seconds if self.seconds > 0 else 0.0


class Trainer:
    """Runs training epochs of one model with one optimizer and loss.

    Args:
        model: the network (or its DistributedDataParallel wrapper).
        optimizer: over the model's parameters.
        loss: the multi-task loss.
        settings: StepSettings.
        on_log: called with (global step, running mean loss) every `log_every` steps.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss: MultiTaskLoss,
        settings: StepSettings,
        on_log: Callable[[int, float], None] | None = None,
    ):
        self.model, self.optimizer, self.loss, self.s = model, optimizer, loss, settings
        self.scaler = torch.amp.GradScaler(settings.device.type, enabled=settings.precision == "fp16")
        self.on_log = on_log

    def _sync_context(self, last_micro_batch: bool) -> contextlib.AbstractContextManager:
        """DDP's no_sync for micro-batches that do not end an accumulation group."""
        if last_micro_batch or not hasattr(self.model, "no_sync"):
            return contextlib.nullcontext()
        return self.model.no_sync()

    def train_epoch(self, batches: Iterable[dict], first_step: int, total_steps: int, micro_batches: int) -> EpochStats:
        """One pass over `batches` (`micro_batches` of them), optimizer steps numbered from `first_step`."""
        s, model = self.s, self.model
        model.train()
        sums = torch.zeros(len(LOSS_TERMS), dtype=torch.float64, device=s.device)
        logged = torch.zeros((), dtype=torch.float64, device=s.device)
        step, wait, started = first_step, 0.0, time.perf_counter()
        iterator = iter(batches)
        flips = torch.Generator().manual_seed((s.seed * 1_000_003 + first_step) % 2**63)
        for index in range(micro_batches):
            before = time.perf_counter()
            batch = to_device(next(iterator), s)
            wait += time.perf_counter() - before
            if s.flip > 0:
                batch = mirror(batch, s.flip, flips)
            group_start = index - index % s.accumulate
            group_size = min(s.accumulate, micro_batches - group_start)  # a last group may be short
            group_end = index + 1 == group_start + group_size
            with self._sync_context(group_end):
                with autocast(s):
                    outputs = model(*(batch.get(k) for k in INPUTS))
                terms = self.loss(outputs, batch["depth"], batch["gt_mask"])
                self.scaler.scale(terms["loss"] / group_size).backward()
            sums += torch.stack([terms[k].detach().double() for k in LOSS_TERMS])
            if not group_end:
                continue
            for group in self.optimizer.param_groups:
                group["lr"] = lr_at(step, total_steps, s)
            if s.grad_clip > 0:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
            step += 1
            if (step - first_step) % s.log_every == 0:
                self._check_and_log(step, sums[0] - logged, s.log_every * s.accumulate)
                logged = sums[0].clone()
        self._check_and_log(step, sums[0], micro_batches, log=False)
        means = (sums / max(1, micro_batches)).tolist()
        return EpochStats(dict(zip(LOSS_TERMS, means)), step - first_step, time.perf_counter() - started, wait)

    def _check_and_log(self, step: int, loss_sum: torch.Tensor, count: int, log: bool = True) -> None:
        """Stop on a non-finite loss (one device sync per call); report the running mean."""
        value = float(loss_sum) / max(1, count)
        if not math.isfinite(value):
            raise NonFiniteLoss(f"training loss became {value} by step {step}")
        if log and self.on_log is not None:
            self.on_log(step, value)


class NonFiniteLoss(MtDepthError):
    """The loss became NaN or infinite; the caller keeps the last good checkpoint."""


@torch.no_grad()
def evaluate_sums(
    model: nn.Module, batches: Iterable[dict], s: StepSettings, max_depth: float
) -> dict[str, torch.Tensor]:
    """Summed errors (metrics.error_sums) of D_init and D_final over `batches`, in eval mode."""
    model.eval()
    sums = {
        "init": torch.zeros(3, dtype=torch.float64, device=s.device),
        "final": torch.zeros(3, dtype=torch.float64, device=s.device),
    }
    for batch in batches:
        batch = to_device(batch, s)
        with autocast(s):
            outputs = model(*(batch.get(k) for k in INPUTS))
        for name in sums:
            sums[name] += error_sums(outputs[name].float(), batch["depth"], max_depth)
    return sums
