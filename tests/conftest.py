"""Session-scoped tiny inputs shared by the test files (built once per run, then read-only).

    synth_tree(frames=3)      a 2-scene x 2-condition synthetic tree (Virtual KITTI 2 layout)
    tiny_store(name, **secs)  (params file, store) of that tree, gt masks, 64x128; one per distinct name
    tiny_yolo                 an untrained yolo11n-seg .pt
    tiny_checkpoint           an untrained tiny MT-Depth checkpoint, trained size 32x64

A test that changes a file of one of these copies it first (shutil.copytree).
Heavy files carry `pytestmark = pytest.mark.slow`; `make test-fast` leaves them out.
"""

from __future__ import annotations

import pytest

from factories import build_tiny_store, make_checkpoint, untrained_yolo, write_synth


@pytest.fixture(scope="session")
def synth_tree(tmp_path_factory):
    """Factory: the shared synthetic tree with `frames` frames per scene and condition."""
    trees = {}

    def make(frames: int = 3):
        if frames not in trees:
            trees[frames] = write_synth(tmp_path_factory.mktemp("synth") / "data", frames=frames)
        return trees[frames]

    return make


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory, synth_tree):
    """Factory: (params file, store) built once per `name` from the 3-frame tree; `sections` extend params."""
    stores = {}

    def make(name: str, **sections):
        if name not in stores:
            stores[name] = build_tiny_store(tmp_path_factory.mktemp(name), synth_tree(), **sections)
        return stores[name]

    return make


@pytest.fixture(scope="session")
def tiny_yolo(tmp_path_factory):
    return untrained_yolo(tmp_path_factory.mktemp("yolo") / "seg.pt")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")
