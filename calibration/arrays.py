"""Arrays as calibration sources: ``.npy`` / ``.npz`` files (never unpickled) or Python items.

A ``.npy`` file is memory-mapped, so rows are read per batch; an ``.npz`` (a zip) is read
array by array when opened. Arrays named ``label`` or ``labels`` are labels, not inputs.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.calibration.dataset import finite_or_raise
from frugalml.errors import CalibrationError

LABEL_NAMES = ("label", "labels")


class ArraySource:
    """Named arrays sharing a leading item axis."""

    kind = "arrays"

    def __init__(self, arrays: Mapping[str, np.ndarray], *, labels: np.ndarray | None = None,
                 origin: str = "python") -> None:
        """Check the arrays line up.

        Raises:
            CalibrationError: no arrays, or arrays with different item counts.
        """
        if not arrays:
            raise CalibrationError(f"{origin} holds no input arrays.")
        scalars = sorted(name for name, a in arrays.items() if a.ndim == 0)
        if scalars:
            raise CalibrationError(f"Arrays {scalars} in {origin} are scalars (0-d); every input "
                                   "needs a leading item axis, one row per item.")
        counts = {name: (a.shape[0] if a.ndim else 0) for name, a in arrays.items()}
        if len(set(counts.values())) != 1:
            raise CalibrationError(f"Arrays in {origin} hold different item counts {counts}; "
                                   "every input needs one row per item.")
        self.arrays, self.origin = dict(arrays), origin
        self._labels = None if labels is None else np.asarray(labels).reshape(-1)
        self._keys = self._row_keys()

    def _row_keys(self) -> tuple[str, ...]:
        count = next(iter(self.arrays.values())).shape[0]
        keys = []
        for start in range(0, count, 1024):  # hash rows in chunks: memory-mapped data stays lazy
            chunk = {n: finite_or_raise(n, np.ascontiguousarray(a[start:start + 1024]),
                                        f"rows {start}..{min(start + 1024, count) - 1} of "
                                        f"{self.origin}")
                     for n, a in sorted(self.arrays.items())}
            for row in range(len(next(iter(chunk.values())))):
                h = hashlib.sha256()
                for name, a in chunk.items():
                    h.update(name.encode() + a[row].tobytes())
                keys.append(h.hexdigest())
        return tuple(keys)

    def keys(self) -> tuple[str, ...]:
        """Content hash of each row (identical rows are one item)."""
        return self._keys

    def labels(self) -> tuple[int | None, ...]:
        """Labels if an array of them was given."""
        if self._labels is None:
            return (None,) * len(self._keys)
        return tuple(int(v) for v in self._labels)

    def describe(self) -> dict[str, Any]:
        """Origin, input names, dtypes and per-item shapes."""
        return {"path": self.origin, "inputs": {n: [str(a.dtype), list(a.shape[1:])]
                                                for n, a in self.arrays.items()}}

    def content_digest(self) -> str:
        """sha256 over the row hashes (in order) and the labels."""
        labels = b"" if self._labels is None else self._labels.astype(np.int64).tobytes()
        return hashlib.sha256("".join(self._keys).encode() + labels).hexdigest()

    def load(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
        """Rows ``indices`` of every input (checked finite when the source was opened)."""
        idx = np.asarray(indices)
        return {n: np.ascontiguousarray(a[idx]) for n, a in self.arrays.items()}


def read_arrays(path: Path, *, input_name: str | None = None) -> ArraySource:
    """Open a ``.npy`` (memory-mapped) or ``.npz`` without ever unpickling.

    Raises:
        CalibrationError: missing file, object arrays (pickles), or an unreadable file.
    """
    arrays = load_arrays(path, input_name=input_name)
    labels = next((arrays.pop(n) for n in LABEL_NAMES if n in arrays), None)
    return ArraySource(arrays, labels=labels, origin=str(path))


def load_arrays(path: Path, *, input_name: str | None = None) -> dict[str, np.ndarray]:
    """Every array of a ``.npy`` (memory-mapped, named ``input_name`` or the file's stem) or
    ``.npz``, never unpickled.

    Raises:
        CalibrationError: missing file, object arrays (pickles), or an unreadable file.
    """
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"{path} does not exist.")
    try:
        if path.suffix == ".npy":
            arrays = {input_name or path.stem: np.load(path, mmap_mode="r", allow_pickle=False)}
        else:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
    except ValueError as e:
        if "pickle" not in str(e) and "Python objects" not in str(e):
            raise CalibrationError(f"Cannot read {path}: {str(e).rstrip('.')}. It is truncated "
                                   "or not an array file written by np.save / np.savez.") from e
        raise CalibrationError(
            f"{path} holds Python objects (a pickle), which frugalml never loads: it could run "
            "code. Save plain numeric arrays with np.save / np.savez.") from e
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise CalibrationError(f"Cannot read {path}: {e}. It may be truncated.") from e
    return arrays


def from_items(items: Iterable[Mapping[str, np.ndarray]], labels: Sequence[int] | None = None
               ) -> ArraySource:
    """A source from Python dicts (one item each, no batch axis), for API users.

    Raises:
        CalibrationError: no items, or items with different input names.
    """
    rows = list(items)
    if not rows:
        raise CalibrationError("The iterable of calibration items is empty.")
    names = set(rows[0])
    if any(set(r) != names for r in rows):
        raise CalibrationError("Every calibration item must hold the same input names; "
                               f"the first holds {sorted(names)}.")
    arrays = {n: np.stack([np.asarray(r[n]) for r in rows]) for n in sorted(names)}
    return ArraySource(arrays, labels=None if labels is None else np.asarray(labels))
