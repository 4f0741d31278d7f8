"""The networks: U-Net depth branch, cross-attention, fusion, SE head, MT-Depth (one part per file).

model = build_model({"name": "mtdepth", ...})   # or MTDepth(...), UNetBaseline(...)
out = model(rgb, sparse, valid, mask)            # {"init", "final", "mask_logits"} (+ "log_scale"), metres
build_model(model.config)                        # the same architecture again
"""

from __future__ import annotations

from torch import nn

from mtdepth.errors import MtDepthError
from mtdepth.pipeline.models.cross_attention import QUERIES, CrossAttention
from mtdepth.pipeline.models.mtdepth import DepthCompletionNet, MTDepth, UNetBaseline
from mtdepth.pipeline.models.unet import UNet

__all__ = [
    "MODELS",
    "QUERIES",
    "CrossAttention",
    "DepthCompletionNet",
    "MTDepth",
    "UNet",
    "UNetBaseline",
    "build_model",
    "new_model",
]

MODELS = {"mtdepth": MTDepth, "unet": UNetBaseline}


def build_model(config: dict) -> DepthCompletionNet:
    """The network a `model.config` dict describes; MtDepthError for an unknown name or bad argument."""
    args = dict(config)
    name = args.pop("name", None)
    if name not in MODELS:
        raise MtDepthError(f"model config: unknown model {name!r} (known: {', '.join(MODELS)})")
    try:
        return MODELS[name](**args)
    except (TypeError, ValueError) as exc:
        raise MtDepthError(f"model config: {exc}") from None


def new_model(params) -> DepthCompletionNet:
    """The network `params` (a Params) describe: train.model, model.*, data.max_depth."""
    m = params.model
    config = {
        "name": params.train.model,
        "channels": list(m.unet_channels),
        "max_depth": params.data.max_depth,
        "init_depth": m.init_depth,
        "prefill": m.prefill,
        "output": m.output,
        "keep_sparse": m.keep_sparse,
        "confidence": m.confidence,
    }
    if params.train.model == "mtdepth":
        config.update(
            attention_dim=m.attention_dim,
            attention_size=list(m.attention_size),
            fusion_channels=m.fusion_channels,
            head_channels=m.head_channels,
            se_reduction=m.se_reduction,
            query=m.query,
            mask_input=m.mask_input,
        )
    return build_model(config)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
