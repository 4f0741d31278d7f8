"""Fitting a YOLO11-seg on a dataset's own instance ground truth, then freezing it.

The embedded default has no pretrained weights in reach, so the project fits one
segmenter on synthetic instance masks, exports it (`.pt` + `.onnx`) and ships it frozen;
stage one then uses it exactly as it would use `yolo11n-seg.pt` on real data.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mtdepth.errors import MtDepthError
from mtdepth.pipeline import vkitti2_format as fmt
from mtdepth.pipeline.masks import foreground_iou, instance_classes, instance_polygons
from mtdepth.pipeline.device import resolve_device
from mtdepth.pipeline.files import atomic_write
from mtdepth.pipeline.segmenter import Segmenter, SegmenterConfig, import_ultralytics
from mtdepth.pipeline.vkitti2 import FrameRef, load_frame

# YOLO classes of the fitted segmenter, and the dataset classes each one gathers.
YOLO_CLASSES: dict[str, tuple[str, ...]] = {
    "vehicle": ("Car", "Van", "Truck"),
    "pedestrian": ("Pedestrian",),
}
JPEG_QUALITY = 95
SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class FitConfig:
    """What a fit needs beyond the frames (mirrors the `fit_segmenter` params section)."""

    model: str
    imgsz: int
    epochs: int
    budget_minutes: float
    batch: int
    workers: int
    seed: int
    device: str = "auto"
    height: int = 256
    width: int = 512
    max_depth: float = 80.0
    conf: float = 0.25  # confidence used for the merged-foreground IoU, as stage one's default


def _class_index_map(class_path: Path | None, ids_shape: tuple[int, int]) -> np.ndarray:
    """Per-pixel YOLO class index (0 for anything unlisted) from a classgt PNG, if there is one."""
    index = np.zeros(ids_shape, dtype=np.int64)
    if class_path is None:
        return index
    colours = dict(fmt.CLASS_COLORS, Pedestrian=fmt.PEDESTRIAN_COLOR)
    class_rgb = fmt.read_class_rgb(class_path)
    for yolo_index, names in enumerate(YOLO_CLASSES.values()):
        index[fmt.class_mask(class_rgb, colours, names)] = yolo_index
    return index


def label_lines(instance_ids: np.ndarray, class_index: np.ndarray) -> list[str]:
    """Ultralytics segment label lines (`cls x1 y1 x2 y2 ...`, normalised) for one instance map."""
    height, width = instance_ids.shape
    classes = instance_classes(instance_ids, class_index)
    lines = []
    for instance_id, polygons in instance_polygons(instance_ids).items():
        for polygon in polygons:
            normalised = (polygon + 0.5) / (width, height)  # pixel centres, as ultralytics' converter
            coords = " ".join(f"{v:.6f}" for v in np.clip(normalised, 0.0, 1.0).reshape(-1))
            lines.append(f"{classes[instance_id]} {coords}")
    return lines


def write_yolo_split(
    frames: Sequence[FrameRef],
    images_dir: Path,
    labels_dir: Path,
    config: FitConfig,
    progress: Callable[[Sequence], Sequence] = lambda x: x,
) -> int:
    """Write resized RGB (the frames stage one will see) and segment labels; return instances written."""
    images_dir.mkdir(parents=True, exist_ok=True)
    labels_dir.mkdir(parents=True, exist_ok=True)
    instances = 0
    for ref in progress(frames):
        if ref.instance is None:
            raise MtDepthError(f"{ref.key}: fitting needs instance segmentation PNGs, none found for this frame")
        frame = load_frame(ref, config.height, config.width, config.max_depth)
        # Class of each instance from the full-resolution files, polygons at the model resolution.
        full_ids = fmt.read_instances(ref.instance)
        classes = instance_classes(full_ids, _class_index_map(ref.classgt, full_ids.shape))
        small_class_index = np.zeros(frame.instances.shape, dtype=np.int64)
        for instance_id, yolo_class in classes.items():
            small_class_index[frame.instances == instance_id] = yolo_class
        name = ref.key.replace("/", "_")
        Image.fromarray(frame.rgb).save(images_dir / f"{name}.jpg", quality=JPEG_QUALITY)
        lines = label_lines(frame.instances, small_class_index)
        (labels_dir / f"{name}.txt").write_text("".join(line + "\n" for line in lines))
        instances += len(lines)
    return instances


def write_data_yaml(path: Path, root: Path) -> None:
    """The ultralytics dataset description for `root/images/{train,val}`."""
    names = "\n".join(f"  {i}: {name}" for i, name in enumerate(YOLO_CLASSES))
    path.write_text(f"path: {root.resolve()}\ntrain: images/train\nval: images/val\nnames:\n{names}\n")


def merged_foreground_iou(weights: Path, frames: Sequence[FrameRef], config: FitConfig) -> float:
    """Dataset IoU (summed intersections / summed unions) of merged YOLO vs GT foreground maps."""
    segmenter = Segmenter(
        SegmenterConfig(
            weights=str(weights), imgsz=config.imgsz, conf=config.conf, batch=config.batch, device=config.device
        )
    )
    intersection = union = 0
    truths: deque[np.ndarray] = deque()  # GT maps of frames handed to the segmenter, in order

    def images():
        for ref in frames:
            frame = load_frame(ref, config.height, config.width, config.max_depth)
            truths.append(frame.gt_mask)
            yield frame.rgb

    for predicted in segmenter.predict(images()):
        i, u = foreground_iou(predicted, truths.popleft())
        intersection += i
        union += u
    return intersection / union if union else 1.0


def fit(
    train_frames: Sequence[FrameRef],
    val_frames: Sequence[FrameRef],
    out: Path,
    work_dir: Path,
    config: FitConfig,
    progress: Callable[[Sequence], Sequence] = lambda x: x,
    context: dict | None = None,
) -> dict:
    """Fit, freeze and export; write `out.pt`, `out.onnx`, `out.json`; return the report.

    `work_dir` holds the YOLO dataset and ultralytics' run; outputs are written beside
    `out` under temporary names and renamed into place last. `context` (the command,
    its params, the data roots) is recorded in the report as given.
    """
    ultralytics = import_ultralytics()
    from ultralytics import YOLO

    started = time.time()
    data_root = work_dir / "yolo-data"
    if data_root.exists():
        shutil.rmtree(data_root)
    train_instances = write_yolo_split(
        train_frames, data_root / "images/train", data_root / "labels/train", config, progress
    )
    val_instances = write_yolo_split(val_frames, data_root / "images/val", data_root / "labels/val", config, progress)
    data_yaml = data_root / "data.yaml"
    write_data_yaml(data_yaml, data_root)

    device = resolve_device(config.device)
    try:
        model = YOLO(config.model, task="segment")
    except Exception as exc:  # a bad model path or definition
        raise MtDepthError(
            f"{config.model}: cannot build or load the model to fit ({type(exc).__name__}: {exc})"
        ) from None
    run_dir = work_dir / "run"
    model.train(
        data=str(data_yaml),
        epochs=config.epochs,
        time=config.budget_minutes / 60.0,
        imgsz=config.imgsz,
        batch=config.batch,
        workers=config.workers,
        device=device,
        seed=config.seed,
        deterministic=True,
        project=str(run_dir.parent.resolve()),
        name=run_dir.name,
        exist_ok=True,
        plots=False,
        verbose=False,
        amp=device.startswith("cuda"),
        cache="ram",
    )
    best = run_dir / "weights" / "best.pt"
    if not best.exists():
        raise MtDepthError(f"{best}: ultralytics finished without writing weights")
    trained_epochs = _epochs_run(run_dir / "results.csv")
    fit_seconds = time.time() - started

    metrics = YOLO(str(best), task="segment").val(
        data=str(data_yaml),
        split="val",
        imgsz=config.imgsz,
        batch=config.batch,
        device=device,
        plots=False,
        verbose=False,
    )
    onnx_path = Path(
        YOLO(str(best), task="segment").export(
            format="onnx", dynamic=True, imgsz=config.imgsz, simplify=True, device="cpu"
        )
    )
    iou = merged_foreground_iou(best, val_frames, config)

    out.parent.mkdir(parents=True, exist_ok=True)
    start_report = Path(config.model).with_suffix(".json")
    report = {
        **(context or {}),
        "start_model_report": json.loads(start_report.read_text()) if start_report.is_file() else None,
        "weights": out.with_suffix(".pt").name,
        "onnx": out.with_suffix(".onnx").name,
        "classes": {i: name for i, name in enumerate(YOLO_CLASSES)},
        "start_model": config.model,
        "imgsz": config.imgsz,
        "batch": config.batch,
        "seed": config.seed,
        "device": device,
        "ultralytics": ultralytics.__version__,
        "budget_minutes": config.budget_minutes,
        "epochs_run": trained_epochs,
        "fit_seconds": round(fit_seconds, 1),
        "train_frames": len(train_frames),
        "train_instances": train_instances,
        "val_frames": len(val_frames),
        "val_instances": val_instances,
        "mask_map50": round(float(metrics.seg.map50), 4),
        "mask_map50_95": round(float(metrics.seg.map), 4),
        "merged_foreground_iou": round(iou, 4),
        "iou_conf": config.conf,
        "resolution": [config.height, config.width],
    }
    _install(best, out.with_suffix(".pt"))
    _install(onnx_path, out.with_suffix(".onnx"))
    atomic_write(out.with_suffix(".json"), lambda tmp: tmp.write_text(json.dumps(report, indent=2) + "\n"))
    return report


def _install(source: Path, target: Path) -> None:
    """Copy `source` to `target`, atomically."""
    atomic_write(target, lambda tmp: shutil.copyfile(source, tmp))


def _epochs_run(results_csv: Path) -> int:
    """Number of epochs ultralytics logged."""
    if not results_csv.exists():
        return 0
    return max(0, len(results_csv.read_text().strip().splitlines()) - 1)
