"""MT-Depth (section 3.5) and its U-Net baseline (Table 3's "UNet" row).

Both take rgb (B, 3, H, W) in [0, 1], sparse (B, 1, H, W) metres (0 = no sample),
valid (B, 1, H, W), mask (B, 1, H, W) in [0, 1] and fill (B, 1, H, W) metres (the classical fill of
pipeline/prefill.py; only read when `prefill` is not "none"), at any H, W, and return

    {"init": D_init, "final": D_final, "mask_logits": logits or None}
    (+ "log_scale": s (B, 1, H, W) with `confidence`)

with depths in metres (B, 1, H, W). Inside the net depth is scaled by `max_depth`: the
sparse input (and the fill, a sixth input channel) is divided by it. Each output map follows `output`:
    absolute  max_depth * softplus(raw), positive, the output convs initialised so an untrained
              net predicts about `init_depth` metres everywhere (the paper as written);
    residual  fill * exp(b * tanh(raw / b)), b = RESIDUAL_LOG_BOUND: a correction in log space, so
              it scales with depth (a 10% change is the same raw value at 2 m and at 60 m);
    additive  max(0, fill + max_depth * raw): a correction in metres, the same at every depth;
              both with the output convs zero-initialised: an untrained net returns its fill exactly.
With `keep_sparse` every measured sample is written back over each output (D = sparse where valid).
With `mask_input` (MT-Depth only) the mask is also a U-Net input channel at full resolution: the paper's
attention sees it only pooled to 16x32, where its edges, the silhouettes a fill gets wrong, are gone.
With `confidence` a second output conv beside D_final's (the U-Net: a 1x1 conv on F_depth; MT-Depth: on the
head's features) gives s = log b, b the scale in metres of a Laplace around D_final, so exp(s) = E|e| is the
expected absolute error in metres. The conv predicts the error relative to the depth, s = log D_final + raw
(D_final detached), so that errors growing with depth cost it nothing to learn; s is clamped to
[log MIN_EXPECTED_ERROR_M, log max_depth], starts at 5% of the depth (head.py's log_scale_conv; the rest of
the net initialises as it does without it), and with `keep_sparse` is the floor where a sample is written
back (docs/confidence.md). The U-Net baseline's D_final is its D_init and it ignores the mask. The mask is an
input, never a parameter: no gradient reaches it (the segmenter stays outside the graph).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mtdepth.params import Output, choices
from mtdepth.pipeline.models.cross_attention import CrossAttention
from mtdepth.pipeline.models.fusion import Fusion
from mtdepth.pipeline.models.head import DepthHead, MaskHead, log_scale_conv
from mtdepth.pipeline.models.unet import INPUT_CHANNELS, UNet
from mtdepth.pipeline.prefill import check_prefill

__all__ = ["DepthCompletionNet", "MTDepth", "UNetBaseline"]

OUTPUT_WEIGHT_STD = 1e-3  # output convs start almost constant, at init_depth
OUTPUTS = choices(Output)
RESIDUALS = ("residual", "additive")  # the outputs that correct the fill
RESIDUAL_LOG_BOUND = 1.0  # a residual output stays within fill * [1/e, e]
MIN_EXPECTED_ERROR_M = 0.01  # confidence: the floor of b = exp(s), metres (the ceiling is max_depth)


def _init_weights(module: nn.Module) -> None:
    """Kaiming-normal convolutions, unit BatchNorm; the confidence's output conv keeps its own (head.py)."""
    for name, m in module.named_modules():
        if name.endswith("log_scale_out"):
            continue
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class DepthCompletionNet(nn.Module):
    """What both networks share: input normalisation, the depth branch, the output transform."""

    def __init__(
        self,
        channels: Sequence[int],
        max_depth: float,
        init_depth: float,
        prefill: str = "none",
        output: str = "absolute",
        keep_sparse: bool = False,
        confidence: bool = False,
        mask_input: bool = False,
    ):
        super().__init__()
        if not 0 < init_depth < max_depth:
            raise ValueError(f"init_depth must be in (0, max_depth={max_depth}), got {init_depth!r}")
        check_prefill(prefill)
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
        if output in RESIDUALS and prefill == "none":
            raise ValueError(f"a {output} output corrects a fill: it needs a prefill other than 'none'")
        self.max_depth, self.init_depth = float(max_depth), float(init_depth)
        self.prefill, self.output, self.keep_sparse = prefill, output, bool(keep_sparse)
        self.confidence, self.mask_input = bool(confidence), bool(mask_input)
        self.unet = UNet(channels, INPUT_CHANNELS + (prefill != "none") + self.mask_input)

    @property
    def _output_config(self) -> dict:
        return {
            "prefill": self.prefill,
            "output": self.output,
            "keep_sparse": self.keep_sparse,
            "confidence": self.confidence,
        }

    def _depth(self, raw: torch.Tensor, sparse: torch.Tensor, valid: torch.Tensor, fill) -> torch.Tensor:
        """Metres from a raw output map (absolute or residual, then keep_sparse), computed in fp32."""
        raw = raw.float()
        if self.output == "residual":
            depth = fill.float() * torch.exp(RESIDUAL_LOG_BOUND * torch.tanh(raw / RESIDUAL_LOG_BOUND))
        elif self.output == "additive":
            depth = (fill.float() + self.max_depth * raw).clamp(min=0)
        else:
            depth = self.max_depth * F.softplus(raw)
        if self.keep_sparse:
            depth = torch.where(valid > 0, sparse.float(), depth)
        return depth

    def _log_scale(self, raw: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """s = log b (b metres) = log D + raw (raw: the log of the error relative to the depth D, detached),
        clamped to [log MIN_EXPECTED_ERROR_M, log max_depth], in fp32; with `keep_sparse` the floor where a
        sample was written back (its depth is the measurement)."""
        low = math.log(MIN_EXPECTED_ERROR_M)
        relative_to = torch.log(depth.detach().float().clamp(min=MIN_EXPECTED_ERROR_M))
        log_scale = (relative_to + raw.float()).clamp(low, math.log(self.max_depth))
        if self.keep_sparse:
            log_scale = torch.where(valid > 0, torch.full_like(log_scale, low), log_scale)
        return log_scale

    def _init_outputs(self, *convs: nn.Conv2d) -> None:
        """Absolute: near-zero weights and a bias that makes the untrained output `init_depth` metres.
        Residual, additive: zero weights and bias, so the untrained output is the fill itself."""
        for conv in convs:
            if self.output in RESIDUALS:
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)
            else:
                nn.init.normal_(conv.weight, std=OUTPUT_WEIGHT_STD)
                nn.init.constant_(conv.bias, _inverse_softplus(self.init_depth / self.max_depth))

    def _features(self, rgb, sparse, valid, fill, mask=None) -> tuple[torch.Tensor, torch.Tensor]:
        inputs = [rgb, sparse / self.max_depth, valid]  # eq. 3, (B, 5, H, W)
        if self.prefill != "none":
            if fill is None:
                raise ValueError(f"this net completes a {self.prefill!r} fill: pass fill")
            inputs.append(fill / self.max_depth)
        if self.mask_input:
            inputs.append(mask.detach().to(rgb.dtype))
        return self.unet(torch.cat(inputs, dim=1))

    @property
    def config(self) -> dict:
        """Constructor arguments (JSON-able) with the builder's name: `build_model(config)` remakes it."""
        raise NotImplementedError


class UNetBaseline(DepthCompletionNet):
    """The depth branch alone: D_final = D_init.

    Args:
        channels: U-Net channels per level (8, 16, 32, 64, 128).
        max_depth: metres; the depth scale inside the net.
        init_depth: what the untrained net predicts, metres (absolute output).
        prefill, output, keep_sparse: the fill it completes, absolute or residual output, samples kept.
        confidence: add the log-scale output (a 1x1 conv on F_depth beside D_init's).
    """

    def __init__(
        self,
        channels: Sequence[int] = (8, 16, 32, 64, 128),
        max_depth: float = 80.0,
        init_depth: float = 20.0,
        prefill: str = "none",
        output: str = "absolute",
        keep_sparse: bool = False,
        confidence: bool = False,
    ):
        super().__init__(channels, max_depth, init_depth, prefill, output, keep_sparse, confidence)
        self.log_scale_out = log_scale_conv(self.unet.feature_channels) if self.confidence else None
        _init_weights(self)
        self._init_outputs(self.unet.depth_out)

    @property
    def config(self) -> dict:
        return {
            "name": "unet",
            "channels": list(self.unet.channels),
            "max_depth": self.max_depth,
            "init_depth": self.init_depth,
            **self._output_config,
        }

    def forward(self, rgb, sparse, valid, mask=None, fill=None) -> dict:
        features, raw = self._features(rgb, sparse, valid, fill)
        depth = self._depth(raw, sparse, valid, fill)
        outputs = {"init": depth, "final": depth, "mask_logits": None}
        if self.log_scale_out is not None:
            outputs["log_scale"] = self._log_scale(self.log_scale_out(features), depth, valid)
        return outputs


class MTDepth(DepthCompletionNet):
    """U-Net depth branch + mask-queried cross-attention + fusion + SE head (+ mask head).

    Args:
        channels: U-Net channels per level (Table 2: 8, 16, 32, 64, 128).
        attention_dim: cross-attention dimension C_a (32).
        attention_size: attention grid (16, 32).
        fusion_channels: fused channels C' (128).
        head_channels: the head's middle channels (64).
        se_reduction: squeeze-and-excitation reduction ratio (16).
        query: the cross-attention's query input ("mask", "mask_pos", "mask_feat").
        mask_input: the mask is also a U-Net input channel at full resolution (not the paper's).
        max_depth: metres; the depth scale inside the net.
        init_depth: what the untrained net predicts, metres (absolute output).
        prefill, output, keep_sparse: the fill it completes, absolute or residual outputs, samples kept.
        confidence: add the log-scale output (a 1x1 conv on the head's features beside D_final's).
    """

    def __init__(
        self,
        channels: Sequence[int] = (8, 16, 32, 64, 128),
        attention_dim: int = 32,
        attention_size: Sequence[int] = (16, 32),
        fusion_channels: int = 128,
        head_channels: int = 64,
        se_reduction: int = 16,
        query: str = "mask",
        mask_input: bool = False,
        max_depth: float = 80.0,
        init_depth: float = 20.0,
        prefill: str = "none",
        output: str = "absolute",
        keep_sparse: bool = False,
        confidence: bool = False,
    ):
        super().__init__(channels, max_depth, init_depth, prefill, output, keep_sparse, confidence, mask_input)
        c = self.unet.feature_channels
        self.attention = CrossAttention(c, attention_dim, tuple(attention_size), query)
        self.fusion = Fusion(c, fusion_channels)
        self.head = DepthHead(fusion_channels, head_channels, se_reduction, self.confidence)
        self.mask_head = MaskHead(fusion_channels)
        self._args = {
            "attention_dim": attention_dim,
            "attention_size": list(attention_size),
            "fusion_channels": fusion_channels,
            "head_channels": head_channels,
            "se_reduction": se_reduction,
            "query": query,
            "mask_input": self.mask_input,
        }
        _init_weights(self)
        self._init_outputs(self.unet.depth_out, self.head.depth_out)

    @property
    def config(self) -> dict:
        return {
            "name": "mtdepth",
            "channels": list(self.unet.channels),
            **self._args,
            "max_depth": self.max_depth,
            "init_depth": self.init_depth,
            **self._output_config,
        }

    def forward(self, rgb, sparse, valid, mask, fill=None) -> dict:
        features, raw_init = self._features(rgb, sparse, valid, fill, mask)  # F_depth (B, C, H, W)
        attended = self.attention(features, mask)  # F_att (B, C, H, W)
        fused = self.fusion(attended, features)  # F_fused (B, C', H, W)
        raw_final, raw_log_scale = self.head(fused)
        outputs = {
            "init": self._depth(raw_init, sparse, valid, fill),
            "final": self._depth(raw_final, sparse, valid, fill),
            "mask_logits": self.mask_head(fused).float(),
        }
        if raw_log_scale is not None:
            outputs["log_scale"] = self._log_scale(raw_log_scale, outputs["final"], valid)
        return outputs
