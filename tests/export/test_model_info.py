"""ModelInfo (issue 33): a model's facts read once, and its structure decided once for every
stage. A ViT-style graph (a convolutional patch embedding, then attention) was a transformer
to deploy, a CNN to ONNX Runtime's quantizer (any Conv) and, had it had no Conv, a transformer
to NNCF: now the family, both quantizers and the record agree."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from frugalml.calibration import from_items, make_set
from frugalml.export.model_info import (
    ATTENTION,
    CONVOLUTIONAL,
    PLAIN,
    ModelInfo,
    read_model_info,
    structure_of,
)


@pytest.mark.parametrize(("ops", "structure"), [
    ({"Conv": 20, "MatMul": 1}, CONVOLUTIONAL),
    ({"Conv": 1, "MatMul": 1}, CONVOLUTIONAL),
    ({"Conv": 1, "MatMul": 3, "Softmax": 1}, ATTENTION),     # ViT: one patch convolution
    ({"MatMul": 36, "GroupQueryAttention": 6}, ATTENTION),   # a fused decoder: no Softmax
    ({"MatMul": 2, "Gemm": 1}, PLAIN),                        # an MLP
    ({"GRU": 1, "Gemm": 1}, PLAIN),
])
def test_structure_is_decided_by_one_rule(ops: dict[str, int], structure: str) -> None:
    assert structure_of(ops) == structure


def _patch_attention(path: Path) -> Path:
    """pixels [b, 3, 8, 8] -> 4x4 patch Conv (8 channels) -> 4 tokens -> attention -> MatMul."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def weight(name: str, *shape: int) -> Any:
        return numpy_helper.from_array(rng.normal(0, 0.3, shape).astype(np.float32), name)

    nodes = [
        helper.make_node("Conv", ["pixels", "patch_w"], ["patches"], name="patch_embed",
                         kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Reshape", ["patches", "shape"], ["flat"], name="flatten"),
        helper.make_node("Transpose", ["flat"], ["tokens"], name="tokens", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["tokens", "wq"], ["q"], name="query"),
        helper.make_node("MatMul", ["tokens", "wk"], ["k"], name="key"),
        helper.make_node("Transpose", ["k"], ["kt"], name="key_t", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["scores"], name="scores"),
        helper.make_node("Softmax", ["scores"], ["attention"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["attention", "tokens"], ["mixed"], name="mix"),
        helper.make_node("MatMul", ["mixed", "wo"], ["out"], name="project"),
    ]
    shape = numpy_helper.from_array(np.array([0, 8, 4], np.int64), "shape")
    graph = helper.make_graph(
        nodes, "patch_attention",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 4, 8])],
        [weight("patch_w", 8, 3, 4, 4), shape, weight("wq", 8, 8), weight("wk", 8, 8),
         weight("wo", 8, 8)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _pixels() -> Any:
    rng = np.random.default_rng(1)
    items = [{"pixels": rng.normal(0, 1, (3, 8, 8)).astype(np.float32)} for _ in range(48)]
    return make_set(from_items(items), calibration_size=24)


def test_the_record_reads_the_graph_without_a_session(tmp_path: Path) -> None:
    from frugalml.core.records import file_sha256
    from frugalml.deploy.families import GraphFacts, family_of

    model = _patch_attention(tmp_path / "model.onnx")
    info = read_model_info(model, task="outputs", family="transformer", origin="onnx",
                           origin_digest="d")
    assert info.structure == ATTENTION
    assert family_of(GraphFacts(task="outputs", ops=Counter(info.ops))).name == "transformer"
    assert info.signature == [("pixels", "float32", ("batch", 3, 8, 8))]
    assert [(t.name, t.shape) for t in info.outputs] == [("out", ("batch", 4, 8))]
    assert info.files == (("model.onnx", file_sha256(model)),)
    again = ModelInfo.from_dict(info.to_dict())
    assert again == info
    # the digest is the content's: the same model found elsewhere is the same record
    moved = tmp_path / "elsewhere" / "model.onnx"
    moved.parent.mkdir()
    moved.write_bytes(model.read_bytes())
    assert read_model_info(moved, task="outputs", family="transformer", origin="onnx",
                           origin_digest="d").digest == info.digest
    assert info.rewritten(moved).structure == ATTENTION


def _quantized_ops(record: Any) -> dict[str, set[str]]:
    """For each float node's name in the source: the op types feeding it in the QDQ graph."""
    import onnx

    graph = onnx.load(str(record.path)).graph
    producer = {o: n.op_type for n in graph.node for o in n.output}
    return {n.name: {producer.get(i, "input") for i in n.input} for n in graph.node
            if n.op_type in ("Conv", "MatMul")}


@pytest.mark.parametrize("given", ["path", "record"])
def test_onnx_runtime_quantizes_a_patch_embedded_transformer_as_a_transformer(
        tmp_path: Path, given: str) -> None:
    """Transformer mode (MatMul and Gemm only): the patch convolution keeps float input, as
    it does on every other transformer; the weight products get INT8."""
    from frugalml.quantize.api import quantize
    from frugalml.quantize.recipe import Budget, get_recipe

    path = _patch_attention(tmp_path / "model.onnx")
    model = path if given == "path" else read_model_info(
        path, task="outputs", family="transformer", origin="onnx", origin_digest=None)
    record = quantize(model, _pixels(), tmp_path / "q", recipe=get_recipe(
        "int8", budget=Budget(min_mean_cosine=0.0, max_size_ratio=5.0)),
        backend="onnxruntime", target="x86-avx512", eval_items=24)
    feeds = _quantized_ops(record)
    assert "DequantizeLinear" not in feeds["patch_embed"], feeds
    assert "DequantizeLinear" in feeds["query"] and "DequantizeLinear" in feeds["project"]
    assert "DequantizeLinear" not in feeds["scores"]  # activation x activation stays float


def test_nncf_gets_its_transformer_mode_from_the_same_structure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nncf

    from frugalml.quantize.api import quantize
    from frugalml.quantize.recipe import Budget, get_recipe

    seen = []
    real = nncf.quantize

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("model_type"))
        return real(*args, **kwargs)

    monkeypatch.setattr(nncf, "quantize", spy)
    quantize(_patch_attention(tmp_path / "model.onnx"), _pixels(), tmp_path / "q",
             recipe=get_recipe("int8", budget=Budget(min_mean_cosine=0.0, max_size_ratio=5.0)),
             backend="nncf", target="x86-avx512", eval_items=24)
    assert seen == [nncf.ModelType.TRANSFORMER]


def test_a_models_recorded_facts_come_from_the_stage_record_beside_it(tmp_path: Path) -> None:
    """A decoder's layout and a GGUF origin live in the export record and are carried by the
    quantize record (no ``decoder.json``/``gguf_source.json`` beside the model): one reader
    finds them beside either stage's model, and a user's own file has none."""
    import json

    from frugalml.export.model_info import STAGE_RECORDS, Recorded, recorded, recorded_layout
    from frugalml.export.records import RECORD_NAME as EXPORT_RECORD
    from frugalml.quantize.api import RECORD_NAME as QUANTIZE_RECORD

    assert STAGE_RECORDS == (EXPORT_RECORD, QUANTIZE_RECORD)
    layout = {"past_inputs": ["past.0.key"], "present_outputs": ["present.0.key"],
              "kv_heads": 2, "head_dim": 4, "max_positions": 64, "eos_token_ids": [2]}
    for name in STAGE_RECORDS:
        folder = tmp_path / name
        folder.mkdir()
        (folder / name).write_text(json.dumps({"decoder": layout, "gguf_sha256": "ab" * 32}))
        assert recorded(folder / "model.onnx") == Recorded(decoder=layout, gguf_sha256="ab" * 32)
        assert recorded_layout(folder / "model.onnx").past_inputs == ("past.0.key",)
    assert recorded(tmp_path / "model.onnx") == Recorded()
    assert recorded_layout(tmp_path / "model.onnx") is None
