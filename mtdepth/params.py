"""Typed parameters: `params.yaml` read into dataclasses whose defaults are the paper's Table 2.

Every fact about a field is written once, on the field:
    its type              `int`, `float`, `str`, `tuple[int, ...]`, `X | None`
    its choices           a `Literal` alias below (`Precision`); click options and pipeline constants
                          take theirs from the same alias with `choices(Precision)`
    its range or rule     `Annotated[float, Range(0, 1, low_open=True)]`, `Annotated[int, Multiple(32)]`,
                          or `Rule(predicate, "what it must be")` for the odd ones
The rules, and the checker that builds a dataclass by them (`build`), are mtdepth/rules.py's: each value is
converted to its type, then its choices and constraints are checked. An unknown
key, a wrong type or a value out of range raises MtDepthError naming the key (for example
`params.yaml: sparse.keep_prob must be in (0, 1], got 1.5`). A tuple of a Literal must be a subset
of its choices (`NonEmpty()` adds "non-empty").
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import yaml

from mtdepth.errors import MtDepthError
from mtdepth.rules import Multiple, NonEmpty, Range, Rule, build, choices

# The choice sets, each written once.
Scene = Literal["Scene01", "Scene02", "Scene06", "Scene18", "Scene20"]
Condition = Literal["clone", "fog", "morning", "overcast", "rain", "sunset"]
StoreMask = Literal["yolo", "gt"]  # masks stage one writes
MaskSource = Literal["yolo", "gt", "none"]  # the mask a depth net reads
Model = Literal["mtdepth", "unet"]
Query = Literal["mask", "mask_pos", "mask_feat"]
Prefill = Literal["none", "nearest", "ipbasic", "nearest_masked", "ipbasic_masked"]  # the fill a net completes
Output = Literal["absolute", "residual", "additive"]  # what a net's last layer predicts
StoreSplit = Literal["random", "scene"]
Split = Literal["train", "val", "all"]  # frames of a store
Precision = Literal["auto", "fp32", "bf16", "fp16"]
Switch = Literal["auto", "on", "off"]
Schedule = Literal["cosine", "constant"]
DepthError = Literal["l1", "l2", "l1_l2", "smooth_l1"]
Baseline = Literal["nearest", "ipbasic"]
Blur = Literal["gaussian", "bilateral"]
Pattern = Literal["uniform", "keypoints", "lidar", "mixed"]  # sparse samples stage one draws


SCENES = choices(Scene)
CONDITIONS = choices(Condition)


Size32 = Annotated[int, Multiple(32)]
AtLeast0 = Annotated[int, Range(0)]
AtLeast1 = Annotated[int, Range(1)]
Positive = Annotated[float, Range(0, low_open=True)]
PositiveMetres = Annotated[float, Range(0, low_open=True, unit="metres")]
Weight = Annotated[float, Range(0)]
Fraction = Annotated[float, Range(0, 1)]


@dataclass(frozen=True)
class DataParams:
    """Which frames of a Virtual KITTI 2 layout tree to use, and how to resize them."""

    root: str = "data/synth"
    scenes: tuple[Scene, ...] = ()  # empty: every scene found
    conditions: Annotated[tuple[str, ...], Rule(lambda v: all(c for c in v), "non-empty names")] = ()  # empty: all
    camera: str = "Camera_0"
    first_frame: AtLeast0 = 0
    last_frame: int | None = None  # inclusive; None: to the end
    height: Size32 = 256
    width: Size32 = 512
    max_depth: Annotated[float, Range(0, 655.34, low_open=True, unit="metres")] = (
        80.0  # metres; farther (and sky) becomes invalid
    )


@dataclass(frozen=True)
class SynthParams:
    """The embedded synthetic dataset (same file layout as Virtual KITTI 2)."""

    out: str = "data/synth"
    seed: int = 0
    scenes: Annotated[tuple[Scene, ...], NonEmpty()] = SCENES
    conditions: Annotated[tuple[Condition, ...], NonEmpty()] = CONDITIONS
    frames: AtLeast1 = 10  # per scene and condition
    image_width: Annotated[int, Range(64)] = 1242
    image_height: Annotated[int, Range(32)] = 375


@dataclass(frozen=True)
class SparseParams:
    """Simulated sparse depth: which pattern, and each pattern's settings (docs/lidar.md)."""

    pattern: Pattern = "uniform"  # mixed: one of uniform, keypoints, lidar drawn per frame
    keep_prob: Annotated[float, Range(0, 1, low_open=True)] = 0.05  # uniform: probability of keeping a valid pixel
    keypoints: AtLeast1 = 4000  # keypoints: at most this many ORB corners of the full-size image
    lidar_beams: AtLeast1 = 64  # lidar: KITTI's Velodyne HDL-64E
    lidar_elevation: Annotated[
        tuple[float, float],
        Rule(lambda v: 90 >= v[0] > v[1] >= -90, "[top, bottom] degrees with 90 >= top > bottom >= -90"),
    ] = (2.0, -24.9)  # degrees of the top and the bottom beam
    lidar_azimuth_step: Annotated[float, Range(0, 10, low_open=True, unit="degrees")] = 0.17  # HDL-64E at 10 Hz
    lidar_offset: tuple[float, float, float] = (0.0, -0.08, -0.27)  # metres, sensor in camera axes (x, y down, z)
    lidar_noise: Annotated[float, Range(0, 10, unit="metres")] = 0.02  # standard deviation of the range
    lidar_lines: Annotated[
        tuple[int, ...], Rule(lambda v: len(v) > 0 and all(n >= 1 for n in v), "a non-empty list of beam counts >= 1")
    ] = (64,)  # one drawn per frame
    lidar_fill_gap: Annotated[float, Range(0, 45, unit="degrees")] = 3.0  # widest hole behind an edge seen past
    mixed: Annotated[
        tuple[float, float, float],
        Rule(lambda v: min(v) >= 0 and sum(v) > 0, "three weights >= 0 (uniform, keypoints, lidar), not all 0"),
    ] = (0.5, 0.25, 0.25)  # weights of uniform, keypoints, lidar (OMNI-DC's mix)


@dataclass(frozen=True)
class SegmenterParams:
    """The frozen YOLO11-seg used by stage one."""

    weights: str = "weights/yolo11n-seg-synth.pt"
    imgsz: Size32 = 384  # the shipped segmenter's fitting size
    conf: Fraction = 0.25
    iou: Fraction = 0.7
    classes: tuple[int, ...] = ()  # empty: every class the model knows
    batch: AtLeast1 = 8
    device: str = "auto"  # auto: cuda:0 when present, else cpu


@dataclass(frozen=True)
class FitSegmenterParams:
    """Fitting a YOLO11n-seg on synthetic instance ground truth (the shipped default)."""

    data: str = "data/synth-fit"  # training tree (synthetic, its own seed)
    val_data: str = "data/synth-fit-val"  # validation tree, another seed
    out: str = "weights/yolo11n-seg-synth"
    model: str = "yolo11n-seg.yaml"  # from the definition; a .pt fine-tunes
    imgsz: Size32 = 384
    epochs: AtLeast1 = 300  # upper bound; the wall-clock budget usually ends it first
    budget_minutes: Positive = 50.0
    batch: AtLeast1 = 16
    workers: int = 2


@dataclass(frozen=True)
class StoreParams:
    """The stage-one Zarr v3 store."""

    path: str = "data/store.zarr"
    mask_sources: tuple[StoreMask, ...] = ("yolo", "gt")
    split: StoreSplit = "random"  # random (the paper's 80/20) or scene
    val_fraction: Annotated[float, Range(0, 1, high_open=True)] = 0.2
    shard_frames: AtLeast1 = 64


@dataclass(frozen=True)
class ModelParams:
    """MT-Depth network sizes (Table 2) and the choices the paper leaves open."""

    unet_channels: Annotated[
        tuple[int, ...], Rule(lambda v: len(v) >= 2 and all(c > 0 for c in v), "two or more positive ints")
    ] = (16, 32, 64, 128, 256)  # twice Table 2's (8, 16, 32, 64, 128): docs/results.md, "Capacity and step size"
    attention_dim: AtLeast1 = 32
    attention_size: Annotated[tuple[int, int], Rule(lambda v: min(v) >= 1, "two positive ints")] = (16, 32)
    fusion_channels: AtLeast1 = 128
    head_channels: AtLeast1 = 64
    se_reduction: AtLeast1 = 16
    query: Query = "mask"  # mask (the paper), mask_pos, mask_feat
    mask_input: bool = False  # MT-Depth: the mask also a full-resolution U-Net input channel (not the paper's)
    init_depth: PositiveMetres = 20.0  # metres an untrained absolute net predicts everywhere
    # Not the paper's (docs/results.md: the ablation that chose them); the paper as written:
    # prefill none, output absolute, keep_sparse false, loss.depth_error l2 (docs/results.md)
    prefill: Prefill = "ipbasic"  # none (the paper); *_masked: each side of the mask filled from its own samples
    output: Output = "residual"  # absolute (the paper), residual (fill * exp(correction)) or additive (fill + metres)
    keep_sparse: bool = True  # write the measured samples back over the output
    confidence: bool = True  # also predict s = log of a Laplace scale (metres) around D_final (docs/confidence.md)


@dataclass(frozen=True)
class TrainParams:
    """Stage-two optimisation. Table 2: Adam, lr 1e-4, batch 4, 100 epochs (profiles/paper.yaml)."""

    model: Model = "mtdepth"
    mask_source: MaskSource = "yolo"
    lr: Positive = 4e-3  # peak learning rate (Table 2: 1e-4 for ~400k steps; docs/training.md, "The schedule")
    schedule: Schedule = "cosine"  # cosine (after warm-up) or constant
    warmup_steps: AtLeast0 = 100
    min_lr_ratio: Fraction = 0.05  # cosine ends at lr * min_lr_ratio
    weight_decay: Weight = 0.0
    grad_clip: Annotated[float, Range(0, note="(0: off)")] = 0.0  # max gradient norm
    batch: AtLeast1 = 4  # per process
    accumulate: AtLeast1 = 1  # micro-batches per optimizer step
    flip: Fraction = 0.0  # probability of mirroring a training frame left-right (Table 2: none)
    epochs: AtLeast1 = 100
    precision: Precision = "auto"  # auto, fp32, bf16, fp16 (auto: bf16 on CPUs with bf16 units and on CUDA, else fp32)
    channels_last: Switch = "auto"  # auto (on with reduced precision), on, off
    compile: Switch = "auto"  # torch.compile: auto (on for runs of >= 1000 steps with a C compiler), on, off
    workers: AtLeast0 = 2
    device: str = "auto"  # auto: cuda:LOCAL_RANK when present, else cpu
    out: str = "runs/train"
    log_every: AtLeast1 = 10  # steps between progress-bar loss updates and finiteness checks


@dataclass(frozen=True)
class LossParams:
    """Multi-task loss weights (Table 2) and the per-pixel depth error."""

    w_init: Weight = 0.5
    w_obj: Weight = 3.0
    w_seg: Weight = 1.0
    depth_error: DepthError = "l1_l2"  # l2 (the paper), l1_l2 (their sum, as LRRU), smooth_l1 (Huber, 1 m)
    w_conf: Weight = 1.0  # the Laplace NLL of the confidence output (model.confidence only; docs/confidence.md)


@dataclass(frozen=True)
class EvaluateParams:
    """`mtdepth evaluate`: frames scored, pixel groups, Figure-2 panels, classical baselines."""

    split: Split = "val"
    frames: AtLeast1 | None = None  # the first N frames of the split; None: all
    batch: AtLeast1 = 8
    workers: AtLeast0 = 2
    device: str = "auto"  # auto: cuda:0 when present, else cpu
    boundary_px: Annotated[int, Range(1, unit="pixel")] = (
        3  # k: the boundary region is k pixels on both sides of instance edges
    )
    distance_bins: Annotated[
        tuple[float, ...],
        Rule(
            lambda v: len(v) >= 2 and v[0] >= 0 and all(a < b for a, b in zip(v, v[1:])),
            "two or more increasing edges >= 0 metres",
        ),
    ] = (0.0, 20.0, 40.0, 80.0)  # bin edges, metres: (lo, hi]
    panel_frames: Annotated[tuple[int, ...], Rule(lambda v: all(i >= 0 for i in v), "positions >= 0")] = (
        0,
        20,
        40,
    )  # positions among the evaluated frames
    panel_cmap: str = "turbo"  # one depth colour map for every panel
    panel_error_max: PositiveMetres = 5.0  # metres at the top of the absolute-error colour bar
    panel_dpi: Annotated[int, Range(10)] = 100
    ipbasic_max_depth: PositiveMetres = 100.0  # IP-Basic's inversion offset (the paper's 100 m)
    ipbasic_extrapolate: bool = True
    ipbasic_blur: Blur = "gaussian"
    drop_see_through: bool = False  # drop sparse samples deeper than their window's nearest by more than the margin
    see_through_window: Annotated[int, Rule(lambda v: v >= 3 and v % 2 == 1, "an odd number of pixels >= 3")] = (
        7  # pixels (KBNet, ScaffNet, Marigold-DC: 7x7)
    )
    see_through_margin: PositiveMetres = 1.5
    guard: bool = (
        True  # predict and evaluate --input: a frame keeps the net only if it beats the fill on held-out samples
    )
    guard_holdout: Annotated[float, Range(0, 1, low_open=True, high_open=True)] = 0.2  # the fraction held out
    guard_margin: Annotated[float, Range(1)] = 1.1  # tolerated factor: net's held-out MAE <= margin x the fill's
    spread_window: Annotated[int, Rule(lambda v: v >= 3 and v % 2 == 1, "an odd number of pixels >= 3")] = (
        21  # k: the spread baseline is the std of the sparse depths in the k x k window around a pixel
    )
    calibration_bins: Annotated[
        tuple[float, ...],
        Rule(
            lambda v: len(v) >= 2 and v[0] >= 0 and all(a < b for a, b in zip(v, v[1:])),
            "two or more increasing edges >= 0 metres",
        ),
    ] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, math.inf)  # predicted expected error, metres: bins [lo, hi)
    pooled_pixels: Annotated[int, Range(1, unit="pixels")] = (
        10000  # per frame: the random subsample of valid pixels the pooled sparsification curves use
    )
    sparsification_seed: int = 0  # the pooled subsample and the random order among tied uncertainties


@dataclass(frozen=True)
class Params:
    """Everything `params.yaml` holds."""

    seed: int = 0
    data: DataParams = field(default_factory=DataParams)
    synth: SynthParams = field(default_factory=SynthParams)
    sparse: SparseParams = field(default_factory=SparseParams)
    segmenter: SegmenterParams = field(default_factory=SegmenterParams)
    fit_segmenter: FitSegmenterParams = field(default_factory=FitSegmenterParams)
    store: StoreParams = field(default_factory=StoreParams)
    model: ModelParams = field(default_factory=ModelParams)
    train: TrainParams = field(default_factory=TrainParams)
    loss: LossParams = field(default_factory=LossParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)


def params_from_dict(raw: typing.Any, where: str = "params") -> Params:
    """Build Params from a nested mapping; `where` names the source in error messages."""
    params = build(Params, raw, "", where)
    sparse = params.sparse
    if max(sparse.lidar_lines) > sparse.lidar_beams:
        raise MtDepthError(
            f"{where}: sparse.lidar_lines must be at most sparse.lidar_beams ({sparse.lidar_beams}), "
            f"got {list(sparse.lidar_lines)}"
        )
    return params


def load_params(path: str | Path | None = "params.yaml") -> Params:
    """Read `path` (defaults when None or when the default file is absent)."""
    if path is None:
        return Params()
    path = Path(path)
    if not path.exists():
        if str(path) == "params.yaml":
            return Params()
        raise MtDepthError(f"{path}: params file not found")
    if path.is_dir():
        raise MtDepthError(f"{path}: is a folder, not a params file (--params wants a YAML file)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise MtDepthError(f"{path}: not a UTF-8 text file (byte {exc.start}); --params wants a YAML file") from None
    except OSError as exc:
        raise MtDepthError(f"{path}: cannot read the params file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MtDepthError(f"{path}: not valid YAML ({first})") from None
    return params_from_dict(raw, str(path))


def override(params: Params, section: str, **changes: typing.Any) -> Params:
    """Return params with fields of `section` replaced where a change is not None, re-checked."""
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        return params
    raw = to_dict(params)
    raw[section].update({k: list(v) if isinstance(v, tuple) else v for k, v in changes.items()})
    return params_from_dict(raw, "options")


def to_dict(params: typing.Any) -> typing.Any:
    """Plain nested dict (lists for tuples), for YAML, JSON and fingerprints."""
    if dataclasses.is_dataclass(params):
        return {f.name: to_dict(getattr(params, f.name)) for f in dataclasses.fields(params)}
    if isinstance(params, tuple):
        return [to_dict(v) for v in params]
    return params
