"""torch.nn.Module -> ONNX through the exporter chain, validated against torch on real inputs."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.errors import ExportError
from frugalml.export.exporters import (
    DEFAULT_OPSET,
    Exporter,
    GraphSpec,
    run_in_order,
    torch_exporters,
)
from frugalml.export.onnx_file import load_checked, opset_of, save_onnx
from frugalml.export.records import ExportedModel, items_in
from frugalml.export.repro import write_repro
from frugalml.export.simplify import run_onnx, simplify
from frugalml.export.validate import DEFAULT_TOLERANCE, Tolerance, compare_outputs

Feeds = Mapping[str, np.ndarray]
MODEL_NAME = "model.onnx"


def torch_outputs(module: Any, feeds: Sequence[Feeds], spec: GraphSpec) -> list[dict[str,
                                                                                     np.ndarray]]:
    """Run ``module`` on each feed dict (inputs in ``spec`` order); outputs by ``spec`` name."""
    import torch

    results = []
    with torch.no_grad():
        for f in feeds:
            out = module(*(torch.from_numpy(np.ascontiguousarray(f[n])) for n in spec.input_names))
            out = (out,) if isinstance(out, torch.Tensor) else tuple(out)
            if len(out) != len(spec.output_names):
                raise ExportError(
                    f"The module returns {len(out)} outputs but {len(spec.output_names)} output "
                    f"names were given ({', '.join(spec.output_names)}). Name every output.")
            results.append({n: t.detach().numpy() for n, t in zip(spec.output_names, out,
                                                                   strict=True)})
    return results


def count_outputs(module: Any, example: Feeds) -> int:
    """How many tensors ``module`` returns for ``example`` (inputs in dict order)."""
    import torch

    with torch.no_grad():
        out = module(*(torch.from_numpy(np.ascontiguousarray(v)) for v in example.values()))
    return 1 if isinstance(out, torch.Tensor) else len(out)


def check_feeds(feeds: Sequence[Feeds], spec: GraphSpec, what: str) -> None:
    """Every feed dict must hold exactly the graph's inputs, as numpy arrays.

    Raises:
        ExportError: no feeds, or a feed with missing, extra or non-array inputs.
    """
    if not feeds:
        raise ExportError(f"Export needs at least one {what} batch of real inputs; none given.")
    for i, f in enumerate(feeds):
        missing = [n for n in spec.input_names if n not in f]
        extra = [n for n in f if n not in spec.input_names]
        bad = [n for n in spec.input_names if n in f and not isinstance(f[n], np.ndarray)]
        if missing or extra or bad:
            raise ExportError(
                f"{what} batch {i}: inputs must be numpy arrays named {list(spec.input_names)}; "
                f"missing {missing}, unexpected {extra}, not arrays {bad}.")


def export_module(
    module: Any, example: Feeds, out_dir: Path, spec: GraphSpec, *,
    validation: Sequence[Feeds] = (), tolerance: Tolerance = DEFAULT_TOLERANCE,
    opset: int = DEFAULT_OPSET, source: str = "", source_digest: str = "",
    extra_exporters: Sequence[Exporter] = (), simplify_graph: bool = True,
    repro_dir: Path | None = None, repro_construct: str | None = None,
) -> ExportedModel:
    """Export ``module`` to ``out_dir/model.onnx`` and prove it matches torch.

    ``example`` drives tracing; ``validation`` (real inputs, ideally several batch and sequence
    sizes) is compared output by output, together with ``example``. ``out_dir`` must be a
    directory this call owns (callers stage it and rename it into place).

    Raises:
        ExportError: every exporter failed (a reproduction script is written to
            ``repro_dir``, by default ``<out_dir>-repro`` beside it), or the exported model
            differs from torch beyond ``tolerance``.
    """
    import torch

    feeds = [dict(example), *validation]
    check_feeds(feeds, spec, "validation")
    module = module.eval()
    started = time.perf_counter()
    path = out_dir / MODEL_NAME
    args = tuple(torch.from_numpy(np.ascontiguousarray(example[n])) for n in spec.input_names)
    exporters = [*torch_exporters(module, args, spec, opset), *extra_exporters]
    try:
        exporter, used_opset, failures = run_in_order(exporters, path)
    except ExportError as e:
        repro = write_repro(repro_dir or out_dir.with_name(f"{out_dir.name}-repro"), module,
                            example, spec.input_names, spec.output_names, opset,
                            repro_construct)
        raise ExportError(f"{e}\nA reproduction script was written to {repro}.") from e
    reference = torch_outputs(module, feeds, spec)
    return finish_onnx(
        path, feeds, reference, spec, tolerance, exporter=exporter.name, opset=used_opset,
        attempts=tuple(f.line() for f in failures), simplify_graph=simplify_graph,
        source=source or type(module).__qualname__, source_digest=source_digest,
        started=started)


def finish_onnx(path: Path, feeds: Sequence[Feeds], reference: Sequence[Mapping[str, np.ndarray]],
                spec: GraphSpec, tolerance: Tolerance, *, exporter: str, opset: int,
                attempts: tuple[str, ...], simplify_graph: bool, source: str,
                source_digest: str, started: float) -> ExportedModel:
    """Check, validate, optionally simplify and re-save an exported file; build its record."""
    model = load_checked(path)
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in initializers]
    outputs = [o.name for o in model.graph.output]
    if inputs != list(spec.input_names) or outputs != list(spec.output_names):
        raise ExportError(
            f"{exporter} wrote a graph with inputs {inputs} and outputs {outputs}; expected "
            f"{list(spec.input_names)} and {list(spec.output_names)}.")
    simplified = False
    if simplify_graph:
        model, simplified = simplify(model, feeds, reference, spec.output_names, tolerance)
        if simplified:
            save_onnx(model, path)
    try:
        checks = compare_outputs(reference, run_onnx(path, feeds, spec.output_names), tolerance,
                                 feeds)
    except ExportError as e:
        tried = "".join(f"\n  - {a}" for a in attempts)
        raise ExportError(f"{e}\nExported by {exporter}; exporters that failed before it:"
                          f"{tried or ' none'}") from e
    return ExportedModel(
        path=path, source=source, source_digest=source_digest, exporter=exporter,
        opset=opset_of(model) or opset, input_names=spec.input_names,
        output_names=spec.output_names, checks=checks, inputs_used=items_in(feeds),
        attempts=attempts, simplified=simplified,
        size_bytes=sum(p.stat().st_size for p in path.parent.glob(f"{path.name}*")),
        seconds=round(time.perf_counter() - started, 3),
    )

