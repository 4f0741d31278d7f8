"""Stage-two training speed on this machine, side by side in one run.

For each model (U-Net baseline, MT-Depth) and size (128x256, 256x512): FLOPs of one
training step (forward + backward, batch 4; torch.utils.flop_counter), then the step time
of plain fp32 eager, of eager with the default precision and layout (`train.precision:
auto`, `train.channels_last: auto`: bf16 autocast + channels_last on this CPU), and of that
under torch.compile (`train.compile: auto` turns it on for runs of >= 1000 steps), achieved
GFLOP/s and speed-ups, beside the machine's fp32 and bf16 matmul peak measured in the same run.
Batches are in memory (the loader's share is measured by `mtdepth train`'s data-wait
fraction). Run: `.venv/bin/python bench/bench_train.py [--steps N]`.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from mtdepth.params import Params, override
from mtdepth.pipeline.losses import MultiTaskLoss
from mtdepth.pipeline.models import new_model
from mtdepth.pipeline.prefill import prefill_frame
from mtdepth.pipeline.training import StepSettings, Trainer, resolve_precision

BATCH = 4
SIZES = ((128, 256), (256, 512))
MATMUL_N = 2048
CPU = torch.device("cpu")


def batch_of(height: int, width: int) -> dict:
    g = torch.Generator().manual_seed(0)
    depth = torch.rand(BATCH, 1, height, width, generator=g) * 60 + 2
    keep = (torch.rand(BATCH, 1, height, width, generator=g) < 0.05).float()
    mask = (torch.rand(BATCH, 1, height, width, generator=g) < 0.2).float()
    sparse = depth * keep
    fill = np.stack([prefill_frame(Params().model.prefill, s[0].numpy(), m[0].numpy()) for s, m in zip(sparse, mask)])
    return {
        "rgb": torch.rand(BATCH, 3, height, width, generator=g),
        "sparse": sparse,
        "valid": keep,
        "mask": mask,
        "fill": torch.from_numpy(fill)[:, None],
        "depth": depth,
        "gt_mask": mask,
    }


def matmul_peak(dtype: torch.dtype, reps: int = 10) -> float:
    """GFLOP/s of a square matmul."""
    a, b = torch.rand(MATMUL_N, MATMUL_N, dtype=dtype), torch.rand(MATMUL_N, MATMUL_N, dtype=dtype)
    a @ b
    started = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * MATMUL_N**3 * reps / (time.perf_counter() - started) / 1e9


def step_flops(name: str, height: int, width: int) -> float:
    model = new_model(override(Params(), "train", model=name))
    batch = batch_of(height, width)
    with FlopCounterMode(display=False) as counter:
        out = model(batch["rgb"], batch["sparse"], batch["valid"], batch["mask"], batch["fill"])
        MultiTaskLoss()(out, batch["depth"], batch["gt_mask"])["loss"].backward()
    return counter.get_total_flops()


def step_seconds(
    name: str, height: int, width: int, precision: str, channels_last: bool, steps: int, compiled: bool = False
) -> float:
    """Median seconds per optimizer step after two warm-up steps (which include any compile)."""
    torch.manual_seed(0)
    memory = torch.channels_last if channels_last else torch.contiguous_format
    model = new_model(override(Params(), "train", model=name)).to(memory_format=memory)
    settings = StepSettings(device=CPU, precision=precision, channels_last=channels_last, warmup_steps=0)
    trainer = Trainer(
        torch.compile(model, dynamic=False) if compiled else model,
        torch.optim.Adam(model.parameters(), lr=1e-4),
        MultiTaskLoss(),
        settings,
    )
    batch = batch_of(height, width)
    times = []
    for step in range(steps + 2):
        started = time.perf_counter()
        trainer.train_epoch([batch], step, 1000, 1)
        times.append(time.perf_counter() - started)
    return sorted(times[2:])[len(times[2:]) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per configuration")
    parser.add_argument("--tiny", action="store_true", help="smoke-test sizes (seconds; the figures mean nothing)")
    args = parser.parse_args()
    sizes, compile_ = SIZES, True
    if args.tiny:
        global MATMUL_N
        sizes, compile_, args.steps, MATMUL_N = ((32, 64),), False, 1, 128  # compiling alone takes a minute
    default = resolve_precision("auto", CPU)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; default precision on this CPU: {default}")
    fp32_peak, bf16_peak = matmul_peak(torch.float32), matmul_peak(torch.bfloat16)
    print(f"matmul peak ({MATMUL_N}^2): fp32 {fp32_peak:.0f} GFLOP/s, bf16 {bf16_peak:.0f} GFLOP/s\n")
    print(
        "| model | size | GFLOP/step | fp32 eager s/step | GFLOP/s | eager default s/step | GFLOP/s | speed-up | "
        "+ torch.compile s/step | GFLOP/s | speed-up | frames/s (compiled) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for height, width in sizes:
        for name in ("unet", "mtdepth"):
            gflop = step_flops(name, height, width) / 1e9
            plain = step_seconds(name, height, width, "fp32", False, args.steps)
            fast = step_seconds(name, height, width, default, default != "fp32", args.steps)
            fused = step_seconds(name, height, width, default, default != "fp32", args.steps, compiled=compile_)
            print(
                f"| {name} | {height}x{width} | {gflop:.1f} | {plain:.2f} | {gflop / plain:.0f} | {fast:.2f} | "
                f"{gflop / fast:.0f} | {plain / fast:.2f}x | {fused:.2f} | {gflop / fused:.0f} | {plain / fused:.2f}x | "
                f"{BATCH / fused:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
