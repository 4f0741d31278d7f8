"""The frame table: which source frame each row of the store holds, and its train/val split.

`FrameTable(scene, condition, camera, index, split)` holds one tuple per column, row i
describing frame i of every array. Two fingerprints:
- `rows_fingerprint()` covers where the frames came from (everything but the split); it
  decides whether an existing store can be reused at all;
- `fingerprint()` covers every column; the split alone can change in place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mtdepth.cache.fingerprint import fingerprint
from mtdepth.cache.schema import FRAME_COLUMNS, FRAME_DTYPES, SPLIT_CODES

ROW_COLUMNS = tuple(c for c in FRAME_COLUMNS if c != "split")


@dataclass(frozen=True)
class FrameTable:
    """One entry per frame in each column; split holds SPLIT_CODES values (0 train, 1 val)."""

    scene: tuple[str, ...]
    condition: tuple[str, ...]
    camera: tuple[str, ...]
    index: tuple[int, ...]
    split: tuple[int, ...]

    def __post_init__(self) -> None:
        for column in FRAME_COLUMNS:
            object.__setattr__(self, column, tuple(getattr(self, column)))
        lengths = {column: len(getattr(self, column)) for column in FRAME_COLUMNS}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"FrameTable columns differ in length: {lengths}")
        unknown = set(self.split) - set(SPLIT_CODES.values())
        if unknown:
            raise ValueError(f"FrameTable.split holds {sorted(unknown)}, expected {SPLIT_CODES}")

    def __len__(self) -> int:
        return len(self.index)

    def _columns_as_json(self, columns: tuple[str, ...]) -> dict[str, list]:
        return {column: [plain_value(v) for v in getattr(self, column)] for column in columns}

    def rows_fingerprint(self) -> str:
        """sha256 of the frames' origin (scene, condition, camera, index), not the split."""
        return fingerprint(self._columns_as_json(ROW_COLUMNS))

    def fingerprint(self) -> str:
        """sha256 of every column, split included."""
        return fingerprint(self._columns_as_json(FRAME_COLUMNS))

    def split_counts(self) -> dict[str, int]:
        """Frames per split name, e.g. {'train': 80, 'val': 20}."""
        return {name: self.split.count(code) for name, code in SPLIT_CODES.items()}

    def column_array(self, column: str) -> np.ndarray:
        """One column as the numpy array the store holds."""
        return np.asarray(getattr(self, column), dtype=FRAME_DTYPES[column])

    @classmethod
    def from_arrays(cls, columns: dict[str, np.ndarray]) -> FrameTable:
        """Rebuild from the store's column arrays (plain Python values inside)."""
        return cls(**{column: tuple(plain_value(v) for v in columns[column]) for column in FRAME_COLUMNS})


def plain_value(value: object) -> str | int:
    """numpy scalars as Python str / int, so JSON and equality behave."""
    return value.item() if isinstance(value, np.generic) else value
