"""The torch -> ONNX exporters, tried in a fixed order; the first that writes a file wins.

Order: torch's dynamo-based exporter (``torch.export``, the maintained one), then the
TorchScript tracer (deprecated, but it still exports modules ``torch.export`` rejects), then,
for Hugging Face models only, Optimum's exporter. Every failure is diagnosed and kept.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from frugalml.core.interrupt import reraise_if_interrupted
from frugalml.errors import ExportError
from frugalml.export.diagnose import ExporterFailure, diagnose
from frugalml.export.lean_rewrites import lean_rewrites

# Newest opset that both ONNX Runtime and OpenVINO run well; blockwise int4/int8 DQ needs >= 21.
DEFAULT_OPSET = 21
# The TorchScript exporter stops at opset 20.
TORCHSCRIPT_MAX_OPSET = 20
# Upper bounds torch.export needs for symbolic dims it cannot bound itself.
DEFAULT_DIM_MAX = {"batch": 1024, "sequence": 512}


@dataclasses.dataclass(frozen=True, slots=True)
class GraphSpec:
    """Names and dynamic axes of the graph to export.

    ``dynamic_axes`` maps an input or output name to ``{axis: dim_name}``; inputs sharing a dim
    name share one symbolic size. Outputs not listed get axis 0 as ``batch`` when any input has
    a ``batch`` axis.
    """

    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic_axes: Mapping[str, Mapping[int, str]] = dataclasses.field(default_factory=dict)
    dim_max: Mapping[str, int] = dataclasses.field(default_factory=lambda: dict(DEFAULT_DIM_MAX))

    def torchscript_axes(self) -> dict[str, dict[int, str]]:
        """Dynamic axes for every input and output, in the TorchScript exporter's form."""
        axes = {name: dict(a) for name, a in self.dynamic_axes.items()}
        if any("batch" in a.values() for n, a in axes.items() if n in self.input_names):
            for name in self.output_names:
                axes.setdefault(name, {0: "batch"})
        return axes

    def dynamo_shapes(self) -> tuple[dict[int, Any] | None, ...]:
        """``dynamic_shapes`` for ``torch.onnx.export(dynamo=True)``, one entry per input."""
        import torch

        dims: dict[str, Any] = {}
        shapes = []
        for name in self.input_names:
            axes = self.dynamic_axes.get(name, {})
            for dim in axes.values():
                if dim not in dims:
                    dims[dim] = torch.export.Dim(dim, max=self.dim_max.get(dim, 2**20))
            shapes.append({axis: dims[dim] for axis, dim in axes.items()} or None)
        return tuple(shapes)


@dataclasses.dataclass(frozen=True, slots=True)
class Exporter:
    """One way of writing ``path``; ``run`` returns the opset it actually used."""

    name: str
    run: Callable[[Path], int]


@contextlib.contextmanager
def _discard_native_output() -> Iterator[None]:
    """Point file descriptors 1 and 2 at /dev/null: the TorchScript exporter prints graph dumps
    from C++, which Python-level redirection cannot catch."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
    """Silence the exporters' progress prints, warnings and graph dumps; errors still raise."""
    loggers = [logging.getLogger(name) for name in ("torch", "torch.onnx", "torch.export",
                                                     "torch.fx", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()), _discard_native_output():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def torch_exporters(module: Any, args: tuple[Any, ...], spec: GraphSpec,
                    opset: int) -> list[Exporter]:
    """The dynamo and TorchScript exporters for ``module(*args)``."""
    import torch

    # Protobuf cannot hold a graph over 2 GB: larger weights go to <name>.data beside it.
    large = sum(p.numel() * p.element_size() for p in module.parameters()) > 1_800_000_000

    def dynamo(path: Path) -> int:
        with quiet_exporter(), lean_rewrites():
            torch.onnx.export(
                module, args, str(path), input_names=list(spec.input_names),
                output_names=list(spec.output_names), opset_version=opset,
                dynamic_shapes=spec.dynamo_shapes(), external_data=large, dynamo=True)
        return opset

    def torchscript(path: Path) -> int:
        version = min(opset, TORCHSCRIPT_MAX_OPSET)
        with quiet_exporter():
            torch.onnx.export(
                module, args, str(path), input_names=list(spec.input_names),
                output_names=list(spec.output_names), opset_version=version,
                dynamic_axes=spec.torchscript_axes(), dynamo=False)
        return version

    return [Exporter("torch.onnx.dynamo", dynamo), Exporter("torch.onnx.torchscript", torchscript)]


def run_in_order(exporters: list[Exporter], path: Path) -> tuple[Exporter, int,
                                                                 tuple[ExporterFailure, ...]]:
    """Run ``exporters`` until one writes ``path``.

    Raises:
        ExportError: every exporter failed; the message lists each with its diagnosis.
    """
    failures: list[ExporterFailure] = []
    for exporter in exporters:
        path.unlink(missing_ok=True)
        try:
            opset = exporter.run(path)
        except Exception as e:  # exporters raise many unrelated types; all are diagnosed
            reraise_if_interrupted(e)
            failures.append(diagnose(exporter.name, e))
            continue
        if path.is_file():
            return exporter, opset, tuple(failures)
    path.unlink(missing_ok=True)
    raise ExportError(
        "Every exporter failed (" + ", ".join(e.name for e in exporters) + "):\n  - "
        + "\n  - ".join(f.line() for f in failures)
    )
