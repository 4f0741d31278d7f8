"""Stage one: dataset frames -> store arrays, rewriting only arrays whose provenance changed.

Per shard of frames: decoding and resizing run in parallel through dask (local threads,
or a dask.distributed cluster given its address) one shard ahead, while the frozen
segmenter predicts the current shard in batches; whole shards are written in order and
each array is committed once all its shards are in (see cache/store.py).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager as ContextManager
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import dask
import numpy as np

from mtdepth.cache.location import filesystem_error
from mtdepth.cache.store import FrameTable, open_for_write, open_store
from mtdepth.errors import MtDepthError
from mtdepth.params import Params, SparseParams
from mtdepth.pipeline import vkitti2_format as fmt
from mtdepth.pipeline.device import check_segmenter_device
from mtdepth.pipeline.segmenter import Segmenter, SegmenterConfig, config_from, segmenter_provenance
from mtdepth.pipeline.patterns import needs_source, pattern_keys, sample_frame
from mtdepth.pipeline.splits import random_split, scene_split
from mtdepth.pipeline.vkitti2 import FrameRef, load_frame

FRAME_ARRAYS = ("rgb", "depth", "sparse")
MASK_PREFIX = "mask/"


@dataclass(frozen=True)
class DecodedShard:
    """The decoded arrays of one shard's frames, stacked on the frame axis."""

    rgb: np.ndarray  # uint8 (n, H, W, 3)
    depth: np.ndarray  # uint16 (n, H, W) centimetres, 0 invalid
    sparse: np.ndarray  # uint16 (n, H, W) centimetres, 0 no sample
    gt: np.ndarray | None  # uint8 (n, H, W) merged instance ground truth, None without instance PNGs


def decode_frame(
    ref: FrameRef, height: int, width: int, max_depth: float, sparse_params: SparseParams, seed: int
) -> dict:
    """One frame's store rows (runs in a dask worker: plain arrays in, plain arrays out)."""
    frame = load_frame(ref, height, width, max_depth, keep_source=needs_source(sparse_params))
    source_rgb, source_depth = frame.source or (None, None)
    sparse = sample_frame(sparse_params, seed, ref.key, frame.depth, source_depth, source_rgb, ref.intrinsics)
    return {
        "rgb": frame.rgb,
        "depth": _to_units(frame.depth),
        "sparse": _to_units(sparse),
        "gt": frame.gt_mask,
    }


def _to_units(metres: np.ndarray) -> np.ndarray:
    """Metres (0 = invalid) to the store's uint16 centimetres (0 stays 0)."""
    return np.rint(metres * fmt.DEPTH_UNITS_PER_METRE).astype(np.uint16)


def _stack(rows: Sequence[dict]) -> DecodedShard:
    gts = [row["gt"] for row in rows]
    return DecodedShard(
        rgb=np.stack([row["rgb"] for row in rows]),
        depth=np.stack([row["depth"] for row in rows]),
        sparse=np.stack([row["sparse"] for row in rows]),
        gt=None if any(g is None for g in gts) else np.stack(gts),
    )


class ShardDecoder:
    """Decodes shards through dask, one submission at a time, returning futures.

    Local: a dask threaded compute in a background thread (PIL releases the GIL while
    decoding). With `scheduler` (a dask.distributed address) the frames go to that cluster;
    its workers must see the dataset paths.
    """

    def __init__(
        self,
        height: int,
        width: int,
        max_depth: float,
        sparse_params: SparseParams,
        seed: int,
        workers: int,
        scheduler: str | None,
    ):
        self._args = (height, width, max_depth, sparse_params, seed)
        self._workers = workers
        self._client = None
        if scheduler:
            from distributed import Client

            try:
                self._client = Client(scheduler, timeout="10s")
            except (OSError, TimeoutError, ValueError, TypeError) as exc:
                raise MtDepthError(f"--scheduler {scheduler}: cannot reach the dask scheduler ({exc})") from None
        self._thread = ThreadPoolExecutor(max_workers=1)

    def submit(self, refs: Sequence[FrameRef]) -> Future:
        tasks = [dask.delayed(decode_frame, pure=True)(ref, *self._args) for ref in refs]
        if self._client is not None:
            futures = self._client.compute(tasks)
            return self._thread.submit(lambda: _stack(self._client.gather(futures)))
        return self._thread.submit(lambda: _stack(dask.compute(*tasks, scheduler="threads", num_workers=self._workers)))

    def __enter__(self) -> "ShardDecoder":
        return self

    def __exit__(self, *exc_info) -> None:
        self._thread.shutdown(wait=True, cancel_futures=True)
        if self._client is not None:
            self._client.close()


class _NoProgress:
    """Stands in for a progress bar when none is wanted."""

    def __init__(self, total: int):
        self.total = total

    def update(self, n: int) -> None:
        pass

    def __enter__(self) -> "_NoProgress":
        return self

    def __exit__(self, *exc_info) -> None:
        pass


def frame_table(refs: Sequence[FrameRef], params: Params) -> FrameTable:
    """The store's frame axis: where each frame came from and its train/val side."""
    store = params.store
    scenes = sorted({r.scene for r in refs})
    if store.split == "scene" and store.val_fraction > 0 and len(scenes) < 2:
        raise MtDepthError(
            f"store.split: 'scene' needs at least two scenes, the selection has only {scenes[0]}; "
            "select more scenes or use split: random"
        )
    if store.split == "scene":
        split = scene_split([r.scene for r in refs], store.val_fraction, params.seed)
    else:
        split = random_split(len(refs), store.val_fraction, params.seed)
    return FrameTable(
        scene=tuple(r.scene for r in refs),
        condition=tuple(r.condition for r in refs),
        camera=tuple(r.camera for r in refs),
        index=tuple(r.index for r in refs),
        split=tuple(int(s) for s in split),
    )


def files_digest(paths: Sequence[Path], root: Path) -> str:
    """sha256 over (path relative to the root, size) of every file.

    Cheap (no file is read) and stable when a dataset is copied or moved; a rewrite that
    keeps every size goes unnoticed, so regenerate a store with --overwrite after one.
    """
    digest = hashlib.sha256()
    for path in paths:
        relative = Path(os.path.relpath(path, root)).as_posix()
        try:
            size = os.stat(path).st_size
        except OSError as exc:  # dangling symlink, symlink loop, permission
            raise MtDepthError(f"{path}: cannot read ({exc.strerror}); fix or remove the file") from None
        digest.update(f"{relative}:{size}\n".encode())
    return digest.hexdigest()


def provenances(refs: Sequence[FrameRef], params: Params, mask_sources: Sequence[str]) -> dict[str, dict]:
    """Exactly the inputs that decide each array's content (the store turns them into fingerprints)."""
    data = params.data
    root = Path(data.root)
    geometry = {"height": data.height, "width": data.width}
    rgb = {"source": files_digest([r.rgb for r in refs], root), **geometry, "resize": "area"}
    depth = {
        "source": files_digest([r.depth for r in refs], root),
        **geometry,
        "resize": "nearest",
        "max_depth": data.max_depth,
    }
    result = {
        "rgb": rgb,
        "depth": depth,
        "sparse": {**depth, **sparse_sources(refs, params), **pattern_keys(params.sparse, params.seed)},
    }
    if "gt" in mask_sources:
        if any(r.instance is None for r in refs):
            missing = next(r for r in refs if r.instance is None)
            raise MtDepthError(f"store.mask_sources: 'gt' needs instance PNGs, none for frame {missing.key}")
        result[MASK_PREFIX + "gt"] = {
            "source": files_digest([r.instance for r in refs], root),
            **geometry,
            "resize": "nearest",
        }
    if "yolo" in mask_sources:
        result[MASK_PREFIX + "yolo"] = {**rgb, "segmenter": segmenter_provenance(config_from(params.segmenter))}
    return result


def sparse_sources(refs: Sequence[FrameRef], params: Params) -> dict:
    """What a full-size pattern reads beyond the depth: the images (keypoints), the intrinsics (lidar)."""
    pattern = params.sparse.pattern
    sources = {}
    if pattern in ("keypoints", "mixed"):
        sources["rgb_source"] = files_digest([r.rgb for r in refs], Path(params.data.root))
    if pattern in ("lidar", "mixed"):
        missing = next((r for r in refs if r.intrinsics is None), None)
        if missing is not None:
            raise MtDepthError(
                f"sparse.pattern: {pattern!r} simulates a LiDAR and needs the camera intrinsics "
                f"(intrinsic.txt), none for frame {missing.key}"
            )
        sources["intrinsics"] = hashlib.sha256(repr([r.intrinsics for r in refs]).encode()).hexdigest()
    return sources


def _is_current(url: str, name: str, provenance: dict) -> bool:
    """Whether the store at `url` already holds `name` committed, sound, with exactly `provenance`."""
    try:
        open_store(url).require(name, provenance)
    except MtDepthError:  # no store yet, not committed, damaged or made otherwise: not current
        return False
    return True


def check_segmenter(params: Params) -> None:
    """Checks of the segmenter params that need no model load: weights path kind, device."""
    weights = Path(params.segmenter.weights)
    if weights.is_dir():
        raise MtDepthError(
            f"{weights}: is a folder, not a weights file (segmenter.weights / --weights: a .pt or .onnx)"
        )
    check_segmenter_device(params.segmenter.device)


def build(
    refs: Sequence[FrameRef],
    params: Params,
    url: str,
    *,
    scheduler: str | None = None,
    decode_workers: int = 2,
    overwrite: bool = False,
    repair: bool = False,
    make_segmenter: Callable[[SegmenterConfig], Segmenter] = Segmenter,
    progress: Callable[..., ContextManager] = _NoProgress,
) -> dict:
    """Bring the store at `url` up to date with `refs` and `params`; return a summary.

    Arrays already committed with the same provenance are left alone; YOLO runs only
    if `mask/yolo` has shards to write. Everything that can refuse without reading every
    frame (params, weights, device, scheduler, source file sizes) is checked before the
    store is touched; whatever fails later leaves every committed array as it was (the
    store writes copy-on-write). `progress(total=n)` gives a context-managed bar with
    `.update(frames)`.
    """
    if not refs:
        raise MtDepthError(f"{params.data.root}: no frames selected")
    yolo = MASK_PREFIX + "yolo"
    if "yolo" in params.store.mask_sources:
        check_segmenter(params)
    wanted = provenances(refs, params, params.store.mask_sources)
    frames = frame_table(refs, params)
    segmenter = None
    if yolo in wanted and (repair or not _is_current(url, yolo, wanted[yolo])):
        segmenter = make_segmenter(config_from(params.segmenter))
    try:
        with (
            ShardDecoder(
                params.data.height,
                params.data.width,
                params.data.max_depth,
                params.sparse,
                params.seed,
                decode_workers,
                scheduler,
            ) as decoder,
            open_for_write(
                url,
                frames,
                params.data.height,
                params.data.width,
                params.store.shard_frames,
                overwrite=overwrite,
                repair=repair,
            ) as writer,
        ):
            pending = {name: writer.pending(name, provenance) for name, provenance in wanted.items()}
            summary = {
                "frames": len(refs),
                "shards": writer.n_shards,
                "written": sorted(n for n, t in pending.items() if t.commit),
                "unchanged": sorted(n for n, t in pending.items() if not t.commit),
                "segmenter_frames": 0,
            }
            _write_shards(refs, writer, decoder, pending, segmenter, progress, summary)
            for name, todo in pending.items():
                if todo.commit:
                    writer.commit(name)
    except OSError as exc:
        raise filesystem_error(exc, url) from None
    return summary


def _write_shards(
    refs: Sequence[FrameRef],
    writer,
    decoder: ShardDecoder,
    pending: dict,
    segmenter: Segmenter | None,
    progress: Callable[..., ContextManager],
    summary: dict,
) -> None:
    """Decode every shard some array still needs (one ahead), run YOLO where asked, write the shards in order."""
    shards = sorted({s for todo in pending.values() for s in todo})
    if not shards:
        return

    def refs_of(shard: int) -> Sequence[FrameRef]:
        return refs[slice(*writer.shard_bounds(shard))]

    with progress(total=sum(len(refs_of(s)) for s in shards)) as bar:
        upcoming = decoder.submit(refs_of(shards[0]))
        for position, shard in enumerate(shards):
            decoded = upcoming.result()
            if position + 1 < len(shards):
                upcoming = decoder.submit(refs_of(shards[position + 1]))  # decode ahead while YOLO runs
            blocks = {
                "rgb": decoded.rgb,
                "depth": decoded.depth,
                "sparse": decoded.sparse,
                MASK_PREFIX + "gt": decoded.gt,
            }
            for name, todo in pending.items():
                if shard not in todo:
                    continue
                if name == MASK_PREFIX + "yolo":
                    block = np.stack(list(segmenter.predict(iter(decoded.rgb))))
                    summary["segmenter_frames"] += len(block)
                else:
                    block = blocks[name]
                writer.write_shard(name, shard, block)
            bar.update(len(decoded.rgb))
