"""The user's workload: the batch and sequence length (or whole input shapes) candidates are
timed at, built from the bundle's real samples.

The ranking of candidates flips with the workload: on an AMX Xeon, MiniLM at batch 1 x 21
tokens ran fastest as ONNX Runtime dynamic INT8 (2.5x FP32), at 8 x 128 as OpenVINO bf16
(4.3x, where INT8 stayed at 2.5x). A deploy timed at a shape the user never runs can ship
the wrong artifact, so the shape is the user's to give and is recorded beside every verdict.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from frugalml.errors import InputError
from frugalml.runtime.manifest import TensorSpec
from frugalml.runtime.roles import InputRoles

_SHAPE = re.compile(r"^([A-Za-z0-9_.:/-]+)=(\d+(?:x\d+)*)$")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    """What one timed call holds: ``batch`` items, each input's axis 1 at ``sequence_length``
    where that axis is dynamic (token inputs), and ``shapes`` for inputs given whole."""

    batch: int = 1
    sequence_length: int | None = None
    shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()

    def __post_init__(self) -> None:
        """Raises InputError for sizes below 1."""
        sizes = [self.batch, *([] if self.sequence_length is None else [self.sequence_length]),
                 *(d for _, shape in self.shapes for d in shape)]
        if any(s < 1 for s in sizes):
            raise InputError(f"Workload sizes must be at least 1: {self.to_dict()}.")

    @property
    def is_default(self) -> bool:
        """Batch 1 at the data's natural shapes (what a deploy times without options)."""
        return self == Workload()

    def describe(self) -> str:
        """``batch 8 x 128 tokens``, ``batch 1`` or ``pixel_values 4x3x320x320``."""
        text = f"batch {self.batch}"
        if self.sequence_length:
            text += f" x {self.sequence_length} tokens"
        return ", ".join([text, *(f"{n} {'x'.join(map(str, s))}" for n, s in self.shapes)])

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {"batch": self.batch, "sequence_length": self.sequence_length,
                "shapes": {n: list(s) for n, s in self.shapes}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Workload:
        """Inverse of :meth:`to_dict`."""
        return cls(batch=int(data.get("batch", 1)), sequence_length=data.get("sequence_length"),
                   shapes=tuple((n, tuple(int(d) for d in s))
                                for n, s in dict(data.get("shapes", {})).items()))


def parse_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """``NAME=D0xD1x...`` (as ``--shape`` takes it) -> (name, dims).

    Raises:
        InputError: the text is not of that form.
    """
    match = _SHAPE.match(text.strip())
    if match is None:
        raise InputError(f"--shape {text!r} is not NAME=D0xD1x... (e.g. "
                         "pixel_values=4x3x224x224).")
    return match[1], tuple(int(d) for d in match[2].split("x"))


def workload_feeds(samples: Mapping[str, np.ndarray], inputs: tuple[TensorSpec, ...],
                   workload: Workload, roles: InputRoles | None = None
                   ) -> dict[str, np.ndarray]:
    """One call's feeds at ``workload``: the samples' real values repeated cyclically into the
    shapes asked for (token ids stay token ids, masks stay 0/1); with ``roles``, the batch on
    each input's batch axis and constants as they are.

    Raises:
        InputError: a shape names no input, or asks a fixed dimension the model does not have.
    """
    specs = {s.name: s for s in inputs}
    unknown = sorted(set(dict(workload.shapes)) - set(specs))
    if unknown:
        raise InputError(f"--shape names {unknown}, which the model does not take; its "
                         f"inputs are {sorted(specs)}.")
    given, roles = dict(workload.shapes), roles or InputRoles()
    feeds = {}
    for name, spec in specs.items():
        sample = np.asarray(samples[name])
        if name in roles.constants:
            feeds[name] = sample
            continue
        shape = given.get(name) or _shape_at(sample.shape, spec, workload, roles.axis(name))
        _check_fixed(spec, shape)
        feeds[name] = np.require(np.resize(sample, shape), requirements="C")  # 0-d stays 0-d
    return feeds


def _shape_at(sample: tuple[int, ...], spec: TensorSpec, workload: Workload, batch_axis: int
              ) -> tuple[int, ...]:
    """The sample's shape with the batch axis at ``workload.batch`` and, for a batch-first
    input, a dynamic axis 1 at ``workload.sequence_length``; a 0-d input stays as it is."""
    if not sample:
        return sample
    shape = list(sample)
    shape[batch_axis] = workload.batch
    dynamic_axis_1 = (batch_axis == 0 and len(spec.shape) > 1
                      and not isinstance(spec.shape[1], int))
    if workload.sequence_length and dynamic_axis_1:
        shape[1] = workload.sequence_length
    return tuple(shape)


def _check_fixed(spec: TensorSpec, shape: tuple[int, ...]) -> None:
    if len(shape) != len(spec.shape):
        raise InputError(f"Input {spec.name!r} has rank {len(spec.shape)} {list(spec.shape)}; "
                         f"the workload asks for {list(shape)}.")
    wrong = [i for i, (want, got) in enumerate(zip(spec.shape, shape, strict=True))
             if isinstance(want, int) and want > 0 and want != got]
    if wrong:
        raise InputError(f"Input {spec.name!r} has fixed dimensions {list(spec.shape)}; the "
                         f"workload asks for {list(shape)} (axes {wrong} differ). Change only "
                         "the dynamic axes (str in `frugal` signatures), or pass --shape.")
