"""The frozen YOLO11-seg branch: merged foreground maps from an ultralytics segmentation model.

Loads `.pt` (torch; CUDA and half precision when present) or `.onnx` (onnxruntime) weights,
predicts in batches over a stream of frames, maps every instance mask back onto the
frame's own pixels (ultralytics' `retina_masks` undoes the letterbox: no shift, no
stretch) and merges them by element-wise max (paper eq. 1).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from mtdepth.errors import MtDepthError
from mtdepth.pipeline.device import resolve_device
from mtdepth.pipeline.masks import merge_masks

WEIGHT_SUFFIXES = (".pt", ".onnx")
SHIPPED_FOLDER = "weights"  # the shipped models: weights/ of the repository, the mtdepth.weights package installed
# Ultralytics integrations that would log, sync or reach the network during a run.
_INTEGRATIONS = ("clearml", "comet", "dvc", "hub", "mlflow", "raytune", "sync", "tensorboard", "wandb")


def import_ultralytics():
    """Import ultralytics offline: no auto-install, no downloads, no logging integrations.

    Integrations are switched off in this process only (the user's settings file is not
    rewritten). Returns the `ultralytics` module.
    """
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    import ultralytics
    from ultralytics.utils import SETTINGS

    for key in _INTEGRATIONS:
        if key in SETTINGS:
            dict.__setitem__(SETTINGS, key, False)
    return ultralytics


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _onnx_task(path: Path) -> str | None:
    """The `task` ultralytics writes into an exported ONNX model's metadata (None if absent)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises several types for a damaged file
        raise MtDepthError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from None
    metadata = {p.key: p.value for p in model.metadata_props}
    return metadata.get("task")


@dataclass(frozen=True)
class SegmenterConfig:
    """How the frozen model runs (mirrors the `segmenter` section of params.yaml)."""

    weights: str
    imgsz: int = 512
    conf: float = 0.25
    iou: float = 0.7
    classes: tuple[int, ...] = ()
    batch: int = 8
    device: str = "auto"


def shipped_weights(weights: str) -> Path | None:
    """Where a relative `weights/...` path (a checkpoint's record, the params default) lies among the shipped
    models when it is not below the working folder: the installed `mtdepth.weights` package, else the
    repository this code runs from. None when it is in neither."""
    relative = Path(weights)
    if relative.is_absolute() or not relative.parts or relative.parts[0] != SHIPPED_FOLDER:
        return None
    inside = Path(*relative.parts[1:])
    homes = []
    spec = importlib.util.find_spec(f"mtdepth.{SHIPPED_FOLDER}")
    if spec is not None and spec.submodule_search_locations:
        homes.extend(Path(home) for home in spec.submodule_search_locations)
    homes.append(Path(__file__).resolve().parent.parent / SHIPPED_FOLDER)  # a repository checkout
    return next((home / inside for home in homes if (home / inside).is_file()), None)


def check_weights_path(weights: str) -> Path:
    """The weights path (a shipped model found from any folder), or MtDepthError if it is missing or not .pt / .onnx."""
    path = Path(weights)
    if not path.is_file():
        path = shipped_weights(weights) or path
    if not path.is_file():
        raise MtDepthError(f"{path}: weights file not found (segmenter.weights / --weights)")
    if path.suffix.lower() not in WEIGHT_SUFFIXES:
        raise MtDepthError(f"{path}: weights must be a .pt or .onnx ultralytics model")
    return path


def config_from(section) -> SegmenterConfig:
    """The SegmenterConfig of a `segmenter` params section (it has the same fields)."""
    return SegmenterConfig(**{f.name: getattr(section, f.name) for f in dataclasses.fields(SegmenterConfig)})


def segmenter_settings(config: SegmenterConfig) -> dict:
    """The settings that decide a segmenter's masks, besides the weights' bytes (no file is read)."""
    return {
        "weights_name": Path(config.weights).name,
        "imgsz": config.imgsz,
        "conf": config.conf,
        "iou": config.iou,
        "classes": list(config.classes),
    }


def segmenter_provenance(config: SegmenterConfig, sha256: str | None = None) -> dict:
    """The inputs that decide a segmenter's masks, without loading the model (hashes the file)."""
    path = check_weights_path(config.weights)
    return {"weights_sha256": sha256 or sha256_file(path), **segmenter_settings(config)}


class Segmenter:
    """A frozen ultralytics segmentation model that turns RGB frames into merged foreground maps."""

    def __init__(self, config: SegmenterConfig):
        path = check_weights_path(config.weights)
        self.config = config
        self.path = path
        self.sha256 = sha256_file(path)
        self.device = resolve_device(config.device)
        self.half = self.device.startswith("cuda") and path.suffix.lower() == ".pt"
        self.model = self._load(path)
        self.names: dict[int, str] = dict(self.model.names)
        unknown = [c for c in config.classes if c not in self.names]
        if unknown:
            raise MtDepthError(f"segmenter.classes: {unknown} not among the model's classes {sorted(self.names)}")

    def _load(self, path: Path):
        """Load the model, refusing anything that is not an ultralytics segmentation model."""
        import_ultralytics()
        from ultralytics import YOLO

        if path.suffix.lower() == ".onnx":
            task = _onnx_task(path)
            if task != "segment":
                raise MtDepthError(f"{path}: ONNX model task is {task!r}, not a segmentation model")
        try:
            model = YOLO(str(path), task="segment")
        except Exception as exc:  # torch/ultralytics raise many types for a bad checkpoint
            reason = (str(exc).strip().splitlines() or [""])[0]
            raise MtDepthError(f"{path}: not a loadable ultralytics model ({type(exc).__name__}: {reason})") from None
        if model.task != "segment":
            raise MtDepthError(f"{path}: model task is {model.task!r}, not a segmentation model")
        return model

    def provenance(self) -> dict:
        """Exactly the inputs that decide the masks this segmenter produces."""
        return segmenter_provenance(self.config, self.sha256)

    def predict_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Merged uint8 0/1 foreground map for each RGB uint8 (H, W, 3) image, same size as the image."""
        if not images:
            return []
        bgr = [np.ascontiguousarray(image[..., ::-1]) for image in images]  # ultralytics takes OpenCV order
        results = self.model.predict(
            bgr,
            imgsz=self.config.imgsz,
            conf=self.config.conf,
            iou=self.config.iou,
            classes=list(self.config.classes) or None,
            device=self.device,
            half=self.half,
            retina_masks=True,  # masks at the original image's pixels, letterbox undone
            verbose=False,
        )
        merged = []
        for image, result in zip(images, results):
            height, width = image.shape[:2]
            if result.masks is None:
                merged.append(np.zeros((height, width), dtype=np.uint8))
            else:
                merged.append(merge_masks(result.masks.data.cpu().numpy(), height, width))
        return merged

    def predict(self, images: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Stream merged maps for a stream of images, `batch` at a time (never all in memory)."""
        iterator = iter(images)
        while batch := list(islice(iterator, self.config.batch)):
            yield from self.predict_batch(batch)
