"""`frugal compile`: one ONNX model -> a bundle for one target, in the artifact that target runs,
verified by whatever this host can run it with, and speed-gated where it runs natively.

Artifacts: ``model.onnx`` for CPU targets run by ONNX Runtime; ``model.ort`` plus its
reduced-build operator config for phones; an OpenVINO IR (``model.xml``/``.bin``) for
OpenVINO targets, FP16 weights with an f16 inference hint for the Intel GPU.
Verification (recorded in the manifest): native runs the bundle through the runtime;
phone artifacts run in desktop ONNX Runtime; anything else says "not verified here" and why.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from frugalml import runtime
from frugalml.core.atomic import staged
from frugalml.core.progress import Steps
from frugalml.errors import BundleError, FrugalError, TargetError
from frugalml.runtime.backends import get_backend
from frugalml.runtime.bundle import read_manifest, verify_files
from frugalml.runtime.formats import is_ir, is_onnx, model_files
from frugalml.runtime.host import Host, read_host
from frugalml.runtime.model import Model
from frugalml.runtime.opstats import kernels_ran
from frugalml.runtime.roles import InputRoles
from frugalml.runtime.speed import Plan as SpeedPlan
from frugalml.targets.bundle import MODEL_NAME, assemble, assemble_ir, update_metrics
from frugalml.targets.detect import status
from frugalml.targets.emulation import verify_emulated
from frugalml.targets.kinds import get_kind
from frugalml.targets.profiles import Target, get_target
from frugalml.targets.samples import bundle_samples
from frugalml.targets.speed_gate import measure_speed
from frugalml.targets.support import Probes, Runs

COMPILE_RECORD = "compile.json"
# fp16 rounding is relative: its max abs error widens with the outputs' peak (scaled_tolerance).
_TOLERANCE = {"fp32": {"min_cosine": 0.99999, "max_abs": 1e-3},
              "fp16": {"min_cosine": 0.9999, "max_abs": 0.05, "max_abs_of_peak": 0.005}}
_QUANTIZED_TOLERANCE = {"min_cosine": 0.999, "max_abs": 0.05}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CompileResult:
    """Where the bundles went, how each was verified here, and which one is the default."""

    target: str
    bundles: dict[str, str]
    verification: dict[str, dict[str, Any]]
    speed_gate: dict[str, Any] | None
    default: str

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (``compile.json``)."""
        return dataclasses.asdict(self)


def _onnx_of(model: Path) -> tuple[Path, dict[str, Any]]:
    """The ONNX file of ``model`` (a file, or an export/quantize folder) and its quantize
    record when there is one."""
    if not Path(model).exists():
        raise TargetError(f"{model} does not exist. Give an .onnx file, or the folder `frugal "
                          "export` or `frugal quantize --format onnx` wrote.")
    path = Path(model) / MODEL_NAME if Path(model).is_dir() else Path(model)
    if not is_onnx(path) or not path.is_file():
        raise TargetError(f"{model} is not an .onnx model nor a folder with model.onnx. "
                          "compile starts from ONNX (OpenVINO IR is made here for OpenVINO "
                          "targets); quantize with --format onnx for it.")
    return path, _record_beside(path)


def with_backend(target: Target, backend: str) -> Target:
    """``target`` run by another backend on the same CPU: OpenVINO IR or plain ONNX.

    Raises:
        TargetError: the target is not a CPU target with an ONNX or IR artifact, or the
            backend is unknown.
    """
    artifacts = {"openvino": "openvino-ir", "onnxruntime": "onnx"}
    if backend not in artifacts or target.device != "CPU" or target.artifact == "ort":
        raise TargetError(f"{target.name} cannot be built for backend {backend!r}: CPU "
                          f"targets take {' or '.join(artifacts)}; phone targets run the "
                          "ONNX Runtime Mobile format only.")
    return dataclasses.replace(target, backend=backend, artifact=artifacts[backend])


def verify_here(bundle: Path, target: Target, host: Host | None = None,
                probes: Probes | None = None, steps: Steps | None = None,
                backend: str | None = None) -> dict[str, Any]:
    """Run the bundle's samples with whatever runs ``target`` here (natively, under QEMU for
    arm64, desktop ONNX Runtime for phone files), or say why nothing can. ``backend``
    overrides the target's for native and emulated runs."""
    support = status(target, host or read_host(), probes or Probes.read())
    if support.runs is Runs.NATIVE:
        with runtime.load(bundle, threads=1, host=host, backend=backend, profile=True) as model:
            check = model.self_check()
            ran = kernels_ran(model.session.op_events())
        return {"status": "verified", "how": "natively", **check, "kernels_ran": ran}
    if support.runs is Runs.DESKTOP_CHECK:
        manifest = read_manifest(bundle)
        verify_files(bundle, manifest)
        session = get_backend("onnxruntime").open(bundle / manifest.model_file, threads=1)
        with Model(bundle, manifest, session, backend="onnxruntime") as model:
            return {"status": "verified", "how": "desktop ONNX Runtime (the .ort file loads "
                    "and matches; the phone's own kernels are not exercised)",
                    **model.self_check()}
    why = f"missing {'; '.join(support.missing)}"
    if support.runs is Runs.EMULATED:
        try:
            return verify_emulated(bundle, target, backend=backend, steps=steps)
        except TargetError as e:  # emulation unavailable here; a drifting bundle still raises
            why = f"{why}, and emulation failed: {e}"
    result: dict[str, Any] = {"status": "not verified here", "why": why}
    if target.device == "GPU":
        result["cpu_numerics"] = _ir_on_cpu(bundle)
    return result


def _ir_on_cpu(bundle: Path) -> dict[str, Any]:
    """Run a GPU bundle's IR on OpenVINO's CPU device: its numerics (FP16 weights), not the
    GPU's kernels; recorded beside "not verified here", never instead of it."""
    manifest = read_manifest(bundle)
    session = get_backend("openvino").open(bundle / manifest.model_file, threads=1,
                                           hints={"INFERENCE_PRECISION_HINT": "f32"})
    with Model(bundle, manifest, session, backend="openvino") as model:
        return model.self_check()


def compile_model(model: Path, out_dir: Path, *, target: Target | str,
                  samples: Mapping[str, np.ndarray], fp32: Path | None = None,
                  name: str | None = None, threads: int = 1,
                  gate_plan: SpeedPlan | None = None, host: Host | None = None,
                  probes: Probes | None = None, steps: Steps | None = None,
                  backend: str | None = None, roles: Mapping[str, Any] | None = None
                  ) -> CompileResult:
    """Build ``out_dir/<name>-<target>-<precision>`` bundle(s) and ``out_dir/compile.json``.

    With ``fp32`` (the FP32 ONNX a quantized ``model`` came from), the FP32 bundle is built
    too and, where the target runs natively, the speed gate decides which is the default.
    ``backend="openvino"`` builds an OpenVINO IR for a CPU target instead of its default
    (bundle names then end in ``-openvino``). ``roles``: a streaming model's input roles (its
    data's), for a model whose quantize record does not carry them (a bare .onnx).

    Raises:
        TargetError: unknown target, a model that is not ONNX, or an artifact that cannot be
            built; BundleError: samples that do not fit the model.
    """
    target = get_target(target) if isinstance(target, str) else target
    suffix = ""
    if backend is not None and backend != target.backend:
        target, suffix = with_backend(target, backend), f"-{backend}"
    onnx_file, record = _onnx_of(model)
    record = {**record, "input_roles": record.get("input_roles") or roles} if roles else record
    samples = bundle_samples(onnx_file, samples)
    precision = record.get("precision", "fp32")
    if target.device == "GPU" and precision == "fp32":
        precision = "fp16"  # the GPU IR stores FP16 weights and computes in f16
    out_dir = Path(out_dir).resolve()
    host, probes = host or read_host(), probes or Probes.read()
    native = status(target, host, probes).runs is Runs.NATIVE
    plan = {precision: (onnx_file, record)}
    if fp32 is not None and precision not in ("fp32", "fp16"):
        plan["fp32"] = (_onnx_of(fp32)[0], fp32_record(record))
    bundles, verification = {}, {}
    for prec, (file, rec) in plan.items():
        called = name or file.resolve().parent.name  # each bundle after its own model's folder
        dest = out_dir / f"{called}-{target.name}-{prec}{suffix}"
        verification[prec] = _build(file, dest, target, prec, rec, samples, native,
                                    f"{called}-{target.name}-{prec}", (host, probes, steps))
        bundles[prec] = str(dest)
    gate = None
    if len(plan) == 2 and native:
        gate = _gate(bundles, precision, samples, target, threads, gate_plan or SpeedPlan(), host)
    default = precision if gate is None or gate["faster"] else "fp32"
    result = CompileResult(target=target.name, bundles=bundles, verification=verification,
                           speed_gate=gate, default=default)
    (out_dir / COMPILE_RECORD).write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return result


def build_bundle(model: Path, dest: Path, *, target: Target, samples: Mapping[str, np.ndarray],
                 backend: str | None = None, record: dict[str, Any] | None = None,
                 host: Host | None = None, probes: Probes | None = None,
                 steps: Steps | None = None) -> tuple[str, dict[str, Any]]:
    """One bundle of ``model`` (an .onnx, or an export/quantize folder) at ``dest``, verified
    here as :func:`compile_model` does; ``record`` replaces the quantize record the manifest
    describes (the FP32 bundle takes its accuracy from a candidate's reference side).

    Returns:
        (precision, verification)

    Raises:
        TargetError, BundleError: as :func:`compile_model`.
    """
    ir = _ir_of(Path(model))
    backend = "openvino" if ir else backend
    if backend is not None and backend != target.backend:
        target = with_backend(target, backend)
    onnx_file, found = (ir, _record_beside(ir)) if ir else _onnx_of(model)
    samples = bundle_samples(onnx_file, samples)
    record = found if record is None else record
    precision = record.get("precision", "fp32")
    if target.device == "GPU" and precision == "fp32":
        precision = "fp16"
    host, probes = host or read_host(), probes or Probes.read()
    native = status(target, host, probes).runs is Runs.NATIVE
    return precision, _build(onnx_file, Path(dest), target, precision, record, samples, native,
                             Path(dest).name, (host, probes, steps))


def _ir_of(model: Path) -> Path | None:
    """The .xml of an OpenVINO IR model (a file, or a folder holding model.xml), else None."""
    path = model / "model.xml" if model.is_dir() else model
    return path if is_ir(path) and path.is_file() else None


def _record_beside(model_file: Path) -> dict[str, Any]:
    record = model_file.parent / "quantize.json"
    return json.loads(record.read_text()) if record.is_file() else {}


def fp32_record(quantized: dict[str, Any]) -> dict[str, Any]:
    """What the FP32 bundle's manifest says of its accuracy: the FP32 side of the quantized
    model's scoring, on the same evaluation items (reports showed "-" for it); and the
    model's input roles, which FP32 shares."""
    accuracy = quantized.get("accuracy") or {}
    roles = {"input_roles": quantized["input_roles"]} if quantized.get("input_roles") else {}
    if not accuracy.get("reference"):
        return roles
    return {"accuracy": {"task": accuracy.get("task"), "items": accuracy.get("items"),
                         "candidate": accuracy["reference"],
                         "scored_as": "the FP32 reference of the quantized model"}, **roles}


def _build(onnx_file: Path, dest: Path, target: Target, precision: str, record: dict[str, Any],
           samples: Mapping[str, np.ndarray], native: bool, name: str,
           here: tuple[Host, Probes, Steps | None]) -> dict[str, Any]:
    """Assemble and verify in a staging dir: a bundle that fails verification is not kept."""
    built = {"source": {"model": str(onnx_file)}, "recipe": record.get("recipe", {}),
             "calibration": {"fingerprint": record["calibration_fingerprint"]}
             if record.get("calibration_fingerprint") else None,
             "roles": record.get("input_roles"),
             "sample_tolerance": _TOLERANCE.get(precision, _QUANTIZED_TOLERANCE)}
    accuracy = {"accuracy": record["accuracy"]} if record.get("accuracy") else {}
    with staged(dest, error=BundleError) as stage, tempfile.TemporaryDirectory() as work:
        try:
            if is_ir(onnx_file):  # a model that came as IR is bundled as it is
                size = sum(p.stat().st_size for p in model_files(onnx_file))
                assemble_ir(stage, name=name, model_file=onnx_file, target=target,
                            precision=precision, samples=dict(samples),
                            metrics={"size_bytes": size, **accuracy}, **built)
            else:
                files, hints = get_kind(target.artifact).build(onnx_file, target, precision,
                                                               Path(work))
                assemble(stage, name=name, model_file=onnx_file, target=target,
                         precision=precision, samples=dict(samples),
                         metrics={"size_bytes": sum(Path(f).stat().st_size
                                                    for f in files.values()), **accuracy},
                         artifact=files, unfused_reference=not native, runtime_hints=hints,
                         reference_backend=get_kind(target.artifact).backend if native
                         else "onnxruntime", **built)
        except FrugalError:
            raise
        except Exception as e:  # ONNX Runtime rejects samples with its own error types
            raise BundleError(f"The sample inputs do not fit {onnx_file}: {str(e)[:300]}") from e
        verification = verify_here(stage, target, *here)
        update_metrics(stage, {"verification": verification})
    return verification


def _gate(bundles: dict[str, str], precision: str, samples: Mapping[str, np.ndarray],
          target: Target, threads: int, plan: SpeedPlan, host: Host) -> dict[str, Any]:
    """Time both bundles' model files by the speed protocol; record it in both manifests."""
    manifests = {p: read_manifest(Path(d)) for p, d in bundles.items()}
    files = {p: Path(bundles[p]) / m.model_file for p, m in manifests.items()}
    one = InputRoles.from_dict(manifests[precision].roles or {}).head(samples, 1)
    verdict = measure_speed(files["fp32"], files[precision], one, backend=target.backend,
                            threads=threads, plan=plan, host=host).to_dict()
    for d in bundles.values():
        update_metrics(Path(d), {"speed_gate": verdict})
    return verdict
