"""The shipped default depth model: `weights/depth-unet-mixed.pt` (made by `make depth-model`,
depthmodel/dvc.yaml), found among the shipped models of the installed package, never in the working folder."""

from __future__ import annotations

from pathlib import Path

from mtdepth.errors import MtDepthError
from mtdepth.pipeline.segmenter import SHIPPED_FOLDER, shipped_weights

SHIPPED_MODEL = f"{SHIPPED_FOLDER}/depth-unet-mixed.pt"  # the U-Net on IP-Basic's fill, trained on mixed patterns


def shipped_model() -> Path:
    """The shipped depth checkpoint: in the installed `mtdepth.weights` package, else the repository the code
    runs from; MtDepthError when neither holds it."""
    found = shipped_weights(SHIPPED_MODEL)
    if found is None:
        raise MtDepthError(
            f"--checkpoint: no shipped depth model ({SHIPPED_MODEL}) in the installed mtdepth; give a checkpoint"
        )
    return found
