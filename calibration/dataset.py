"""A calibration set over any source: split by identity hash, fingerprinted, streamed in batches.

A source (image folder, array file, text file, Python items) knows its items' identities,
labels and how to load a batch of them; this module adds what every source needs the same
way: the split that keeps evaluation away from calibration, the fingerprint that keys caches
and manifests, batching, and the check against the model's input signature.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np

from frugalml.calibration.batching import batched
from frugalml.calibration.split import ORDER, Split, hashed_split
from frugalml.core.records import digest
from frugalml.errors import CalibrationError

PARTS = ("calibration", "evaluation")


class Source(Protocol):
    """Items of one dataset: identities, labels, and batch loading."""

    kind: str

    def keys(self) -> tuple[str, ...]:
        """One identity per item (a relative path, a row's content hash, a text)."""
        ...

    def labels(self) -> tuple[int | None, ...]:
        """One label per item, or None where there is none."""
        ...

    def describe(self) -> dict[str, Any]:
        """Where the data comes from and how it is preprocessed (JSON-able)."""
        ...

    def content_digest(self) -> str:
        """sha256 over the items' content."""
        ...

    def load(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
        """Model inputs for these items, stacked on axis 0."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class CalibrationSet:
    """A source plus its split; iterate a part in batches, never the whole set at once."""

    source: Source
    split: Split
    salt: str
    split_rule: str

    @property
    def fingerprint(self) -> str:
        """Hash of content, preprocessing and split rule: the cache key downstream.

        Where the data lives is left out: the same files read from another path (or the same
        path spelled relative, then absolute) are the same set.
        """
        where = {k: v for k, v in self.source.describe().items() if k != "path"}
        return digest("calibration-set", self.source.kind, self.source.content_digest(),
                      where, self.salt, self.split_rule)

    def part_fingerprint(self, part: str) -> str:
        """Hash of the identities in one part (two sets with equal parts share it)."""
        keys = self.source.keys()
        return digest(part, [keys[i] for i in self._indices(part)])

    def summary(self) -> dict[str, Any]:
        """Sizes and fingerprints of both parts, for manifests and reports."""
        return {"fingerprint": self.fingerprint, "kind": self.source.kind,
                "source": self.source.describe(), "split": self.split_rule,
                "duplicates_dropped": self.split.duplicates_dropped,
                **{f"{p}_items": len(self._indices(p)) for p in PARTS},
                **{f"{p}_fingerprint": self.part_fingerprint(p) for p in PARTS}}

    def _indices(self, part: str) -> tuple[int, ...]:
        if part not in PARTS:
            raise CalibrationError(f"Unknown part {part!r}; use one of {PARTS}.")
        return getattr(self.split, part)

    def size(self, part: str) -> int:
        """How many items ``part`` holds."""
        return len(self._indices(part))

    def batches(self, part: str, *, batch_size: int, limit: int | None = None,
                by_length: bool = False) -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
        """Yield (inputs, labels) of ``batch_size`` items; labels are -1 where unknown.

        ``by_length``: a source whose items differ in length (``lengths``: texts) yields them
        grouped by length, so batches pad less (:mod:`frugalml.calibration.batching`); the
        items are the same, their order is not. Sources of one shape keep their order.

        Raises:
            CalibrationError: unknown part, bad batch size, or ``limit`` above the part's size.
        """
        indices = self._indices(part)
        if batch_size < 1:
            raise CalibrationError(f"batch_size must be at least 1, got {batch_size}.")
        if limit is not None and limit > len(indices):
            raise CalibrationError(
                f"{limit} {part} items were requested but the {part} part holds "
                f"{len(indices)}. Ask for fewer, or change the split.")
        chosen = indices[:limit] if limit else indices
        labels = self.source.labels()
        lengths = getattr(self.source, "lengths", None) if by_length else None
        for batch in batched(chosen, batch_size, lengths):
            feeds = self.source.load(batch)
            yield feeds, np.array([-1 if labels[i] is None else labels[i] for i in batch])

    def boxes(self, part: str) -> Iterator[np.ndarray] | None:
        """Each item's labelled boxes (``[K, 5]``, model-input pixels) in the order
        :meth:`batches` yields the part, or None when the source has no boxes."""
        reader = getattr(self.source, "boxes", None)
        if reader is None or reader(()) is None:
            return None
        return (reader([i])[0] for i in self._indices(part))

    def check_inputs(self, signature: Sequence[tuple[str, str, tuple[int | str, ...]]]) -> None:
        """Compare one loaded item with the model's ``(name, dtype, shape)`` inputs.

        Raises:
            CalibrationError: an input is missing or extra, or its rank, dtype or a static
                dimension differs; the message says what was given and what the model expects.
        """
        feeds, _ = next(self.batches("calibration", batch_size=1))
        expected = {name: (dtype, shape) for name, dtype, shape in signature}
        problems = [f"the model has no input {n!r}" for n in feeds if n not in expected]
        problems += [f"input {n!r} is missing from the set" for n in expected if n not in feeds]
        for name, array in feeds.items():
            if name not in expected:
                continue
            dtype, shape = expected[name]
            if str(array.dtype) != dtype:
                problems.append(f"{name!r} is {array.dtype}, the model expects {dtype}")
            if array.ndim != len(shape) or any(
                    isinstance(w, int) and w > 0 and w != g for w, g in zip(shape, array.shape,
                                                                            strict=False)):
                problems.append(f"{name!r} has shape {tuple(array.shape)}, the model expects "
                                f"{tuple(shape)}")
        if problems:
            raise CalibrationError(
                "The calibration set does not fit the model: " + "; ".join(problems)
                + ". Change the preprocessing (--preset, --crop/--resize or --letterbox, "
                "--layout) or the input name (--input-name).")


def make_set(source: Source, *, calibration_size: int | None = None,
             calibration_fraction: float | None = None, salt: str = "frugalml"
             ) -> CalibrationSet:
    """Split ``source`` by identity hash (see :func:`hashed_split`).

    Raises:
        CalibrationError: the source is empty or too small for the split.
    """
    keys = source.keys()
    if not keys:
        raise CalibrationError(f"The {source.kind} source {source.describe().get('path', '')} "
                               "holds no items: the calibration set would be empty.")
    if calibration_size is not None and calibration_size >= len(set(keys)):
        raise CalibrationError(
            f"{calibration_size} calibration items were requested but the source holds "
            f"{len(set(keys))} distinct items, leaving none for evaluation: the evaluation "
            "part (the items not used to calibrate) is what the quantized model is scored on "
            "against FP32, so it cannot be empty. Ask for fewer (--num, or calibration_size "
            "in Python), e.g. half the set.")
    split = hashed_split(keys, calibration_size=calibration_size,
                         calibration_fraction=calibration_fraction, salt=salt)
    rule = (f"size={calibration_size}" if calibration_size is not None
            else f"fraction={calibration_fraction}") + f", {ORDER}"
    return CalibrationSet(source=source, split=split, salt=salt, split_rule=rule)


def finite_or_raise(name: str, array: np.ndarray, where: str) -> np.ndarray:
    """Refuse NaN or Inf in floating inputs: calibration ranges would be meaningless.

    Raises:
        CalibrationError: naming the input, the item and how many values are bad.
    """
    if np.issubdtype(array.dtype, np.floating):
        bad = ~np.isfinite(array)
        if bad.any():
            raise CalibrationError(
                f"Input {name!r} of {where} holds {int(bad.sum())} NaN/Inf values; calibration "
                "ranges would be meaningless. Clean or drop those items.")
    return array
