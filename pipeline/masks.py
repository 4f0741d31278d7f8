"""Instance masks: the paper's element-wise max merge (eq. 1) and instance maps as YOLO polygons."""

from __future__ import annotations

import numpy as np

# Contours shorter than this (in pixels of the image) are dropped from YOLO labels: a
# 2-point "polygon" is no region, and ultralytics needs at least 3 points.
MIN_POLYGON_POINTS = 3


def merge_masks(masks: np.ndarray, height: int, width: int) -> np.ndarray:
    """Merge instance masks (n, H, W) in [0, 1] into one uint8 0/1 foreground map (eq. 1).

    With no instance the map is all background.
    """
    if masks.shape[0] == 0:
        return np.zeros((height, width), dtype=np.uint8)
    if masks.shape[1:] != (height, width):
        raise ValueError(f"masks are {masks.shape[1:]}, expected {(height, width)}")
    return (masks.max(axis=0) > 0.5).astype(np.uint8)


def foreground(instance_ids: np.ndarray) -> np.ndarray:
    """Ground-truth merged foreground: every instance pixel (id > 0) as uint8 0/1."""
    return (instance_ids > 0).astype(np.uint8)


def instance_polygons(instance_ids: np.ndarray) -> dict[int, list[np.ndarray]]:
    """Outer contours of each instance id as (k, 2) float arrays of (x, y) pixel corners.

    An instance split by an occluder yields several polygons. Uses OpenCV's border following
    (the same routine ultralytics' own mask converter uses).
    """
    import cv2

    polygons: dict[int, list[np.ndarray]] = {}
    for instance_id in np.unique(instance_ids):
        if instance_id == 0:
            continue
        binary = (instance_ids == instance_id).astype(np.uint8)
        contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        kept = [c.reshape(-1, 2).astype(np.float64) for c in contours if len(c) >= MIN_POLYGON_POINTS]
        if kept:
            polygons[int(instance_id)] = kept
    return polygons


def instance_classes(instance_ids: np.ndarray, class_of_pixel: np.ndarray) -> dict[int, int]:
    """Majority class index of each instance id, from a per-pixel class index map."""
    classes = {}
    for instance_id in np.unique(instance_ids):
        if instance_id == 0:
            continue
        values = class_of_pixel[instance_ids == instance_id]
        classes[int(instance_id)] = int(np.bincount(values).argmax())
    return classes


def foreground_iou(predicted: np.ndarray, truth: np.ndarray) -> tuple[int, int]:
    """(intersection, union) pixel counts of two 0/1 maps; sum these over frames for a dataset IoU."""
    p = predicted.astype(bool)
    t = truth.astype(bool)
    return int(np.count_nonzero(p & t)), int(np.count_nonzero(p | t))
