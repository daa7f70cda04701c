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
from frugalml.deploy.stages import export_cached, quantize_cached
from frugalml.errors import BundleError

_VALIDATION_ITEMS = 4
_COMPILED = "compiled.json"  # a finished compile stage: its bundle and verification


def export_stage(artifacts: str, key: str, model: str, data: str) -> dict[str, Any]:
    """Export ``model`` to ONNX, checked against its source on the data's first evaluation
    items (an ONNX file is checked, and simplified only if outputs stay the same)."""
    started = time.perf_counter()
    feeds = next(open_descriptor(Path(data)).batches("evaluation",
                                                     batch_size=_VALIDATION_ITEMS))[0]
    record, reused = export_cached(Path(model), Path(artifacts), key, validation=[feeds])
    return {"path": str(record.path), "reused": reused, "exporter": record.exporter,
            "seconds": round(time.perf_counter() - started, 2)}


def quantize_stage(artifacts: str, key: str, exported: dict[str, Any], data: str,
                   recipe: dict[str, Any], target: str, eval_items: int) -> dict[str, Any]:
    """Quantize for ``target``'s format and score against FP32 on the evaluation split; a
    model over its budget is kept (the sweep reports it) rather than failing the cell."""
    from frugalml.quantize.recipe import get_recipe

    started = time.perf_counter()
    chosen = get_recipe(recipe["recipe"], **recipe["options"])
    record, reused = quantize_cached(
        Path(artifacts), key, Path(exported["path"]), open_descriptor(Path(data)),
        recipe=chosen, backend=recipe["quantizer"], target=target, output_format="onnx",
        eval_items=eval_items)
    return {"path": str(record.path), "reused": reused, "precision": record.precision,
            "size_bytes": record.size_bytes, "accuracy": record.accuracy,
            "seconds": round(time.perf_counter() - started, 2)}


def compile_stage(artifacts: str, key: str, quantized: dict[str, Any], data: str, target: str,
                  backend: str, name: str, samples: int) -> dict[str, Any]:
    """Bundle the quantized model for ``target`` and ``backend`` as deploy does
    (``targets.compile.build_bundle``), verified here however this host can run it
    (natively, under emulation, desktop check, or "not verified here")."""
    from frugalml.core.records import write_json_atomic
    from frugalml.runtime import manifest_digest
    from frugalml.targets import get_target
    from frugalml.targets.compile import build_bundle

    started = time.perf_counter()
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
    from frugalml.runtime import manifest_digest

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
    from frugalml.deploy.timing import against_fp32, fresh_profile

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
