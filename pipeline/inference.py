"""Dense depth for frames of any size from a trained net (`.pt` through torch, `.onnx` through onnxruntime).

How a frame reaches the net (`size`):
    native   (default) completed at the frame's own size: the net takes any size (the U-Net
             pads to a multiple of 16, the attention pools to its fixed grid), sees every
             sample at the density LiDAR gives, and nothing is resampled;
    trained  resized to the checkpoint's training resolution as stage one resized the
             training frames (RGB by area, sparse depth by nearest neighbour, which keeps
             the map's density but drops most samples when shrinking), completed there,
             and the dense map resized back to the frame's size bilinearly.
The mask is the frozen segmenter's on the RGB the net sees, as stage one made it. A net trained on
a fill (`model.prefill`) gets that fill computed here from the net-size sparse map (and mask), before
the net or its ONNX session runs: the exported graph stays the network alone.

Depth range: the net was trained on depth up to `max_depth` (farther ground truth and its
samples were invalid), so sparse samples beyond it are dropped from the net's input (a
clamp would feed a false depth) and counted for a warning; the output is clipped to
(0, max_depth]. `keep_sparse` writes every measured sample back, at the frame's size.

A net trained with `model.confidence` also gives the expected absolute error of its depth in metres
(exp of its log-scale; docs/confidence.md): `complete_with_error` returns it beside each depth map,
resized and clipped like the depth (to [MIN_EXPECTED_ERROR_M, max_depth]), the floor where `keep_sparse`
writes a sample back. A net without one gives None there, and `complete` returns the depth alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mtdepth.errors import MtDepthError
from mtdepth.pipeline.checkpoint import CheckpointInfo, model_from_checkpoint
from mtdepth.pipeline.kitti_io import read_image, read_sparse
from mtdepth.pipeline.device import resolve_device
from mtdepth.pipeline.guard import Guard, Verdict, holdout, judge
from mtdepth.pipeline.models.mtdepth import MIN_EXPECTED_ERROR_M
from mtdepth.pipeline.prefill import MASK_AWARE, prefill_frame
from mtdepth.pipeline.segmenter import SegmenterConfig
from mtdepth.pipeline.tiling import Tiling, tiled
from mtdepth.pipeline.vkitti2 import resize_area, resize_nearest

MIN_DEPTH_M = 1.0 / 256  # the smallest depth a KITTI PNG stores as a measurement
NET_PIXELS = 1 << 20  # pixels per net call (N * H * W): bounds memory, the fused features are 128 x H x W
TILING = Tiling(tile=512, margin=96)  # frames larger than 704 px a side are completed in 512 px tiles (tiling.py)


@dataclass
class Frame:
    """One input frame at its own size."""

    name: str
    rgb: np.ndarray  # uint8 (H, W, 3)
    sparse: np.ndarray  # float32 (H, W) metres, 0 = no sample


class DepthNet:
    """A trained depth network behind one call: inputs (N, C, H, W) float32 arrays -> (N, K, H, W) float32:
    channel 0 D_final in metres; with `confidence` (K = 2) channel 1 its expected absolute error in metres."""

    def __init__(self, info: CheckpointInfo, run: Callable[[dict[str, np.ndarray]], np.ndarray], backend: str):
        self.info, self._run, self.backend = info, run, backend

    @property
    def prefill(self) -> str:
        """The fill the net completes (checkpoints from before prefills: "none")."""
        return self.info.model_config.get("prefill", "none")

    @property
    def confidence(self) -> bool:
        """Whether the net predicts its expected error (checkpoints from before confidence: False)."""
        return bool(self.info.model_config.get("confidence", False))

    @property
    def uses_mask(self) -> bool:
        """Whether the network or its fill reads the mask (the U-Net baseline on a plain fill does not)."""
        return self.info.model_name != "unet" or self.prefill in MASK_AWARE

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return self._run(inputs)


def load_net(path: Path, device: str = "auto", tiling: Tiling = TILING) -> DepthNet:
    """The net of a checkpoint (`.pt`, torch) or of an mtdepth export (`.onnx`, onnxruntime), completing
    frames larger than one window of `tiling` tile by tile."""
    device = resolve_device(device)
    if path.suffix.lower() == ".onnx":
        from mtdepth.pipeline.onnx_export import read_onnx, run_session, session

        info = read_onnx(path)
        sess = session(path, device)

        def run_onnx(inputs: dict[str, np.ndarray]) -> np.ndarray:
            return run_tiles(
                lambda crop: torch.from_numpy(
                    run_session(sess, {k: np.ascontiguousarray(v.numpy()) for k, v in crop.items()})
                ),
                inputs,
                tiling,
                "cpu",
                None,
            )

        return DepthNet(info, run_onnx, "onnxruntime")
    model, info = model_from_checkpoint(path, device)

    def forward(tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        rgb, sparse, mask, fill = (tensors[k] for k in ("rgb", "sparse", "mask", "fill"))
        outputs = model(rgb, sparse, (sparse > 0).to(sparse.dtype), mask, fill)
        log_scale = outputs.get("log_scale")
        return outputs["final"] if log_scale is None else torch.cat([outputs["final"], torch.exp(log_scale)], 1)

    def run(inputs: dict[str, np.ndarray]) -> np.ndarray:
        return run_tiles(forward, inputs, tiling, device, getattr(model, "attention", None))

    return DepthNet(info, run, "torch")


def run_tiles(
    forward: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    inputs: dict[str, np.ndarray],
    tiling: Tiling,
    device: str | torch.device,
    attention: torch.nn.Module | None,
) -> np.ndarray:
    """The maps of `forward` on `inputs` (N, K, H, W): one call, or tile by tile when the frames are larger than a tile
    (ONNX Runtime: each tile's attention sees that tile alone; torch: the whole frame's, see tiling.py)."""
    tensors = {k: torch.from_numpy(v).to(device) for k, v in inputs.items()}
    with torch.inference_mode():
        if tiling.needed(*next(iter(inputs.values())).shape[-2:]):
            maps = tiled(forward, tensors, tiling, attention)
        else:
            maps = forward(tensors)
        return maps.float().cpu().numpy()


def segmenter_config(
    info: CheckpointInfo, mask_source: str | None, weights: str | None, batch: int, device: str
) -> SegmenterConfig | None:
    """How to make the masks: the checkpoint's segmenter, `weights` instead, or None (zero masks)."""
    if info.model_name == "unet" and info.model_config.get("prefill", "none") not in MASK_AWARE:
        return None  # the baseline ignores the mask
    source = mask_source or ("none" if info.mask_source == "none" else "yolo")
    if source == "none":
        return None
    recorded = dict(info.segmenter or {})
    if weights is None and not recorded:
        raise MtDepthError(
            f"--weights: the checkpoint was trained with {info.mask_source!r} masks and records no "
            f"segmenter; give segmenter weights or --mask-source none"
        )
    recorded["classes"] = tuple(recorded.get("classes", ()))
    if weights is not None:
        recorded["weights"] = weights
    return SegmenterConfig(**recorded, batch=batch, device=device)


def drop_far(sparse: np.ndarray, max_depth: float) -> tuple[np.ndarray, int]:
    """The sparse map with samples beyond `max_depth` removed, and how many there were."""
    far = sparse > max_depth
    count = int(far.sum())
    return (np.where(far, np.float32(0), sparse) if count else sparse), count


def net_size(frame: Frame, info: CheckpointInfo, size: str) -> tuple[int, int]:
    """(height, width) the net completes `frame` at."""
    return (info.height, info.width) if size == "trained" else frame.rgb.shape[:2]


def to_net(frame: Frame, info: CheckpointInfo, size: str) -> tuple[np.ndarray, np.ndarray, int]:
    """RGB uint8 and sparse metres at the net's size (far samples dropped), and the number dropped."""
    height, width = net_size(frame, info, size)
    sparse, dropped = drop_far(frame.sparse, info.max_depth)
    return resize_area(frame.rgb, height, width), resize_nearest(sparse, height, width), dropped


def from_net(depth: np.ndarray, height: int, width: int, max_depth: float, low: float = MIN_DEPTH_M) -> np.ndarray:
    """A (h, w) dense map resized bilinearly to (height, width), clipped to [low, max_depth] m."""
    if depth.shape != (height, width):
        resized = F.interpolate(
            torch.from_numpy(depth)[None, None], size=(height, width), mode="bilinear", align_corners=False
        )
        depth = resized[0, 0].numpy()
    return np.clip(depth, low, max_depth).astype(np.float32)


def complete(
    net: DepthNet,
    frames: list[Frame],
    size: str = "native",
    masks: Callable[[list[np.ndarray]], list[np.ndarray]] | None = None,
    keep_sparse: bool = False,
) -> list[tuple[np.ndarray, int]]:
    """Dense depth (H, W) float32 metres at each frame's own size, and its count of dropped far samples
    (complete_with_error without the error)."""
    return [(dense, dropped) for dense, _, dropped in complete_with_error(net, frames, size, masks, keep_sparse)]


def complete_with_error(
    net: DepthNet,
    frames: list[Frame],
    size: str = "native",
    masks: Callable[[list[np.ndarray]], list[np.ndarray]] | None = None,
    keep_sparse: bool = False,
) -> list[tuple[np.ndarray, np.ndarray | None, int]]:
    """Dense depth (H, W) float32 metres at each frame's own size, its expected absolute error (H, W) float32
    metres (None for a net without confidence), and its count of dropped far samples.

    `masks` maps the net-size RGB images to 0/1 masks (the segmenter); None feeds zero masks.
    Frames that reach the net at the same size run together, up to NET_PIXELS pixels a call
    (the net completes a frame larger than its tiling's window in tiles: load_net).
    """
    info = net.info
    prepared = [to_net(frame, info, size) for frame in frames]
    images = [rgb for rgb, _, _ in prepared]
    maps = masks(images) if masks is not None and net.uses_mask else [np.zeros(i.shape[:2], np.uint8) for i in images]
    results: list[np.ndarray | None] = [None] * len(frames)
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, image in enumerate(images):
        by_size.setdefault(image.shape[:2], []).append(i)
    batches = []
    for (height, width), group in by_size.items():
        per_call = max(1, NET_PIXELS // (height * width))
        batches += [group[k : k + per_call] for k in range(0, len(group), per_call)]
    for members in batches:
        inputs = {
            "rgb": np.stack([images[i].transpose(2, 0, 1) for i in members]).astype(np.float32) / np.float32(255),
            "sparse": np.stack([prepared[i][1][None] for i in members]).astype(np.float32),
            "mask": np.stack([maps[i][None] for i in members]).astype(np.float32),
        }
        fills = [prefill_frame(net.prefill, s[0], m[0]) for s, m in zip(inputs["sparse"], inputs["mask"])]
        inputs["fill"] = np.stack(fills)[:, None]
        for i, result in zip(members, net(inputs)):
            results[i] = result
    completed = []
    for frame, result, (_, _, dropped) in zip(frames, results, prepared):
        shape = frame.rgb.shape[:2]
        dense = from_net(result[0], *shape, info.max_depth)
        error = from_net(result[1], *shape, info.max_depth, MIN_EXPECTED_ERROR_M) if len(result) > 1 else None
        if keep_sparse:
            dense = np.where(frame.sparse > 0, frame.sparse, dense)
            if error is not None:
                error = np.where(frame.sparse > 0, np.float32(MIN_EXPECTED_ERROR_M), error)
        completed.append((dense, error, dropped))
    return completed


def guard_fill(prefill: str) -> str:
    """The fill a guarded frame falls back to: the net's own, without the mask (IP-Basic for a net without one)."""
    return {"none": "ipbasic", "nearest_masked": "nearest", "ipbasic_masked": "ipbasic"}.get(prefill, prefill)


def complete_guarded(
    net: DepthNet,
    frames: list[Frame],
    guard: Guard,
    size: str = "native",
    masks: Callable[[list[np.ndarray]], list[np.ndarray]] | None = None,
    keep_sparse: bool = False,
) -> list[tuple[np.ndarray, np.ndarray | None, int, Verdict]]:
    """complete_with_error, each frame checked by `guard` (pipeline/guard.py), and the check's verdict.

    The net completes each frame a second time without its held-out samples, the fill (guard_fill) too;
    a frame whose held-out samples the net predicts worse than the fill by more than `guard.margin` gets
    the fill made from every sample, and (for a confidence net) the fill's held-out MAE as its expected
    error everywhere: the only error figure measured for it.
    """
    max_depth, kind = net.info.max_depth, guard_fill(net.prefill)
    masks_once = None
    if masks is not None:  # the trial frames share the full frames' RGB: the segmenter runs once for both passes
        made: list = []

        def masks_once(images: list[np.ndarray]) -> list[np.ndarray]:
            if not made:
                made.append(masks(images))
            return made[0]

    full = complete_with_error(net, frames, size, masks_once, keep_sparse)
    samples = [drop_far(frame.sparse, max_depth)[0] for frame in frames]
    held = [holdout(sparse, guard, frame.name) for frame, sparse in zip(frames, samples)]
    trials = [Frame(f.name, f.rgb, np.where(h, np.float32(0), s)) for f, h, s in zip(frames, held, samples)]
    tried = complete_with_error(net, trials, size, masks_once)
    checked = []
    for (dense, error, dropped), (trial, _, _), sparse, held_out, less in zip(full, tried, samples, held, trials):
        verdict = judge(sparse, held_out, trial, prefill_frame(kind, less.sparse), guard)
        if not verdict.keep_net:
            dense = from_net(prefill_frame(kind, sparse), *sparse.shape, max_depth)
            if keep_sparse:
                dense = np.where(sparse > 0, sparse, dense)
            if error is not None:
                error = np.full_like(error, max(verdict.fill_mae, MIN_EXPECTED_ERROR_M))
        checked.append((dense, error, dropped, verdict))
    return checked


def frame_from_files(name: str, image: Path, sparse: Path) -> Frame:
    """Read one pair; MtDepthError naming the file if either is bad or their sizes differ."""
    rgb = read_image(image)
    depth = read_sparse(sparse)
    if depth.shape != rgb.shape[:2]:
        raise MtDepthError(
            f"{sparse}: size {depth.shape[1]}x{depth.shape[0]} differs from the image's "
            f"{rgb.shape[1]}x{rgb.shape[0]} ({image})"
        )
    return Frame(name, rgb, depth)
