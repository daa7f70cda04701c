"""The contract of a target kind: the artifact a target runs and how this host can run it."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from frugalml.targets.profiles import Target
from frugalml.targets.support import Probes, Support


@runtime_checkable
class TargetKind(Protocol):
    """One kind of artifact (``Target.artifact``): what it is built from, where it runs."""

    name: str       # the Target.artifact value this kind serves
    backend: str    # the runtime backend that runs the artifact on a desktop CPU

    def build(self, onnx_file: Path, target: Target, precision: str, work: Path
              ) -> tuple[dict[str, Path], dict[str, str]]:
        """The bundle's artifact files (bundle name -> built file in ``work``) and the runtime
        hints the target wants."""
        ...

    def runs(self, target: Target, missing: tuple[str, ...], probes: Probes) -> Support:
        """How this host runs ``target``, given what it lacks to run it natively."""
        ...

    def carries(self, output_format: str) -> bool:
        """True when a candidate written as ``output_format`` (onnx, openvino) can ship in
        this artifact."""
        ...
