"""Scoring on a user's own labelled frames (a KITTI-layout folder with groundtruth/), one frame a batch.

    for batch in labelled_batches(discover_labelled(root)): ...   # the evaluator's batch dicts
    predict = net_predictor(load_net(path), segmenter)             # a checkpoint or an .onnx, at native size

The frames have no instance ground truth, so the object and boundary groups are empty; `all` and the
distance bins are scored as on a store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from mtdepth.errors import MtDepthError
from mtdepth.pipeline.inference import DepthNet, Frame, complete, frame_from_files
from mtdepth.pipeline.kitti_io import Labelled, read_depth_png


def labelled_batches(frames: list[Labelled]) -> Iterator[dict]:
    """The evaluator's batch of each frame in turn (rgb in [0, 1], sparse, valid, zero masks, depth, index, name)."""
    for index, item in enumerate(frames):
        frame = frame_from_files(item.pair.name, item.pair.image, item.pair.sparse)
        truth = read_depth_png(item.groundtruth)
        if truth.shape != frame.sparse.shape:
            raise MtDepthError(
                f"{item.groundtruth}: size {truth.shape[1]}x{truth.shape[0]} differs from the image's "
                f"{frame.rgb.shape[1]}x{frame.rgb.shape[0]} ({item.pair.image})"
            )
        sparse = torch.from_numpy(frame.sparse)[None, None]
        zeros = torch.zeros_like(sparse)
        rgb = torch.from_numpy(frame.rgb.transpose(2, 0, 1).copy())[None].float() / 255
        yield {
            "rgb": rgb,
            "sparse": sparse,
            "valid": (sparse > 0).float(),
            "mask": zeros,
            "gt_mask": zeros,
            "depth": torch.from_numpy(truth)[None, None],
            "index": torch.tensor([index]),
            "name": [frame.name],
        }


def net_predictor(
    net: DepthNet, masks: Callable[[list[np.ndarray]], list[np.ndarray]] | None
) -> Callable[[dict], dict]:
    """A batch -> {'final': dense} function running `net` at each frame's own size (as `mtdepth predict` does)."""

    def predict(batch: dict) -> dict:
        images = ((rgb.permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8) for rgb in batch["rgb"])
        frames = [
            Frame(name, image, sparse[0].cpu().numpy())
            for name, image, sparse in zip(batch["name"], images, batch["sparse"])
        ]
        dense = [depth for depth, _ in complete(net, frames, "native", masks)]
        return {"final": torch.from_numpy(np.stack(dense))[:, None].to(batch["sparse"].device)}

    return predict
