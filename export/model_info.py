"""ModelInfo: what one exported model is, read once and handed to every later stage.

Before this record, each stage re-derived the model's facts from its path: deploy asked for
the graph's family by counting operators while ONNX Runtime's quantizer treated "any Conv" as a
CNN and NNCF "no Conv, some MatMul" as a transformer, so a ViT with a convolutional patch
embedding was a transformer to deploy, a CNN to ONNX Runtime and not a transformer to NNCF.
Here the graph's structure is decided once (:func:`structure_of`); families, both quantizers
and the report read it from the record.

The record names files by their content (sha256) and its origin by kind and digest, never by a
machine path: ``path`` is where this process found the model, and is left out of the digest.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from frugalml.core.records import check_schema, digest, file_sha256, to_jsonable
from frugalml.runtime.formats import is_ir, is_onnx, model_files
from frugalml.runtime.generate import DecoderLayout
from frugalml.runtime.manifest import TensorSpec

SCHEMA_VERSION = 1
# The stage records that can sit beside a model file and carry what the graph does not say:
# the export's (export.records.RECORD_NAME) and the quantize stage's, which copies it on.
STAGE_RECORDS = ("export.json", "quantize.json")

# What a graph's compute is made of, as the quantizers choose their modes by it.
CONVOLUTIONAL, ATTENTION, PLAIN = "convolutional", "attention", "plain"
# Attention as ONNX Runtime's fusions and a decoder's export write it (no Softmax left).
_FUSED_ATTENTION = ("Attention", "MultiHeadAttention", "GroupQueryAttention")
# IR operator names as the ONNX ones counted here.
_IR_OPS = {"Convolution": "Conv", "GroupConvolution": "Conv"}


def structure_of(ops: Mapping[str, int]) -> str:
    """``convolutional`` when convolutions are at least as many as matrix products (and one),
    ``attention`` when matrix products outnumber them with a Softmax or a fused attention
    operator, else ``plain`` (MLPs, recurrent layers, products without attention)."""
    conv, matmul = ops.get("Conv", 0), ops.get("MatMul", 0)
    if conv >= max(1, matmul):
        return CONVOLUTIONAL
    attends = any(ops.get(op, 0) for op in ("Softmax", *_FUSED_ATTENTION))
    return ATTENTION if matmul > conv and attends else PLAIN


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ModelInfo:
    """The facts of one model file that every stage needs, decided once.

    ``inputs`` are what a caller feeds, a KV-cache decoder's cache and positions excluded
    (``decoder`` holds its layout: the runtime fills those); ``origin`` is what the model came
    from (``gguf``, ``huggingface``, ``onnx``, ``openvino``, ``torch``) and ``origin_digest``
    that source's content digest (None for a module in memory).
    """

    schema_version: int = SCHEMA_VERSION
    path: Path
    format: str
    files: tuple[tuple[str, str], ...]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    ops: Mapping[str, int]
    structure: str
    task: str
    family: str
    decoder: Mapping[str, Any] | None = None
    origin: str
    origin_digest: str | None = None

    @property
    def signature(self) -> list[tuple[str, str, tuple[int | str, ...]]]:
        """(name, numpy dtype, shape) of the inputs a caller feeds (the data check's form)."""
        return [(t.name, t.dtype, t.shape) for t in self.inputs]

    def rewritten(self, model_file: Path) -> ModelInfo:
        """The same model written as another graph (ONNX Runtime's fusions of it): inputs,
        outputs, task, family and structure stay this one's; files and operators are read
        from ``model_file``."""
        path = Path(model_file)
        return dataclasses.replace(self, path=path, files=_files(path),
                                   ops=dict(sorted(read_ops(path).items())))

    @property
    def digest(self) -> str:
        """Content id: everything but where this process found the files."""
        d = self.to_dict()
        d.pop("path")
        return digest("model-info", d)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        d: dict[str, Any] = to_jsonable(self)
        d["inputs"] = [t.to_dict() for t in self.inputs]
        d["outputs"] = [t.to_dict() for t in self.outputs]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelInfo:
        """Inverse of :meth:`to_dict`."""
        check_schema(data, "ModelInfo", SCHEMA_VERSION)
        fields = dict(data)
        fields["path"] = Path(data["path"])
        fields["files"] = tuple((str(n), str(h)) for n, h in data["files"])
        for name in ("inputs", "outputs"):
            fields[name] = tuple(TensorSpec.from_dict(t) for t in data[name])
        return cls(**fields)


@dataclasses.dataclass(frozen=True, slots=True)
class Recorded:
    """What a stage record says of its model beyond the graph: a KV-cache decoder's cache
    layout (None for other models) and the GGUF file it came from, by sha256 (else None)."""

    decoder: Mapping[str, Any] | None = None
    gguf_sha256: str | None = None


def recorded(model_file: Path) -> Recorded:
    """The :class:`Recorded` facts of the export or quantize record beside ``model_file``;
    empty for a model no stage wrote (a user's own .onnx is neither a decoder nor from a GGUF).

    This is the one reader of those facts: a decoder's layout once travelled as a
    ``decoder.json`` and a GGUF origin as a ``gguf_source.json`` beside the model, each read
    by its own stage.
    """
    folder = Path(model_file).parent
    for name in STAGE_RECORDS:
        if (folder / name).is_file():
            data = json.loads((folder / name).read_text())
            return Recorded(decoder=data.get("decoder"), gguf_sha256=data.get("gguf_sha256"))
    return Recorded()


def recorded_layout(model_file: Path) -> DecoderLayout | None:
    """The cache layout of the KV-cache decoder at ``model_file`` (its stage record's), else
    None: every other model."""
    layout = recorded(model_file).decoder
    return None if layout is None else DecoderLayout.from_dict(dict(layout))


def read_model_info(model_file: Path, *, task: str, family: str, origin: str,
                    origin_digest: str | None, filled: frozenset[str] = frozenset(),
                    decoder: Mapping[str, Any] | None = None) -> ModelInfo:
    """The record of an ONNX or IR file: its files by digest, its inputs and outputs and its
    operators, read from the graph without its weights (no runtime session); ``filled`` are
    inputs the runtime feeds itself (a decoder's cache), left out of ``inputs``."""
    path = Path(model_file)
    inputs, outputs, ops = _read_ir(path) if is_ir(path) else _read_onnx(path)
    return ModelInfo(
        path=path, format="openvino" if is_ir(path) else "onnx",
        files=_files(path),
        inputs=tuple(t for t in inputs if t.name not in filled), outputs=outputs,
        ops=dict(sorted(ops.items())), structure=structure_of(ops), task=task, family=family,
        decoder=decoder, origin=origin, origin_digest=origin_digest)


def _files(path: Path) -> tuple[tuple[str, str], ...]:
    """(name, sha256) of each file the model file stands for (weights, external data)."""
    return tuple((f.name, file_sha256(f)) for f in model_files(path))


def onnxruntime_operators(model_file: Path) -> tuple[str, ...]:
    """The operators of ONNX Runtime's own domain (``com.microsoft``) in an ONNX file, sorted
    (none in an IR). A graph holding them (a decoder's KV-cache export fused for ONNX Runtime:
    GroupQueryAttention, RotaryEmbedding; MatMulNBits) is ONNX Runtime's to run: NNCF cannot
    quantize it as an OpenVINO model ("not yet supported OpenVINO data type: dynamic", from the
    empty optional inputs of GroupQueryAttention)."""
    path = Path(model_file)
    if not is_onnx(path):
        return ()
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return tuple(sorted({n.op_type for n in graph.node if n.domain == "com.microsoft"}))


def read_ops(model_file: Path) -> Counter[str]:
    """The operator counts of an ONNX or IR file (IR operators under their ONNX names)."""
    path = Path(model_file)
    return (_read_ir(path) if is_ir(path) else _read_onnx(path))[2]


def _read_onnx(path: Path) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...],
                                    Counter[str]]:
    import onnx
    from onnx.helper import tensor_dtype_to_np_dtype

    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {i.name for i in graph.initializer}

    def spec(value: Any) -> TensorSpec:
        tensor = value.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                     for d in tensor.shape.dim)
        return TensorSpec(name=value.name, dtype=tensor_dtype_to_np_dtype(
            tensor.elem_type).name, shape=dims)

    return (tuple(spec(v) for v in graph.input if v.name not in weights),
            tuple(spec(v) for v in graph.output), Counter(n.op_type for n in graph.node))


def _read_ir(path: Path) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...],
                                  Counter[str]]:
    import openvino as ov

    model = ov.Core().read_model(str(path))

    def spec(port: Any) -> TensorSpec:
        return TensorSpec(name=port.get_any_name(),
                          dtype=port.get_element_type().to_dtype().name,
                          shape=tuple(d.get_length() if d.is_static else "?"
                                      for d in port.get_partial_shape()))

    ops = Counter(_IR_OPS.get(op.get_type_name(), op.get_type_name()) for op in model.get_ops())
    return tuple(map(spec, model.inputs)), tuple(map(spec, model.outputs)), ops
