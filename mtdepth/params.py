"""Typed parameters: `params.yaml` read into dataclasses whose defaults are the paper's Table 2.

An unknown key, a wrong type or an out-of-range value raises MtDepthError naming the key
(for example `params.yaml: sparse.keep_prob must be in (0, 1], got 1.5`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mtdepth.errors import MtDepthError

SCENES = ("Scene01", "Scene02", "Scene06", "Scene18", "Scene20")
CONDITIONS = ("clone", "fog", "morning", "overcast", "rain", "sunset")


@dataclass(frozen=True)
class DataParams:
    """Which frames of a Virtual KITTI 2 layout tree to use, and how to resize them."""

    root: str = "data/synth"
    scenes: tuple[str, ...] = ()  # empty: every scene found
    conditions: tuple[str, ...] = ()  # empty: every condition found
    camera: str = "Camera_0"
    first_frame: int = 0
    last_frame: int | None = None  # inclusive; None: to the end
    height: int = 256
    width: int = 512
    max_depth: float = 80.0  # metres; farther (and sky) becomes invalid


@dataclass(frozen=True)
class SynthParams:
    """The embedded synthetic dataset (same file layout as Virtual KITTI 2)."""

    out: str = "data/synth"
    seed: int = 0
    scenes: tuple[str, ...] = SCENES
    conditions: tuple[str, ...] = CONDITIONS
    frames: int = 10  # per scene and condition
    image_width: int = 1242
    image_height: int = 375


@dataclass(frozen=True)
class SparseParams:
    """Simulated LiDAR-like sparse depth."""

    keep_prob: float = 0.05


@dataclass(frozen=True)
class SegmenterParams:
    """The frozen YOLO11-seg used by stage one."""

    weights: str = "weights/yolo11n-seg-synth.pt"
    imgsz: int = 384  # the shipped segmenter's fitting size
    conf: float = 0.25
    iou: float = 0.7
    classes: tuple[int, ...] = ()  # empty: every class the model knows
    batch: int = 8
    device: str = "auto"  # auto: cuda:0 when present, else cpu


@dataclass(frozen=True)
class FitSegmenterParams:
    """Fitting a YOLO11n-seg on synthetic instance ground truth (the shipped default)."""

    data: str = "data/synth-fit"  # training tree (synthetic, its own seed)
    val_data: str = "data/synth-fit-val"  # validation tree, another seed
    out: str = "weights/yolo11n-seg-synth"
    model: str = "yolo11n-seg.yaml"  # from the definition; a .pt fine-tunes
    imgsz: int = 384
    epochs: int = 300  # upper bound; the wall-clock budget usually ends it first
    budget_minutes: float = 50.0
    batch: int = 16
    workers: int = 2


@dataclass(frozen=True)
class StoreParams:
    """The stage-one Zarr v3 store."""

    path: str = "data/store.zarr"
    mask_sources: tuple[str, ...] = ("yolo", "gt")
    split: str = "random"  # random (the paper's 80/20) or scene
    val_fraction: float = 0.2
    shard_frames: int = 64


@dataclass(frozen=True)
class ModelParams:
    """MT-Depth network sizes (Table 2) and the choices the paper leaves open."""

    unet_channels: tuple[int, ...] = (8, 16, 32, 64, 128)
    attention_dim: int = 32
    attention_size: tuple[int, int] = (16, 32)
    fusion_channels: int = 128
    head_channels: int = 64
    se_reduction: int = 16
    query: str = "mask"  # mask (the paper), mask_pos, mask_feat
    init_depth: float = 20.0  # metres an untrained absolute net predicts everywhere
    # Not the paper's (docs/results.md: the ablation that chose them); the paper as written:
    # prefill none, output absolute, keep_sparse false, loss.depth_error l2 (docs/results.md)
    prefill: str = "ipbasic"  # none (the paper), nearest, ipbasic, nearest_masked, ipbasic_masked
    output: str = "residual"  # absolute (the paper), residual (fill * exp(correction)) or additive (fill + metres)
    keep_sparse: bool = True  # write the measured samples back over the output


@dataclass(frozen=True)
class TrainParams:
    """Stage-two optimisation. Table 2: Adam, lr 1e-4, batch 4, 100 epochs (profiles/paper.yaml)."""

    model: str = "mtdepth"  # mtdepth or unet
    mask_source: str = "yolo"  # yolo, gt or none
    lr: float = 1e-3  # peak learning rate (Table 2: 1e-4 for ~400k steps)
    schedule: str = "cosine"  # cosine (after warm-up) or constant
    warmup_steps: int = 100
    min_lr_ratio: float = 0.05  # cosine ends at lr * min_lr_ratio
    weight_decay: float = 0.0
    grad_clip: float = 0.0  # max gradient norm; 0: off
    batch: int = 4  # per process
    accumulate: int = 1  # micro-batches per optimizer step
    epochs: int = 100
    precision: str = "auto"  # auto, fp32, bf16, fp16 (auto: bf16 on CPUs with bf16 units and on CUDA, else fp32)
    channels_last: str = "auto"  # auto (on with reduced precision), on, off
    compile: str = "auto"  # torch.compile: auto (on for runs of >= 1000 steps with a C compiler), on, off
    workers: int = 2
    device: str = "auto"  # auto: cuda:LOCAL_RANK when present, else cpu
    out: str = "runs/train"
    log_every: int = 10  # steps between progress-bar loss updates and finiteness checks


@dataclass(frozen=True)
class LossParams:
    """Multi-task loss weights (Table 2) and the per-pixel depth error."""

    w_init: float = 0.5
    w_obj: float = 3.0
    w_seg: float = 1.0
    depth_error: str = "l1_l2"  # l1, l2 (the paper), l1_l2 (their sum, as LRRU) or smooth_l1 (Huber, 1 m)


@dataclass(frozen=True)
class EvaluateParams:
    """`mtdepth evaluate`: frames scored, pixel groups, Figure-2 panels, classical baselines."""

    split: str = "val"  # val, train or all
    frames: int | None = None  # the first N frames of the split; None: all
    batch: int = 8
    workers: int = 2
    device: str = "auto"  # auto: cuda:0 when present, else cpu
    boundary_px: int = 3  # k: the boundary region is k pixels on both sides of instance edges
    distance_bins: tuple[float, ...] = (0.0, 20.0, 40.0, 80.0)  # bin edges, metres: (lo, hi]
    panel_frames: tuple[int, ...] = (0, 20, 40)  # positions among the evaluated frames
    panel_cmap: str = "turbo"  # one depth colour map for every panel
    panel_error_max: float = 5.0  # metres at the top of the absolute-error colour bar
    panel_dpi: int = 100
    ipbasic_max_depth: float = 100.0  # IP-Basic's inversion offset (the paper's 100 m)
    ipbasic_extrapolate: bool = True
    ipbasic_blur: str = "gaussian"  # gaussian or bilateral


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


# Value checks beyond the type: key -> (predicate, what it must be).
Check = tuple[typing.Callable[[typing.Any], bool], str]  # (predicate, what the value must be)


def _one_of(*choices: str) -> Check:
    """The value is one of `choices` ("'a', 'b' or 'c'")."""
    return (lambda v: v in choices, ", ".join(map(repr, choices[:-1])) + f" or {choices[-1]!r}")


def _at_least(low: int) -> Check:
    return (lambda v: v >= low, f">= {low}")


def _above(low: float, unit: str = "") -> Check:
    return (lambda v: v > low, f"> {low:g}" + (f" {unit}" if unit else ""))


_MULTIPLE_OF_32: Check = (lambda v: v > 0 and v % 32 == 0, "a positive multiple of 32")

_CHECKS: dict[str, Check] = {
    "data.height": _MULTIPLE_OF_32,
    "data.width": _MULTIPLE_OF_32,
    "data.max_depth": (lambda v: 0 < v <= 655.34, "in (0, 655.34] metres"),
    "data.first_frame": _at_least(0),
    "data.scenes": (lambda v: set(v) <= set(SCENES), f"a subset of {list(SCENES)}"),
    "data.conditions": (lambda v: all(c for c in v), "non-empty names"),
    "synth.frames": _at_least(1),
    "synth.scenes": (lambda v: len(v) > 0 and set(v) <= set(SCENES), f"a non-empty subset of {list(SCENES)}"),
    "synth.conditions": (lambda v: len(v) > 0 and set(v) <= set(CONDITIONS), f"a non-empty subset of {list(CONDITIONS)}"),
    "synth.image_width": _at_least(64),
    "synth.image_height": _at_least(32),
    "sparse.keep_prob": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "segmenter.imgsz": _MULTIPLE_OF_32,
    "segmenter.conf": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "segmenter.iou": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "segmenter.batch": _at_least(1),
    "fit_segmenter.imgsz": _MULTIPLE_OF_32,
    "fit_segmenter.epochs": _at_least(1),
    "fit_segmenter.budget_minutes": _above(0),
    "fit_segmenter.batch": _at_least(1),
    "store.mask_sources": (lambda v: set(v) <= {"yolo", "gt"}, "a subset of ['yolo', 'gt']"),
    "store.split": _one_of("random", "scene"),
    "store.val_fraction": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "store.shard_frames": _at_least(1),
    "model.unet_channels": (lambda v: len(v) >= 2 and all(c > 0 for c in v), "two or more positive ints"),
    "train.model": _one_of("mtdepth", "unet"),
    "train.mask_source": _one_of("yolo", "gt", "none"),
    "model.attention_dim": _at_least(1),
    "model.attention_size": (lambda v: min(v) >= 1, "two positive ints"),
    "model.fusion_channels": _at_least(1),
    "model.head_channels": _at_least(1),
    "model.se_reduction": _at_least(1),
    "model.query": _one_of("mask", "mask_pos", "mask_feat"),
    "model.init_depth": _above(0, "metres"),
    "model.prefill": _one_of("none", "nearest", "ipbasic", "nearest_masked", "ipbasic_masked"),
    "model.output": _one_of("absolute", "residual", "additive"),
    "train.lr": _above(0),
    "train.schedule": _one_of("cosine", "constant"),
    "train.warmup_steps": _at_least(0),
    "train.min_lr_ratio": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "train.weight_decay": _at_least(0),
    "train.grad_clip": (lambda v: v >= 0, ">= 0 (0: off)"),
    "train.batch": _at_least(1),
    "train.accumulate": _at_least(1),
    "train.epochs": _at_least(1),
    "train.precision": _one_of("auto", "fp32", "bf16", "fp16"),
    "train.channels_last": _one_of("auto", "on", "off"),
    "train.compile": _one_of("auto", "on", "off"),
    "train.workers": _at_least(0),
    "train.log_every": _at_least(1),
    "loss.w_init": _at_least(0),
    "loss.w_obj": _at_least(0),
    "loss.w_seg": _at_least(0),
    "loss.depth_error": _one_of("l1", "l2", "l1_l2", "smooth_l1"),
    "evaluate.split": _one_of("val", "train", "all"),
    "evaluate.frames": _at_least(1),
    "evaluate.batch": _at_least(1),
    "evaluate.workers": _at_least(0),
    "evaluate.boundary_px": (lambda v: v >= 1, ">= 1 pixel"),
    "evaluate.distance_bins": (lambda v: len(v) >= 2 and v[0] >= 0 and all(a < b for a, b in zip(v, v[1:])),
                               "two or more increasing edges >= 0 metres"),
    "evaluate.panel_frames": (lambda v: all(i >= 0 for i in v), "positions >= 0"),
    "evaluate.panel_error_max": _above(0, "metres"),
    "evaluate.panel_dpi": _at_least(10),
    "evaluate.ipbasic_max_depth": _above(0, "metres"),
    "evaluate.ipbasic_blur": _one_of("gaussian", "bilateral"),
}


def _coerce(value: typing.Any, hint: typing.Any, key: str, where: str) -> typing.Any:
    """Return `value` as type `hint`, or raise MtDepthError naming `key`."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, key, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise MtDepthError(f"{where}: {key} must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]", where) for i, v in enumerate(value))
        if len(value) != len(args):
            raise MtDepthError(f"{where}: {key} must have {len(args)} items, got {value!r}")
        return tuple(_coerce(v, a, f"{key}[{i}]", where) for i, (v, a) in enumerate(zip(value, args)))
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str, bool) and type(value) is hint:
        return value
    if hint is str and isinstance(value, bool):  # YAML 1.1 reads an unquoted on/off (as `dvc exp run -S` writes it)
        return "on" if value else "off"
    raise MtDepthError(f"{where}: {key} must be {getattr(hint, '__name__', hint)}, got {value!r}")


def _build(cls: type, raw: typing.Any, prefix: str, where: str) -> typing.Any:
    """Build dataclass `cls` from mapping `raw`, checking every key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise MtDepthError(f"{where}: {prefix.rstrip('.') or 'top level'} must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            full = f"{prefix}{key}"
            raise MtDepthError(f"{where}: unknown key {full!r} (known: {', '.join(sorted(names))})")
    values = {}
    for f in dataclasses.fields(cls):
        if f.name not in raw:
            continue
        key = f"{prefix}{f.name}"
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            values[f.name] = _build(hint, raw[f.name], f"{key}.", where)
            continue
        value = _coerce(raw[f.name], hint, key, where)
        check = _CHECKS.get(key)
        if check is not None and value is not None and not check[0](value):
            raise MtDepthError(f"{where}: {key} must be {check[1]}, got {raw[f.name]!r}")
        values[f.name] = value
    return cls(**values)


def params_from_dict(raw: typing.Any, where: str = "params") -> Params:
    """Build Params from a nested mapping; `where` names the source in error messages."""
    return _build(Params, raw, "", where)


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
