"""The stage calls every face of the path shares (deploy, demo, sweep): export and quantize as
content-addressed cache entries, and the bundle build. Each is keyed by the hash of its
inputs, so a re-run, another target with the same INT8 format, or a sweep cell that agrees on
them reuses the finished entry (see ``_cache.cached_stage``)."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from frugalml import __version__
from frugalml.core.cache import cached_stage
from frugalml.core.records import digest, file_sha256, tree_digest
from frugalml.export import ExportedModel, export
from frugalml.export.fusion import fuse_for_onnxruntime
from frugalml.export.huggingface import OPSET
from frugalml.export.records import SCHEMA_VERSION
from frugalml.quantize import QuantizedModel
from frugalml.quantize.api import quantize
from frugalml.runtime.formats import is_ir, model_files


def source_digest(model: Any) -> str | None:
    """Content digest of a model path (file, IR pair, or directory); None for a module, which
    is exported every time (its weights live in Python, not on disk)."""
    if not isinstance(model, (str, Path)):
        return None
    path = Path(model)
    if path.is_dir():
        return tree_digest(path)
    return digest(*map(file_sha256, model_files(path))) if is_ir(path) else file_sha256(path)


def export_cached(model: Any, cache: Path, key: str | None, *,
                  validation: Sequence[Mapping[str, np.ndarray]],
                  example: Mapping[str, np.ndarray] | None = None,
                  task: str | None = None) -> tuple[Any, bool]:
    """Export ``model`` to ONNX (or check an ONNX / IR), validated on ``validation``
    (``task``: the export's, e.g. ``text-generation-with-past`` for a decoder's KV cache).

    Returns:
        (ExportedModel, True when it came from the cache)
    """
    # An IR stays IR (it has no way back to ONNX); everything else becomes ONNX.
    ir = isinstance(model, (str, Path)) and is_ir(model)

    def build(tmp: Path) -> Any:
        return export(model, tmp / "export", example=example, validation=list(validation),
                      format="openvino" if ir else "onnx", task=task)

    if key is None:
        return build_uncached(cache, build), False
    return cached_stage(cache, "export", key, build, ExportedModel.from_dict)


def build_uncached(cache: Path, build: Any) -> Any:
    """A torch module's export: into a fresh folder under ``cache`` named by time."""
    cache.mkdir(parents=True, exist_ok=True)
    return build(Path(tempfile.mkdtemp(prefix="export-module-", dir=cache)))


def toolchain(*distributions: str) -> tuple[str, ...]:
    """``name==version`` of frugalml and each installed distribution: a cache entry built by
    another ONNX Runtime, NNCF or torch is not the one this install would build."""
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "absent"

    return (f"frugalml=={__version__}", *(f"{n}=={version(n)}" for n in distributions))


def feeds_digest(feeds: Sequence[Mapping[str, np.ndarray]]) -> str:
    """sha256 of input batches: names, dtypes, shapes and bytes, in order."""
    h = hashlib.sha256()
    for batch in feeds:
        for name in sorted(batch):
            array = np.ascontiguousarray(batch[name])
            h.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
            h.update(array.tobytes())
    return h.hexdigest()


def export_key(source: str, validation: str, task: str | None = None) -> str:
    """Export entries depend on the source bytes, the inputs it is checked on
    (``validation``: their :func:`feeds_digest`, not the whole data set's fingerprint, so a
    run with another calibration size finds the same entry), the exporter (and the libraries
    it runs) and the task asked for (a decoder with or without its cache)."""
    return digest("export", source, validation, OPSET, SCHEMA_VERSION,
                  *toolchain("torch", "transformers", "onnx", "onnxscript", "onnxruntime"),
                  *([task] if task else []))


def quantize_key(exported_digest: str, recipe_digest: str, backend: str, fmt: str,
                 int8_format: str, scoring: str, data_fingerprint: str, eval_items: int,
                 task: str | None) -> str:
    """Quantize entries depend on everything that changes the model or its scores, the
    quantizers' and runtimes' versions among them."""
    return digest("quantize", exported_digest, recipe_digest, backend, fmt, int8_format,
                  scoring, data_fingerprint, eval_items, task,
                  *toolchain("onnxruntime", "nncf", "openvino", "onnx"))


def quantize_cached(cache: Path, key: str, exported: Any, data: Any, *, recipe: Any,
                    backend: str, target: Any, output_format: str, eval_items: int,
                    task: str | None = None, steps: Any = None,
                    reference: Path | None = None,
                    deadline: float | None = None) -> tuple[Any, bool]:
    """Quantize ``exported`` (its ModelInfo, or a model path) and score against FP32 on the
    evaluation split; a model over its budget is kept (marked so) for the caller to report,
    not raised. Scoring stops at ``deadline``; an entry scored short that way is rebuilt on
    the next call rather than reused.

    Returns:
        (QuantizedModel, True when it came from the cache)
    """
    return cached_stage(
        cache, "quantize", key,
        lambda tmp: quantize(exported, data, tmp / "quantized", recipe=recipe, backend=backend,
                             target=target, output_format=output_format, eval_items=eval_items,
                             allow_over_budget=True, task=task, steps=steps,
                             reference=reference, deadline=deadline),
        QuantizedModel.from_dict, reusable=_scored_whole)


def _scored_whole(record: Mapping[str, Any]) -> bool:
    """False for an entry whose scoring the time budget cut short."""
    return not (record.get("accuracy") or {}).get("stopped_after_items")


def fuse_cached(cache: Path, exported: Any, feeds: Sequence[Mapping[str, np.ndarray]]
                ) -> tuple[Any, bool]:
    """The export with transformer fusions for ONNX Runtime, checked against it on ``feeds``.

    Returns:
        (ExportedModel of the fused graph, True when it came from the cache)

    Raises:
        ExportError: nothing fused, or the fused graph's outputs differ.
    """
    import onnxscript

    key = digest("fuse", exported.digest, onnxscript.__version__)
    return cached_stage(cache, "fuse", key,
                        lambda tmp: fuse_for_onnxruntime(exported, tmp / "fused", feeds),
                        ExportedModel.from_dict)
