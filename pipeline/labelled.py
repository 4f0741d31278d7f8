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
from mtdepth.pipeline.guard import Guard, Verdict
from mtdepth.pipeline.inference import DepthNet, Frame, complete_guarded, complete_with_error, frame_from_files
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
    net: DepthNet,
    masks: Callable[[list[np.ndarray]], list[np.ndarray]] | None,
    guard: Guard | None = None,
    verdicts: dict[str, Verdict] | None = None,
) -> Callable[[dict], dict]:
    """A batch -> {'final': dense (, 'log_scale')} function running `net` at each frame's own size, as
    `mtdepth predict` does: checked by `guard` when given (each frame's verdict into `verdicts`), and
    with the log of the expected error for a net with confidence."""

    def predict(batch: dict) -> dict:
        images = ((rgb.permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8) for rgb in batch["rgb"])
        frames = [
            Frame(name, image, sparse[0].cpu().numpy())
            for name, image, sparse in zip(batch["name"], images, batch["sparse"])
        ]
        if guard is None:
            done = [(*result, None) for result in complete_with_error(net, frames, "native", masks)]
        else:
            done = complete_guarded(net, frames, guard, "native", masks)
        device = batch["sparse"].device
        out = {"final": torch.from_numpy(np.stack([dense for dense, _, _, _ in done]))[:, None].to(device)}
        if all(error is not None for _, error, _, _ in done):
            out["log_scale"] = torch.from_numpy(np.log(np.stack([error for _, error, _, _ in done])))[:, None].to(
                device
            )
        for frame, (_, _, _, verdict) in zip(frames, done):
            if verdict is not None and verdicts is not None:
                verdicts[frame.name] = verdict
        return out

    return predict
