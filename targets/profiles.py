"""Built-in target profiles: what a CPU class needs, and the INT8 format fast and exact on it."""

from __future__ import annotations

import dataclasses
import json
from enum import StrEnum
from pathlib import Path
from typing import Any

from frugalml.errors import TargetError
from frugalml.runtime.backends import names as backend_names
from frugalml.runtime.capabilities import Capabilities
from frugalml.runtime.manifest import TargetRequirements
from frugalml.targets.kinds import names as kinds


class QuantFormat(StrEnum):
    """Activation x weight integer types of static INT8, as chosen by the instruction set."""

    # AVX2 without VNNI multiplies u8 x s8 with vpmaddubsw, whose int16 sums saturate at full
    # 8-bit weights; 7-bit weights (reduce_range) keep them exact (TARGETS.md).
    U8S8_REDUCED = "u8s8-reduce-range"
    # VNNI's vpdpbusd multiplies u8 x s8 into int32 without saturation: full 8-bit weights.
    # ONNX Runtime on x86 fuses U8S8 QDQ into integer kernels; S8S8 QDQ it leaves as
    # DequantizeLinear + float MatMul unless session.qdqisint8allowed (measured on a Zen 4:
    # MiniLM S8S8 0.54x FP32, U8S8 1.8x).
    U8S8 = "u8s8"
    # VNNI (vpdpbusd) and ARM sdot accumulate in int32 without saturation.
    S8S8 = "s8s8"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """A deployable device class: architecture, required ISA features, backend, INT8 format,
    and the device (CPU or GPU) and artifact (ONNX, ORT mobile format, OpenVINO IR) it runs."""

    name: str
    machine: str
    required_features: tuple[str, ...]
    backend: str
    int8_format: QuantFormat
    description: str
    device: str = "CPU"
    artifact: str = "onnx"

    @property
    def capabilities(self) -> Capabilities:
        """What every CPU of this target computes natively, from the features it requires
        (an AMX target guarantees AMX-INT8 and bf16; x86-avx2 guarantees neither): the
        candidates a target is offered are derived from this, never hand-listed."""
        return Capabilities.from_flags(self.machine, self.required_features)

    def requirements(self) -> TargetRequirements:
        """What the runtime checks against the host before running a bundle for this target."""
        return TargetRequirements(name=self.name, machine=self.machine,
                                  required_features=self.required_features, backend=self.backend,
                                  device=self.device)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        d = dataclasses.asdict(self)
        d["required_features"] = list(self.required_features)
        d["int8_format"] = self.int8_format.value
        return d


# Best first: detect() picks the first CPU target this host runs natively.
_BUILTIN = (
    Target(
        name="x86-amx", machine="x86_64",
        required_features=("avx512f", "avx512_vnni", "avx512_bf16", "amx_int8", "amx_bf16"),
        backend="onnxruntime", int8_format=QuantFormat.U8S8,
        description="x86-64 with AMX (Intel Xeon 4th gen+): AMX int8/bf16 tiles; OpenVINO "
                    "bf16 and INT8, ONNX Runtime U8S8 QDQ INT8",
    ),
    Target(
        name="x86-avx512-bf16", machine="x86_64",
        required_features=("avx512f", "avx512_vnni", "avx512_bf16"),
        backend="onnxruntime", int8_format=QuantFormat.U8S8,
        description="x86-64 with AVX-512 VNNI and AVX512-BF16, no AMX (AMD Zen 4+, Intel "
                    "Cooper Lake): OpenVINO bf16, U8S8 QDQ INT8",
    ),
    Target(
        name="x86-avx512", machine="x86_64", required_features=("avx512f", "avx512_vnni"),
        backend="onnxruntime", int8_format=QuantFormat.U8S8,
        description="x86-64 with AVX-512 VNNI (Intel Ice Lake+, AMD Zen 4+): U8S8 QDQ INT8",
    ),
    Target(
        name="x86-avx2", machine="x86_64", required_features=("avx2", "fma"),
        backend="onnxruntime", int8_format=QuantFormat.U8S8_REDUCED,
        description="x86-64 with AVX2 and no VNNI: U8S8 QDQ INT8 with 7-bit weights "
                    "(8-bit in depthwise convolutions)",
    ),
    Target(
        name="arm64", machine="aarch64", required_features=("asimddp", "asimdhp"),
        backend="onnxruntime", int8_format=QuantFormat.S8S8,
        description="ARM64 v8.2+ with dot product and fp16 arithmetic (Neoverse N1, Graviton "
                    "2+, Cortex-A76+, Apple M): S8S8 QDQ INT8, ONNX Runtime's fp16 kernels",
    ),
    Target(
        name="arm64-a72", machine="aarch64", required_features=("asimd",),
        backend="onnxruntime", int8_format=QuantFormat.S8S8,
        description="ARM64 v8.0 without dot product (Raspberry Pi 4, Cortex-A72): S8S8 QDQ "
                    "INT8 on the slower widening-multiply path (no sdot)",
    ),
    Target(
        name="android-arm64", machine="aarch64", required_features=("asimd",),
        backend="onnxruntime", int8_format=QuantFormat.S8S8, artifact="ort",
        description="Android phones (ARM64): ONNX Runtime Mobile .ort + reduced-operator config",
    ),
    Target(
        name="ios-arm64", machine="aarch64", required_features=("asimd",),
        backend="onnxruntime", int8_format=QuantFormat.S8S8, artifact="ort",
        description="iPhones and iPads (ARM64): ONNX Runtime Mobile .ort + reduced-operator "
                    "config",
    ),
    Target(
        name="igpu", machine="x86_64", required_features=(), backend="openvino",
        int8_format=QuantFormat.S8S8, device="GPU", artifact="openvino-ir",
        description="Intel integrated GPU (Gen12+/Xe) through OpenVINO: FP16 IR, INT8 IR",
    ),
)
TARGETS: dict[str, Target] = {t.name: t for t in _BUILTIN}


def get_target(name: str) -> Target:
    """Look up a built-in target by name, or read a user's target file (``*.json``).

    Raises:
        TargetError: the name is unknown (the message lists the known ones), or the file is
            missing or malformed.
    """
    if name.endswith(".json"):
        return load_target_file(Path(name))
    try:
        return TARGETS[name]
    except KeyError:
        raise TargetError(
            f"Unknown target {name!r}. Known targets: {', '.join(TARGETS)}; "
            "or pass 'auto' to pick the best one for this host, or a target file (.json)."
        ) from None


_TEXT_FIELDS = ("name", "machine", "backend", "description")
_MACHINES = ("x86_64", "aarch64")
_DEVICES = ("CPU", "GPU")
MAX_TARGET_FILE_BYTES = 1 << 16


def load_target_file(path: Path) -> Target:
    """Read a user target profile: a JSON object with the fields of :class:`Target`.

    Example: ``{"name": "edge-box", "machine": "x86_64", "required_features": ["avx2"],
    "backend": "onnxruntime", "int8_format": "u8s8-reduce-range", "description": "..."}``.
    Only data is read; a target file cannot name code to run.

    Raises:
        TargetError: the file is missing, not JSON, or a field is missing or invalid.
    """
    try:
        raw = path.read_bytes()[:MAX_TARGET_FILE_BYTES + 1]
    except OSError as e:
        raise TargetError(f"Cannot read target file {path}: {e.strerror or e}.") from e
    if len(raw) > MAX_TARGET_FILE_BYTES:
        raise TargetError(f"Target file {path} is over {MAX_TARGET_FILE_BYTES} bytes; a target "
                          "profile is a small JSON object.")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise TargetError(f"Target file {path} is not valid JSON: {e}.") from e
    problem = _target_problem(data)
    if problem:
        raise TargetError(f"Target file {path}: {problem}. Fields: name, machine "
                          f"({' or '.join(_MACHINES)}), required_features (list of "
                          "/proc/cpuinfo flags), backend, int8_format "
                          f"({', '.join(f.value for f in QuantFormat)}), description.")
    return Target(name=data["name"], machine=data["machine"],
                  required_features=tuple(data["required_features"]), backend=data["backend"],
                  int8_format=QuantFormat(data["int8_format"]), description=data["description"],
                  device=data.get("device", "CPU"), artifact=data.get("artifact", "onnx"))


def _target_problem(data: Any) -> str:
    """What is wrong with a parsed target file, or '' when nothing is."""
    if not isinstance(data, dict):
        return f"expected a JSON object, found {type(data).__name__}"
    fields = {f.name for f in dataclasses.fields(Target)}
    required = {f.name for f in dataclasses.fields(Target)
                if f.default is dataclasses.MISSING}
    unknown = sorted(map(str, set(data) - fields))
    missing = sorted(required - set(data))
    if unknown or missing:
        return "; ".join(([f"unknown fields {unknown}"] if unknown else [])
                         + ([f"missing fields {missing}"] if missing else []))
    bad = [f for f in _TEXT_FIELDS if not isinstance(data[f], str) or not data[f].strip()]
    if bad:
        return f"{', '.join(bad)} must be non-empty text"
    features = data["required_features"]
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        return "required_features must be a list of text"
    if data["machine"] not in _MACHINES:
        return f"machine {data['machine']!r} is not one of {', '.join(_MACHINES)}"
    if data["backend"] not in backend_names():
        return f"backend {data['backend']!r} is not one of {', '.join(backend_names())}"
    if data["int8_format"] not in tuple(f.value for f in QuantFormat):
        return f"int8_format {data['int8_format']!r} is unknown"
    if data.get("device", "CPU") not in _DEVICES:
        return f"device {data.get('device')!r} is not one of {', '.join(_DEVICES)}"

    if data.get("artifact", "onnx") not in kinds():
        return f"artifact {data.get('artifact')!r} is not one of {', '.join(kinds())}"
    return ""
