"""The depth network as ONNX with dynamic batch, height and width, checked against torch at export.

Graph: inputs rgb (N, 3, H, W) [0, 1], sparse (N, 1, H, W) metres, mask (N, 1, H, W) 0/1,
fill (N, 1, H, W) metres (validity = sparse > 0 is computed inside); output depth (N, 1, H, W)
metres = D_final, and for a net trained with `model.confidence` a second output expected_error
(N, 1, H, W) metres = exp(log_scale), the expected absolute error of that depth (docs/confidence.md).
The check at export compares both outputs with torch, in metres. The U-Net baseline ignores the mask, so its graph has no mask input; a net
without a prefill has no fill input (the fill itself is computed outside the graph, by predict).

H and W are dynamic: the U-Net's pad-to-16 and crop and the bilinear upsampling export as
shape arithmetic; the cross-attention's adaptive average pooling to its fixed grid, which
the TorchScript exporter refuses for an input of unknown size, is exported as two
averaging matrices built from the input's shape (rows: (h, H), columns: (w, W)), exactly
torch's bins [floor(i H / h), ceil((i + 1) H / h)).

The checkpoint's CheckpointInfo travels in the model's metadata (`mtdepth` key, JSON), so
`mtdepth predict` treats a `.onnx` as it treats the `.pt`.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.onnx import symbolic_helper

from mtdepth.errors import MtDepthError
from mtdepth.pipeline.checkpoint import CheckpointInfo
from mtdepth.pipeline.files import atomic_write
from mtdepth.pipeline.prefill import prefill_frame

FORMAT = "mtdepth-onnx"
VERSION = 1
METADATA_KEY = "mtdepth"
OPSET = 17
TOLERANCE_M = 1e-3
CHANNELS = {"rgb": 3, "sparse": 1, "mask": 1, "fill": 1}
OUTPUT = "depth"
ERROR_OUTPUT = "expected_error"  # metres, exp(log_scale): nets with confidence only
CHECK_SIZES = ((375, 1242), (203, 377))  # besides the training size: KITTI's, and an odd one


class DepthOnly(nn.Module):
    """(rgb, sparse, mask, fill) -> D_final (and its expected error, for a net with confidence): the network
    with its validity map computed inside."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, rgb: torch.Tensor, sparse: torch.Tensor, mask: torch.Tensor, fill: torch.Tensor):
        outputs = self.model(rgb, sparse, (sparse > 0).to(sparse.dtype), mask, fill)
        log_scale = outputs.get("log_scale")
        return outputs["final"] if log_scale is None else (outputs["final"], torch.exp(log_scale))


def output_names(model: nn.Module) -> list[str]:
    """The graph's outputs for `model`: depth, and expected_error for a net with confidence."""
    return [OUTPUT, ERROR_OUTPUT] if getattr(model, "confidence", False) else [OUTPUT]


def _pool_matrix(g, x, axis: int, bins: int):
    """(bins, size) matrix averaging each adaptive-pooling bin along `axis` of x, size read from x's shape."""

    def const(value):
        return g.op("Constant", value_t=torch.tensor(value, dtype=torch.int64))

    size = g.op("Gather", g.op("Shape", x), const(axis))
    index, one, count = const(list(range(bins))), const(1), const(bins)
    start = g.op("Div", g.op("Mul", index, size), count)  # floor(i * size / bins)
    end = g.op("Div", g.op("Sub", g.op("Add", g.op("Mul", g.op("Add", index, one), size), count), one), count)  # ceil

    def column(t):
        return g.op("Unsqueeze", t, const([1]))

    positions = g.op("Range", const(0), size, one)
    inside = g.op("And", g.op("GreaterOrEqual", positions, column(start)), g.op("Less", positions, column(end)))
    width = g.op("Cast", column(g.op("Sub", end, start)), to_i=1)  # float
    return g.op("Div", g.op("Cast", inside, to_i=1), width)


@symbolic_helper.parse_args("v", "is")
def _adaptive_avg_pool2d(g, x, output_size):
    """ONNX for F.adaptive_avg_pool2d(x, (h, w)) with x's H, W unknown until run time."""
    bins_h, bins_w = output_size
    rows = _pool_matrix(g, x, 2, bins_h)
    cols = _pool_matrix(g, x, 3, bins_w)
    return g.op("MatMul", g.op("MatMul", rows, x), g.op("Transpose", cols, perm_i=[1, 0]))


def example_inputs(
    height: int, width: int, max_depth: float, batch: int = 1, seed: int = 0, prefill: str = "none"
) -> dict[str, np.ndarray]:
    """Deterministic inputs: noise RGB, 5% sparse samples in [1, max_depth] m, a few rectangles of mask,
    and the net's fill of them."""
    rng = np.random.default_rng(seed)
    rgb = rng.random((batch, 3, height, width), dtype=np.float32)
    sparse = (rng.random((batch, 1, height, width)) < 0.05) * rng.uniform(1.0, max_depth, (batch, 1, height, width))
    mask = np.zeros((batch, 1, height, width), dtype=np.float32)
    for b in range(batch):
        for _ in range(3):
            top, left = rng.integers(0, height), rng.integers(0, width)
            mask[b, 0, top : top + height // 4, left : left + width // 6] = 1.0
    sparse = sparse.astype(np.float32)
    fill = np.stack([prefill_frame(prefill, sparse[b, 0], mask[b, 0]) for b in range(batch)])[:, None]
    return {"rgb": rgb, "sparse": sparse, "mask": mask, "fill": fill}


def session(path: Path, device: str = "cpu"):
    """An onnxruntime session: the CUDA provider when asked for and present, else CPU."""
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # no busy-wait between runs
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise MtDepthError(f"{path}: onnxruntime cannot load it ({str(exc).splitlines()[0][:120]})") from None


def run_session(sess, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """(N, K, H, W) from an export's session, feeding the inputs its graph has: channel 0 D_final, and
    with an expected_error output (K = 2) that error in channel 1."""
    names = [OUTPUT] + [o.name for o in sess.get_outputs() if o.name == ERROR_OUTPUT]
    results = sess.run(names, {i.name: inputs[i.name] for i in sess.get_inputs()})
    return results[0] if len(results) == 1 else np.concatenate(results, axis=1)


def max_difference(model: nn.Module, sess, sizes, max_depth: float) -> float:
    """Largest |torch - onnxruntime| in metres (depth, and expected error for a net with confidence) over
    example inputs at each (height, width)."""
    wrapper = DepthOnly(model).eval()
    worst = 0.0
    for seed, (height, width) in enumerate(sizes):
        inputs = example_inputs(
            height, width, max_depth, batch=2 if seed == 0 else 1, seed=seed, prefill=getattr(model, "prefill", "none")
        )
        with torch.inference_mode():
            expected = wrapper(*(torch.from_numpy(inputs[k]) for k in CHANNELS))
            expected = (torch.cat(expected, 1) if isinstance(expected, tuple) else expected).numpy()
        worst = max(worst, float(np.abs(run_session(sess, inputs) - expected).max()))
    return worst


def export_onnx(model: nn.Module, info: CheckpointInfo, out: Path, tolerance: float = TOLERANCE_M) -> dict:
    """Export `model` (a trained net, any device) to `out`; refuse (nothing written) unless ORT agrees.

    Returns the check: sizes run, max |torch - ORT| in metres, the tolerance.
    """
    import onnx

    model = model.to("cpu").eval()
    wrapper = DepthOnly(model).eval()
    sample = example_inputs(info.height, info.width, info.max_depth, prefill=getattr(model, "prefill", "none"))
    outputs = output_names(model)
    dynamic = {name: {0: "batch", 2: "height", 3: "width"} for name in (*CHANNELS, *outputs)}
    sizes = ((info.height, info.width), *CHECK_SIZES)
    tmp = out.with_name(f".{out.name}.export")
    torch.onnx.register_custom_op_symbolic("aten::adaptive_avg_pool2d", _adaptive_avg_pool2d, OPSET)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
            torch.onnx.export(
                wrapper,
                tuple(torch.from_numpy(sample[k]) for k in CHANNELS),
                str(tmp),
                input_names=list(CHANNELS),
                output_names=outputs,
                dynamic_axes=dynamic,
                opset_version=OPSET,
                dynamo=False,
            )
        worst = max_difference(model, session(tmp), sizes, info.max_depth)
        check = {"sizes": [list(s) for s in sizes], "max_abs_diff_m": worst, "tolerance_m": tolerance}
        if not worst <= tolerance:
            raise MtDepthError(
                f"{out}: not written: onnxruntime differs from torch by {worst:.3g} m (tolerance {tolerance:g} m)"
            )
        graph = onnx.load(str(tmp))
        meta = {"format": FORMAT, "version": VERSION, "info": dataclasses.asdict(info), "check": check}
        graph.metadata_props.add(key=METADATA_KEY, value=json.dumps(meta))
        atomic_write(out, lambda path: onnx.save(graph, str(path)))
    finally:
        tmp.unlink(missing_ok=True)
        torch.onnx.unregister_custom_op_symbolic("aten::adaptive_avg_pool2d", OPSET)
    return check


def _check_inputs(path: Path, graph, expected: list[str]) -> None:
    """Refuse an export whose inputs are not (N, C, H, W) with the names and channels mtdepth writes."""
    found = {}
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        found[value.name] = tuple(d.dim_value if d.HasField("dim_value") else "?" for d in dims)
    wanted = {name: ("?", CHANNELS[name], "?", "?") for name in expected}
    if found != wanted:

        def show(shapes):
            return ", ".join(f"{n} ({', '.join(map(str, s))})" for n, s in shapes.items())

        raise MtDepthError(f"{path}: inputs are {show(found)}; an mtdepth export has {show(wanted)} (? = dynamic)")


def read_onnx(path: Path) -> CheckpointInfo:
    """The CheckpointInfo of an mtdepth ONNX export; MtDepthError if the file is not one or its inputs differ."""
    import onnx

    if not path.is_file():
        raise MtDepthError(f"{path}: ONNX model not found")
    try:
        graph = onnx.load(str(path))
    except Exception as exc:  # onnx raises several types for a damaged file
        raise MtDepthError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from None
    props = {p.key: p.value for p in graph.metadata_props}
    try:
        meta = json.loads(props[METADATA_KEY])
    except (KeyError, ValueError):
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise MtDepthError(
            f"{path}: not an mtdepth depth-network export (no '{METADATA_KEY}' metadata; `mtdepth export` writes one)"
        )
    if meta.get("version") != VERSION:
        raise MtDepthError(f"{path}: mtdepth ONNX version {meta.get('version')!r}, this mtdepth reads {VERSION}")
    try:
        info = CheckpointInfo(**meta["info"])
    except (KeyError, TypeError) as exc:
        raise MtDepthError(f"{path}: its mtdepth metadata does not describe a model ({exc})") from None
    expected = ["rgb", "sparse"] + ([] if info.model_name == "unet" else ["mask"])
    expected += [] if info.model_config.get("prefill", "none") == "none" else ["fill"]
    _check_inputs(path, graph.graph, expected)
    outputs = {value.name for value in graph.graph.output}
    if info.model_config.get("confidence", False) and ERROR_OUTPUT not in outputs:
        raise MtDepthError(f"{path}: its model has confidence but the graph has no {ERROR_OUTPUT!r} output")
    return info
