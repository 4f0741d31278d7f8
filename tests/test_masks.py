"""Mask merging (paper eq. 1), GT foreground, polygons for YOLO labels, IoU counts."""

import numpy as np
import pytest

from mtdepth.pipeline.masks import foreground, foreground_iou, instance_classes, instance_polygons, merge_masks


def test_merge_is_elementwise_max_of_instances():
    masks = np.zeros((3, 4, 6), dtype=np.float32)
    masks[0, 0:2, 0:2] = 1
    masks[1, 1:3, 1:4] = 1
    masks[2, 3, 5] = 0.4  # below the 0.5 threshold of a binary mask
    merged = merge_masks(masks, 4, 6)
    assert merged.dtype == np.uint8
    expected = np.zeros((4, 6), dtype=np.uint8)
    expected[0:2, 0:2] = 1
    expected[1:3, 1:4] = 1
    assert np.array_equal(merged, expected)


def test_merge_of_no_instance_is_background_and_shape_is_checked():
    assert not merge_masks(np.zeros((0, 4, 6)), 4, 6).any()
    with pytest.raises(ValueError):
        merge_masks(np.zeros((1, 5, 6)), 4, 6)


def test_foreground_and_iou_counts():
    ids = np.array([[0, 1, 1], [0, 2, 0]], dtype=np.uint8)
    assert np.array_equal(foreground(ids), [[0, 1, 1], [0, 1, 0]])
    assert foreground_iou(foreground(ids), np.array([[1, 1, 0], [0, 1, 0]])) == (2, 4)


def test_polygons_outline_each_instance_and_split_occluded_ones():
    ids = np.zeros((20, 30), dtype=np.uint8)
    ids[2:8, 3:12] = 4
    ids[10:18, 5:9] = 7
    ids[10:18, 12:16] = 7  # one instance cut in two by an occluder
    polygons = instance_polygons(ids)
    assert set(polygons) == {4, 7} and len(polygons[4]) == 1 and len(polygons[7]) == 2
    xs, ys = polygons[4][0][:, 0], polygons[4][0][:, 1]
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (3, 11, 2, 7)


def test_instance_class_is_the_majority_class():
    ids = np.array([[1, 1, 1, 2]], dtype=np.uint8)
    classes = np.array([[0, 1, 1, 0]])
    assert instance_classes(ids, classes) == {1: 1, 2: 0}
