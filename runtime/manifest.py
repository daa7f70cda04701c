"""The bundle manifest: what a bundle holds and needs, and what was measured at build time."""

from __future__ import annotations

import dataclasses
import re
from pathlib import PurePosixPath
from typing import Any

from frugalml.core.records import check_schema
from frugalml.errors import BundleError
from frugalml.runtime.capabilities import FP32, PRECISION_OF_HINT

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1
# numpy dtype names a bundle's inputs and outputs may have
DTYPES = frozenset({"float32", "float64", "float16", "int64", "int32", "int8", "uint8", "bool"})


# ONNX Runtime type strings -> numpy dtype names
_DTYPES = {"float": "float32", "double": "float64", "float16": "float16", "int64": "int64",
           "int32": "int32", "int8": "int8", "uint8": "uint8", "bool": "bool"}


def onnx_dtype(ort_type: str) -> str:
    """numpy dtype name of an ONNX Runtime type string such as ``tensor(float)``.

    Raises:
        BundleError: a type bundles do not support.
    """
    onnx_type = ort_type.removeprefix("tensor(").removesuffix(")")
    if onnx_type not in _DTYPES:
        raise BundleError(f"Type {ort_type} is not supported by bundles yet.")
    return _DTYPES[onnx_type]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TensorSpec:
    """Name, dtype and shape of one model input or output; a dimension may be symbolic (str)."""

    name: str
    dtype: str
    shape: tuple[int | str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TensorSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(name=data["name"], dtype=data["dtype"], shape=tuple(data["shape"]))


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TargetRequirements:
    """What the host must have to run the bundle natively."""

    name: str
    machine: str
    required_features: tuple[str, ...]
    backend: str
    device: str = "CPU"  # the backend's device: "GPU" for OpenVINO on an Intel GPU

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {**dataclasses.asdict(self), "required_features": list(self.required_features)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TargetRequirements:
        """Inverse of :meth:`to_dict` (manifests written before ``device`` existed mean CPU)."""
        return cls(
            name=data["name"],
            machine=data["machine"],
            required_features=tuple(data["required_features"]),
            backend=data["backend"],
            device=data.get("device", "CPU"),
        )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    """Self-description of a bundle; ``files`` maps every file but the manifest to its sha256."""

    schema_version: int = SCHEMA_VERSION
    name: str
    model_file: str
    precision: str
    target: TargetRequirements
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    files: dict[str, str]
    samples_file: str
    sample_tolerance: dict[str, float]
    source: dict[str, Any]
    recipe: dict[str, Any]
    calibration: dict[str, Any] | None
    libraries: dict[str, str]
    kernels: dict[str, int]
    metrics: dict[str, Any]
    # Backend settings the target wants (OpenVINO properties such as INFERENCE_PRECISION_HINT).
    runtime_hints: dict[str, str] = dataclasses.field(default_factory=dict)
    # Decoders: the KV-cache layout, end-of-text tokens and tokenizer file
    # (:class:`~frugalml.runtime.generate.DecoderLayout`); None for every other model.
    generation: dict[str, Any] | None = None
    # Streaming models: input roles (batch axes, constants, state pairs;
    # :class:`~frugalml.runtime.roles.InputRoles`); None where every input is batched on axis 0.
    roles: dict[str, Any] | None = None

    @property
    def compute_precision(self) -> str:
        """The float precision the runtime computes this bundle in: what its OpenVINO
        precision hint asks for (``bf16``, ``fp16``), else ``fp32`` (ONNX graphs run in the
        types they hold)."""
        return PRECISION_OF_HINT.get(self.runtime_hints.get("INFERENCE_PRECISION_HINT", ""), FP32)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, as written to ``manifest.json``."""
        d: dict[str, Any] = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["target"] = self.target.to_dict()
        d["inputs"] = [t.to_dict() for t in self.inputs]
        d["outputs"] = [t.to_dict() for t in self.outputs]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        """Parse ``manifest.json`` content.

        Raises:
            ValueError: the schema is newer than this frugalml, or a field is missing, has
                the wrong type, or names a file the manifest does not hash.
        """
        if not isinstance(data, dict):
            raise ValueError(f"a manifest is a JSON object, not {type(data).__name__}")
        check_schema(data, "Bundle manifest", SCHEMA_VERSION)
        _check_fields(data)
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["target"] = TargetRequirements.from_dict(data["target"])
        values["inputs"] = tuple(TensorSpec.from_dict(t) for t in data["inputs"])
        values["outputs"] = tuple(TensorSpec.from_dict(t) for t in data["outputs"])
        return cls(**values)


_SHA256 = re.compile(r"[0-9a-f]{64}")
# field -> JSON type it must have (data only: a manifest never names code to run)
_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "name": str, "model_file": str, "precision": str, "target": dict, "inputs": list,
    "outputs": list, "files": dict, "samples_file": str, "sample_tolerance": dict,
    "source": dict, "recipe": dict, "calibration": (dict, type(None)), "libraries": dict,
    "kernels": dict, "metrics": dict,
}


def _check_fields(data: dict[str, Any]) -> None:
    """Check presence and JSON types of every field before any is used.

    Raises:
        ValueError: naming the first field that is missing or malformed.
    """
    for name, kind in _FIELD_TYPES.items():
        if name not in data:
            raise ValueError(f"field {name!r} is missing")
        if not isinstance(data[name], kind):
            raise ValueError(f"field {name!r} has type {type(data[name]).__name__}")
    for rel, sha in data["files"].items():
        parts = PurePosixPath(rel).parts
        if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
            raise ValueError(f"files[{rel!r}] is not a sha256 hex digest")
        if not rel or rel.startswith("/") or ".." in parts or "\\" in rel:
            raise ValueError(f"file {rel!r} is not a plain path inside the bundle")
    for name in ("model_file", "samples_file"):
        if data[name] not in data["files"]:
            raise ValueError(f"{name} {data[name]!r} is not among the hashed files")
    target = data["target"]
    if not (isinstance(target.get("name"), str) and isinstance(target.get("machine"), str)
            and isinstance(target.get("backend"), str)
            and _all(target.get("required_features"), str)):
        raise ValueError("field 'target' needs name, machine, backend (text) and "
                         "required_features (a list of text)")
    for side in ("inputs", "outputs"):
        for spec in data[side]:
            if not (isinstance(spec, dict) and isinstance(spec.get("name"), str)
                    and spec.get("dtype") in DTYPES
                    and _all(spec.get("shape"), (int, str))):
                raise ValueError(f"an entry of {side!r} is not a tensor spec (name, dtype in "
                                 f"{sorted(DTYPES)}, shape of ints and names): {spec!r:.120}")
    if target.get("device", "CPU") not in ("CPU", "GPU"):
        raise ValueError(f"target device {target.get('device')!r} is not CPU or GPU")
    hints = data.get("runtime_hints", {})
    if not (isinstance(hints, dict) and all(isinstance(k, str) and isinstance(v, str)
                                            for k, v in hints.items())):
        raise ValueError("field 'runtime_hints' must map text to text")
    _check_generation(data)
    _check_roles(data)
    tolerance = data["sample_tolerance"]
    if not all(isinstance(tolerance.get(k), (int, float)) and not isinstance(tolerance[k], bool)
               for k in ("min_cosine", "max_abs")):
        raise ValueError("field 'sample_tolerance' needs numeric min_cosine and max_abs")


def _check_generation(data: dict[str, Any]) -> None:
    """A decoder's generation section: a valid layout whose tokenizer file is hashed."""
    from frugalml.runtime.generate import DecoderLayout

    section = data.get("generation")
    if section is None:
        return
    if not isinstance(section, dict):
        raise ValueError("field 'generation' must be an object or null")
    layout = DecoderLayout.from_dict(section)
    if layout.tokenizer_file is not None and layout.tokenizer_file not in data["files"]:
        raise ValueError(f"tokenizer_file {layout.tokenizer_file!r} is not among the hashed "
                         "files")


def _check_roles(data: dict[str, Any]) -> None:
    """Input roles that fit the bundle's own signature: every named input and output exists,
    constants fit their inputs (an altered roles section is refused, not run)."""
    from frugalml.errors import InputError
    from frugalml.runtime.roles import InputRoles, resolve_roles

    section = data.get("roles")
    if section is None:
        return
    if not isinstance(section, dict):
        raise ValueError("field 'roles' must be an object or null")
    try:
        roles = InputRoles.from_dict(section)
        signature = [(t["name"], t["dtype"], tuple(t["shape"])) for t in data["inputs"]]
        resolved = resolve_roles(roles, signature, [t["name"] for t in data["outputs"]])
    except InputError as e:
        raise ValueError(f"field 'roles' does not fit the bundle's model: {e}") from e
    shapes = {t["name"]: list(t["shape"]) for t in (*data["inputs"], *data["outputs"])}
    for state, out in roles.states.items():
        a, b = shapes[state], shapes[out]
        if len(a) != len(b) or any(isinstance(x, int) and isinstance(y, int) and x != y
                                   for x, y in zip(a, b, strict=True)):
            raise ValueError(f"field 'roles' feeds state {state!r} {a} from output {out!r} {b}, "
                             "whose shape does not fit it")
    if dict(resolved.batch_axes) != dict(roles.batch_axes):
        raise ValueError(f"field 'roles' gives batch axes {dict(roles.batch_axes)}, the model's "
                         f"dims give {dict(resolved.batch_axes)}")


def _all(values: Any, kind: type | tuple[type, ...]) -> bool:
    """``values`` is a list whose items all have ``kind`` (bool is not a number here)."""
    return isinstance(values, list) and all(
        isinstance(v, kind) and not isinstance(v, bool) for v in values)
