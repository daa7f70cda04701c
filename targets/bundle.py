"""Assemble bundles: model, samples and manifest, written into a staging dir (see _atomic)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.core.records import file_sha256, write_json_atomic
from frugalml.errors import BundleError
from frugalml.export.model_info import recorded
from frugalml.runtime.backends import get_backend
from frugalml.runtime.backends.onnxruntime import SPINNING_HINT
from frugalml.runtime.capabilities import BF16, FP32, HINT_OF_PRECISION
from frugalml.runtime.formats import ir_weights
from frugalml.runtime.host import library_versions, read_host
from frugalml.runtime.manifest import MANIFEST_NAME, Manifest, TensorSpec, onnx_dtype
from frugalml.runtime.numerics import max_abs_error, row_cosine
from frugalml.targets.kernels import ir_kernel_counts, kernel_counts
from frugalml.targets.profiles import Target

MODEL_NAME = "model.onnx"
SAMPLES_NAME = "samples.npz"
_LIBRARIES = ("onnx", "onnxruntime", "torch", "transformers", "numpy", "frugalml")


def _specs(values: list[Any]) -> tuple[TensorSpec, ...]:
    return tuple(TensorSpec(name=v.name, dtype=onnx_dtype(v.type),
                            shape=tuple(d if isinstance(d, int) else str(d) for d in v.shape))
                 for v in values)


def assemble(
    staging: Path, *, name: str, model_file: Path, target: Target, precision: str,
    samples: dict[str, np.ndarray], source: dict[str, Any], recipe: dict[str, Any],
    calibration: dict[str, Any] | None, metrics: dict[str, Any],
    sample_tolerance: dict[str, float], artifact: Mapping[str, Path] | None = None,
    unfused_reference: bool = False, runtime_hints: Mapping[str, str] | None = None,
    reference_backend: str = "onnxruntime", roles: dict[str, Any] | None = None,
) -> Manifest:
    """Copy the model in, record its signature, sample outputs, hashes and build facts.

    ``model_file`` is the ONNX model; the bundle ships it as ``model.onnx`` unless ``artifact``
    names the files the target runs instead (the first one is the model: ``model.ort`` and
    its operator config, or ``model.xml`` and ``model.bin``). Expected sample outputs come
    from ``model_file`` in ONNX Runtime on this host; with ``unfused_reference`` graph
    optimisations are off, so they are the reference semantics rather than this CPU's fused
    kernels (what another CPU class must match, within ``sample_tolerance``). With
    ``reference_backend="openvino"`` (an IR bundle built on its own CPU class) they come from
    the IR in OpenVINO, which computes INT8 its own way; how far that is from ONNX Runtime's
    outputs goes into ``metrics["samples_vs_onnxruntime"]``. ``roles``: a streaming model's
    input roles, for the manifest.

    Raises:
        BundleError: the sample inputs do not match the model's inputs.
    """
    import onnxruntime as ort

    generation, sidecars = decoder_files(model_file)
    if generation is not None:
        runtime_hints = {**DECODER_HINTS, **(runtime_hints or {})}
    files = {**(artifact or {MODEL_NAME: model_file}), **sidecars}
    for rel, path in files.items():
        shutil.copyfile(path, staging / rel)
    options = ort.SessionOptions()
    if unfused_reference:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
    inputs, outputs = _specs(session.get_inputs()), _specs(session.get_outputs())
    _check_samples(samples, inputs)
    expected = session.run([s.name for s in outputs], samples)
    if reference_backend == "openvino":
        expected, metrics = _openvino_expected(staging / next(iter(files)), samples, outputs,
                                               expected, runtime_hints, metrics)
    return _write_manifest(staging, Manifest(
        name=name, model_file=next(iter(files)), precision=precision,
        target=target.requirements(), inputs=inputs, outputs=outputs, files={},
        samples_file=SAMPLES_NAME, sample_tolerance=scaled_tolerance(sample_tolerance, expected),
        source=source,
        recipe=recipe, calibration=calibration, libraries=dict(library_versions(_LIBRARIES)),
        kernels=kernel_counts(model_file), metrics=metrics,
        runtime_hints=dict(runtime_hints or {}), generation=generation, roles=roles),
        samples, expected, files)


# A decoder's bundle lets ONNX Runtime's threads spin between operators. A decode step is ~800
# small operators; with more than one thread the pool wakes for each, and without spinning the
# wake-ups dominate: SmolLM2's GGUF-grid bundle decoded 65-67 tokens/s at 2 threads with
# spinning off, 93-95 with it on (1 thread: 58-61 either way; AMX Xeon, family 6 model 167).
# Other bundles keep it off (a few large operators; spinning cost a busy host 1.34x on MiniLM).
# A caller's hints={"ALLOW_SPINNING": "0"} still turns it off.
DECODER_HINTS = {SPINNING_HINT: "1"}
TOKENIZER = "tokenizer.json"


def decoder_files(model_file: Path) -> tuple[dict[str, Any] | None, dict[str, Path]]:
    """A decoder's generation section and the files it brings (its tokenizer), from the
    layout in its stage record and the tokenizer beside ``model_file``; (None, {}) for any
    other model."""
    layout = recorded(model_file).decoder
    if layout is None:
        return None, {}
    tokenizer = Path(model_file).parent / TOKENIZER
    sidecars = {TOKENIZER: tokenizer} if tokenizer.is_file() else {}
    return {**layout, "tokenizer_file": TOKENIZER if sidecars else None}, sidecars


def assemble_ir(
    staging: Path, *, name: str, model_file: Path, target: Target, precision: str,
    samples: dict[str, np.ndarray], source: dict[str, Any], recipe: dict[str, Any],
    calibration: dict[str, Any] | None, metrics: dict[str, Any],
    sample_tolerance: dict[str, float], roles: dict[str, Any] | None = None,
) -> Manifest:
    """A bundle of an OpenVINO IR (``model_file`` is the .xml, its .bin beside it): signature
    and expected sample outputs from OpenVINO on this host at the float precision the bundle
    runs at (bf16 for a bf16 bundle or a recipe whose float ops run at bf16, else f32;
    recorded as its runtime hint), kernels counted in the IR.

    Raises:
        BundleError: the sample inputs do not match the model's inputs.
    """
    import openvino as ov

    files = {"model.xml": model_file, "model.bin": ir_weights(model_file)}
    for rel, path in files.items():
        shutil.copyfile(path, staging / rel)
    model = ov.Core().read_model(str(staging / "model.xml"))

    def specs(ports: list[Any]) -> tuple[TensorSpec, ...]:
        return tuple(TensorSpec(name=p.get_any_name(), dtype=p.get_element_type().to_dtype().name,
                                shape=tuple(d.get_length() if d.is_static else "?"
                                            for d in p.get_partial_shape())) for p in ports)

    inputs, outputs = specs(model.inputs), specs(model.outputs)
    _check_samples(samples, inputs)
    # Only bf16 changes what OpenVINO computes in: a bf16 bundle, or an INT8 one whose recipe
    # runs its float ops at bf16 (as it was scored); every other IR computes at f32.
    bf16 = precision == BF16 or recipe.get("float_precision") == BF16
    hints = {"INFERENCE_PRECISION_HINT": HINT_OF_PRECISION[BF16 if bf16 else FP32]}
    session = get_backend("openvino").open(staging / "model.xml", threads=1, hints=hints)
    try:
        got = session.run(samples)
    finally:
        session.close()
    expected = [got[s.name] for s in outputs]
    return _write_manifest(staging, Manifest(
        name=name, model_file="model.xml", precision=precision, target=target.requirements(),
        inputs=inputs, outputs=outputs, files={}, samples_file=SAMPLES_NAME,
        sample_tolerance=scaled_tolerance(sample_tolerance, expected), source=source,
        recipe=recipe,
        calibration=calibration, libraries=dict(library_versions(_LIBRARIES + ("openvino",))),
        kernels=ir_kernel_counts(model), metrics=metrics,
        runtime_hints=hints, roles=roles),
        samples, expected, files)


def scaled_tolerance(tolerance: Mapping[str, float], expected: list[np.ndarray]
                     ) -> dict[str, float]:
    """``min_cosine`` and ``max_abs`` for the manifest: a ``max_abs_of_peak`` entry widens
    ``max_abs`` to that share of the largest expected value, for precisions whose rounding
    grows with the values. Measured: the MNIST CNN in fp16 on an emulated Neoverse N1 (ONNX
    Runtime's fp16 kernels) was 0.147 from the fp32-arithmetic reference on logits up to 92,
    cosine 1.00000; a fixed 0.05 refused it."""
    tol = {k: float(v) for k, v in tolerance.items() if k != "max_abs_of_peak"}
    share = tolerance.get("max_abs_of_peak")
    if share:
        peak = max((float(np.abs(e).max()) for e in expected if e.size
                    and np.issubdtype(e.dtype, np.floating)), default=0.0)
        tol["max_abs"] = max(tol["max_abs"], share * peak)
    return tol


def _check_samples(samples: Mapping[str, np.ndarray], inputs: tuple[TensorSpec, ...]) -> None:
    """Raises BundleError unless the samples name exactly the model's inputs."""
    if set(samples) != {s.name for s in inputs}:
        raise BundleError(f"Sample inputs {sorted(samples)} do not match model inputs "
                          f"{[s.name for s in inputs]}.")


def _write_manifest(staging: Path, manifest: Manifest, samples: dict[str, np.ndarray],
                    expected: list[np.ndarray], files: Mapping[str, Path]) -> Manifest:
    """Samples with their expected outputs, the file hashes and the manifest, into staging."""
    arrays = {f"input.{k}": v for k, v in samples.items()}
    arrays |= {f"output.{s.name}": v for s, v in zip(manifest.outputs, expected, strict=True)}
    np.savez(staging / SAMPLES_NAME, **arrays)
    manifest = dataclasses.replace(
        manifest, files={n: file_sha256(staging / n) for n in (*files, SAMPLES_NAME)},
        metrics={**manifest.metrics, "built_on": read_host().to_dict()})  # the CPU's uarch
    write_json_atomic(staging / MANIFEST_NAME, manifest.to_dict())
    return manifest


def _openvino_expected(model_file: Path, samples: dict[str, np.ndarray], outputs: list[Any],
                       onnxruntime_outputs: list[np.ndarray],
                       hints: Mapping[str, str] | None, metrics: dict[str, Any]
                       ) -> tuple[list[np.ndarray], dict[str, Any]]:
    """The IR's outputs in OpenVINO, opened as the runtime opens it (same hints), and their
    distance from ONNX Runtime's."""
    session = get_backend("openvino").open(model_file, threads=1, hints=dict(hints or {}))
    try:
        got = session.run(samples)
    finally:
        session.close()
    expected = [got[s.name].astype(ref.dtype, copy=False)
                for s, ref in zip(outputs, onnxruntime_outputs, strict=True)]
    distance = {s.name: {"min_cosine": float(row_cosine(ref, mine).min()),
                         "max_abs": max_abs_error(ref, mine)}
                for s, ref, mine in zip(outputs, onnxruntime_outputs, expected, strict=True)}
    return expected, {**metrics, "samples_vs_onnxruntime": distance}


def update_metrics(bundle_dir: Path, metrics: dict[str, Any]) -> None:
    """Merge build-time measurements into the manifest (the manifest itself is not hashed)."""
    path = bundle_dir / MANIFEST_NAME
    data = json.loads(path.read_text())
    data["metrics"] = {**data.get("metrics", {}), **metrics}
    write_json_atomic(path, data)
