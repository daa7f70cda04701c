"""The work of one sweep stage, as plain functions Ray runs as tasks (no Ray import here).

Every stage is the deploy engine's own call: export and quantize through its content-addressed
cache (``deploy.stages``), bundling through ``targets.compile.build_bundle``, timing and
profiles through ``deploy.timing``; this module adapts them to Ray: paths as strings, results
as small dicts.

Each takes and returns small JSON-able dicts, so results travel through Ray's object store and
land in cell records unchanged. Export and quantize are content-addressed cache entries under
``artifacts/`` (see ``_cache.cached_stage``): a task whose key is already built returns at once
with ``reused: True``. Bundles travel to device nodes as tar bytes and are checked against
their manifest's sha256 on arrival before anything runs.
"""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from frugalml.calibration.descriptor import open_descriptor
from frugalml.core.records import write_json_atomic
from frugalml.deploy.candidates import CANDIDATES, FUSED, CandidateSpec, candidates_for
from frugalml.deploy.families import get_family, names
from frugalml.deploy.plan import describe, export_task, source_format
from frugalml.deploy.stages import export_cached, fuse_cached, quantize_cached, source_digest
from frugalml.deploy.timing import against_fp32, fresh_profile
from frugalml.errors import BundleError, SweepError
from frugalml.export import ExportedModel
from frugalml.export.model_info import ModelInfo, onnxruntime_operators
from frugalml.runtime import manifest_digest
from frugalml.sweep.plan import validation_feeds
from frugalml.targets import get_target
from frugalml.targets.compile import build_bundle

_COMPILED = "compiled.json"  # a finished compile stage: its bundle and verification


def export_stage(artifacts: str, key: str, model: str, data: str) -> dict[str, Any]:
    """Export ``model`` as deploy does (a decoder with its KV cache), checked against its
    source on the data's first evaluation items (an ONNX file is checked, and simplified only
    if outputs stay the same), and describe it once (its ModelInfo: task, family, structure)
    for every cell of the model."""
    started = time.perf_counter()
    record, reused = export_cached(Path(model), Path(artifacts), key,
                                   validation=[validation_feeds(data)], task=export_task(model))
    info = describe(record, open_descriptor(Path(data)), None, model, source_digest(model))
    return {"path": str(record.path), "reused": reused, "exporter": record.exporter,
            "record": record.to_dict(), "model_info": info.to_dict(),
            "seconds": round(time.perf_counter() - started, 2)}


def quantize_stage(artifacts: str, key: str, exported: dict[str, Any], data: str,
                   candidate: dict[str, Any], target: str, eval_items: int) -> dict[str, Any]:
    """Build deploy's ``candidate`` (by name) for ``target`` and score it against FP32 on the
    evaluation split; a model over its budget is kept (the sweep reports it) rather than
    failing the cell. A candidate of the fused graph is built from the export with ONNX
    Runtime's fusions (cached beside it) and scored against the export, as deploy does."""
    started = time.perf_counter()
    spec, data_set = candidate_spec(candidate), open_descriptor(Path(data))
    info, reference = ModelInfo.from_dict(exported["model_info"]), None
    _check_applies(spec, info, target)
    if spec.graph == FUSED:
        fused, _ = fuse_cached(Path(artifacts), ExportedModel.from_dict(exported["record"]),
                               [validation_feeds(data)])
        info, reference = info.rewritten(fused.path), Path(exported["path"])
    record, reused = quantize_cached(
        Path(artifacts), key, info, data_set, recipe=spec.recipe_for({}),
        backend=spec.backend, target=target, output_format=spec.output_format,
        eval_items=eval_items, reference=reference)
    return {"path": str(record.path), "reused": reused, "precision": record.precision,
            "size_bytes": record.size_bytes, "accuracy": record.accuracy,
            "seconds": round(time.perf_counter() - started, 2)}


class DoesNotApply(SweepError):
    """The cell's candidate is not one deploy would try for this model on this target (a
    transformer fusion on a CNN, the GGUF's own blocks for a model that came as ONNX): a
    settled outcome of the cell, not a failure to retry."""


def _check_applies(spec: CandidateSpec, info: ModelInfo, target: str) -> None:
    """Deploy's rule for which candidates apply (family, source format, target kind and
    capabilities); the FP32 cell and recipe entries apply to every model.

    Raises:
        DoesNotApply: with what the model is and what the candidate is for.
    """
    if CANDIDATES.get(spec.name) is not spec:  # FP32 and recipe entries: every model
        return
    chosen = get_target(target)
    family, fmt = info.family, source_format(info)
    if not candidates_for(family, chosen, (spec.name,), source_format=fmt):
        suited = [n for n in names() if get_family(n).suits(spec.name)]
        raise DoesNotApply(
            f"{spec.name} does not apply to a {family} model from {fmt} on {chosen.name} "
            f"(it is for {', '.join(suited)} models from "
            f"{', '.join(sorted(spec.sources))}); deploy would not try it either.")


def _check_openvino_reads(model: Path) -> None:
    """An ONNX graph with ONNX Runtime's own operators (a decoder's GroupQueryAttention, a
    fused Attention, MatMulNBits) is not OpenVINO's to run, whatever the candidate.

    Raises:
        DoesNotApply: naming the operators.
    """
    theirs = onnxruntime_operators(model)
    if theirs:
        raise DoesNotApply(f"the graph holds ONNX Runtime operators OpenVINO does not read "
                           f"({', '.join(theirs[:4])}); run it with backend onnxruntime.")


def candidate_spec(candidate: dict[str, Any]) -> CandidateSpec:
    """The CandidateSpec of a cell's candidate (its ``CandidateEntry.to_dict()``): deploy's
    own when it is one (by name and construction), else a recipe entry's."""
    built = {k: v for k, v in candidate.items() if k not in ("label", "graph")}
    own = CANDIDATES.get(candidate["name"])
    if own is not None and own.to_dict() == built and own.graph == candidate["graph"]:
        return own
    return CandidateSpec(name=candidate["name"], recipe=candidate["recipe"],
                         backend=candidate["backend"], output_format=candidate["format"],
                         default=True,
                         options=candidate.get("options", {}))


def compile_stage(artifacts: str, key: str, quantized: dict[str, Any], data: str, target: str,
                  backend: str, name: str, samples: int) -> dict[str, Any]:
    """Bundle the quantized model for ``target`` and ``backend`` as deploy does
    (``targets.compile.build_bundle``), verified here however this host can run it
    (natively, under emulation, desktop check, or "not verified here")."""
    started = time.perf_counter()
    if backend == "openvino":
        _check_openvino_reads(Path(quantized["path"]))
    out = Path(artifacts) / f"compile-{key[:24]}"
    done = out / _COMPILED
    reused = done.is_file()
    if reused:
        result = json.loads(done.read_text())
    else:
        feeds = next(open_descriptor(Path(data)).batches("evaluation", batch_size=samples))[0]
        chosen = get_target(target)
        dest = out / (f"{name}-{chosen.name}"
                      + ("" if backend == chosen.backend else f"-{backend}"))
        precision, verification = build_bundle(Path(quantized["path"]).parent, dest,
                                               target=chosen, samples=feeds, backend=backend)
        result = {"bundle": str(dest), "precision": precision, "verification": verification}
        write_json_atomic(done, result)
    return {"bundle": result["bundle"], "digest": manifest_digest(Path(result["bundle"])),
            "reused": reused, "verification": result["verification"],
            "seconds": round(time.perf_counter() - started, 2)}


def pack_bundle(compiled: dict[str, Any]) -> bytes:
    """The bundle folder as tar bytes, to travel through Ray's object store."""
    buffer = io.BytesIO()
    bundle = Path(compiled["bundle"])
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(bundle, arcname=bundle.name)
    return buffer.getvalue()


def _unpack(archive: bytes, compiled: dict[str, Any], into: Path) -> Path:
    """Unpack a bundle shipped to this node; refuse it unless its manifest has the sha256
    recorded at build time (the runtime then checks every file against the manifest)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as e:
        raise BundleError(f"The bundle {compiled['bundle']} arrived unreadable: {e}.") from e
    bundle = into / Path(compiled["bundle"]).name
    arrived = manifest_digest(bundle)
    if arrived != compiled["digest"]:
        raise BundleError(f"The bundle {compiled['bundle']} arrived altered: manifest "
                          f"sha256 {arrived[:16]}, built as {compiled['digest'][:16]}.")
    return bundle


def bench_stage(archive: bytes, compiled: dict[str, Any], threads: int,
                bench: dict[str, int], baseline: tuple[bytes, dict[str, Any]] | None = None
                ) -> dict[str, Any]:
    """Unpack the bundle on this (device) node and profile it in a fresh process; with the
    FP32 sibling's bundle as ``baseline``, also judge it against FP32 by the speed protocol
    (both in one process here, interleaved), the verdict the report's "x FP32" reads. The
    measurements are deploy's own (``deploy.timing``)."""
    with tempfile.TemporaryDirectory(prefix="frugal-sweep-") as tmp:
        bundle = _unpack(archive, compiled, Path(tmp) / "candidate")
        result: dict[str, Any] = {"profile": fresh_profile(
            bundle, runs=bench["runs"], threads=threads, warmup=bench["warmup"])}
        if baseline is not None:
            fp32 = _unpack(*baseline, Path(tmp) / "baseline")
            result["speed"] = against_fp32(
                fp32, bundle, threads=threads,
                time_cap_s=float(bench.get("speed_cap_s", 60))).to_dict()
    return result
