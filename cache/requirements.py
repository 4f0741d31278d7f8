"""What stage two requires of a store: the param-derived parts of each array's provenance.

A store's provenance also holds a digest of the dataset files (`source`), which stage
two cannot recompute without the dataset. `required_provenance` therefore takes each
stored provenance and overwrites the keys that params decide (geometry, max_depth,
sparse pattern, seed, segmenter settings and weights hash); `StoreReader.require` then
refuses a store whose fingerprint differs, naming exactly those keys.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from mtdepth.cache.dataset import CachedDepthDataset, check_mask_source
from mtdepth.cache.fingerprint import canonical
from mtdepth.cache.schema import mask_array
from mtdepth.cache.store import StoreReader, open_store
from mtdepth.errors import MtDepthError
from mtdepth.params import Params
from mtdepth.pipeline.patterns import pattern_keys
from mtdepth.pipeline.prefill import MASK_AWARE
from mtdepth.pipeline.segmenter import config_from, segmenter_provenance, segmenter_settings, shipped_weights

YOLO = "yolo"
log = logging.getLogger(__name__)


def arrays_for(mask_source: str, has_gt_mask: bool) -> list[str]:
    """The arrays a run reads: rgb, depth, sparse, its mask source, and mask/gt for the loss."""
    names = ["rgb", "depth", "sparse"]
    if mask_source != "none":
        names.append(mask_array(mask_source))
    if has_gt_mask and mask_array("gt") not in names:
        names.append(mask_array("gt"))
    return names


def _segmenter_keys(params: Params) -> dict:
    """The segmenter settings params decide; the weights hash only when the weights file is here."""
    config = config_from(params.segmenter)
    if Path(config.weights).is_file() or shipped_weights(config.weights):
        return segmenter_provenance(config)
    log.warning("%s: segmenter weights not here; checking the store's masks by file name only", config.weights)
    return segmenter_settings(config)


def param_keys(params: Params, name: str) -> dict:
    """The provenance keys of array `name` that params decide."""
    d = params.data
    keys = {"height": d.height, "width": d.width}
    if name in ("depth", "sparse"):
        keys["max_depth"] = d.max_depth
    if name == "sparse":
        keys.update(pattern_keys(params.sparse, params.seed))
    if name == mask_array(YOLO):
        keys["segmenter"] = _segmenter_keys(params)
    return keys


def required_provenance(reader: StoreReader, params: Params, names: list[str]) -> dict[str, dict]:
    """For each array, its stored provenance with the param-decided keys as params say them."""
    required = {}
    for name in names:
        stored = canonical(reader.provenance(name))
        wanted = canonical(param_keys(params, name))
        if "segmenter" in wanted:
            wanted["segmenter"] = {**stored.get("segmenter", {}), **wanted["segmenter"]}
        required[name] = {**stored, **wanted}
    return required


@dataclass
class Data:
    """The store's datasets for a training run and what the checkpoint records of them."""

    train: CachedDepthDataset
    val: CachedDepthDataset
    provenance: dict[str, dict]
    height: int
    width: int


def open_data(params: Params, store: str) -> Data:
    """Training and validation datasets, refusing a store made with other params (naming the keys)."""
    reader = open_store(store)
    # the U-Net takes no mask, unless its fill is mask-aware
    reads_mask = params.train.model == "mtdepth" or params.model.prefill in MASK_AWARE
    mask = params.train.mask_source if reads_mask else "none"
    check_mask_source(reader, mask)
    required = required_provenance(reader, params, arrays_for(mask, "gt" in reader.mask_sources()))
    size = params.model.attention_size
    if params.train.model == "mtdepth" and (size[0] > reader.height or size[1] > reader.width):
        raise MtDepthError(
            f"model.attention_size {list(size)} is larger than the store's {reader.height}x{reader.width} frames"
        )
    train = CachedDepthDataset(store, "train", mask, required=required, prefill=params.model.prefill)
    val = CachedDepthDataset(store, "val", mask, prefill=params.model.prefill)
    if len(train) == 0:
        raise MtDepthError(f"store {store}: its train split has no frames")
    return Data(train, val, canonical(required), reader.height, reader.width)
