"""The gguf backend keeps a GGUF file's own blocks: Q4_0, Q4_1 and Q8_0 weights matched to the
export's MatMuls and embedding by content (rows in another order included), run as
MatMulNBits / GatherBlockQuantized, and computing what the file's dequantized weights do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

K, N, VOCAB = 128, 64, 96


def _gguf(path: Path) -> dict[str, np.ndarray]:
    """A GGUF holding one tensor per block type; returns each one's dequantized rows."""
    import gguf
    from gguf.quants import dequantize, quantize

    rng = np.random.default_rng(0)
    writer = gguf.GGUFWriter(str(path), "llama")
    decoded = {}
    for name, kind, shape in (("q40", "Q4_0", (N, K)), ("q41", "Q4_1", (N, N)),
                              ("q80", "Q8_0", (N, N)), ("embd", "Q8_0", (VOCAB, K))):
        qtype = gguf.GGMLQuantizationType[kind]
        blocks = quantize(rng.normal(size=shape).astype(np.float32), qtype)
        writer.add_tensor(name, blocks, raw_shape=blocks.shape, raw_dtype=qtype)
        decoded[name] = dequantize(blocks, qtype).astype(np.float32).reshape(shape)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return decoded


def _graph(w: dict[str, np.ndarray]) -> onnx.ModelProto:
    """ids -> Gather(embd) -> MatMul(q40^T) -> MatMul(q41^T, rows reversed) -> MatMul(q80^T)."""
    inits = [numpy_helper.from_array(w["embd"], "embd"),
             numpy_helper.from_array(np.ascontiguousarray(w["q40"].T), "w40"),
             numpy_helper.from_array(np.ascontiguousarray(w["q41"][::-1].T), "w41"),
             numpy_helper.from_array(np.ascontiguousarray(w["q80"].T), "w80")]
    nodes = [helper.make_node("Gather", ["embd", "ids"], ["h0"], name="embed"),
             helper.make_node("MatMul", ["h0", "w40"], ["h1"], name="l40"),
             helper.make_node("MatMul", ["h1", "w41"], ["h2"], name="l41"),
             helper.make_node("MatMul", ["h2", "w80"], ["y"], name="l80")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, "s"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, "s", N])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def _run(model: onnx.ModelProto, ids: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(["y"], {"ids": ids})[0]


def test_each_block_type_keeps_its_grid_and_computes_what_the_file_does(tmp_path: Path) -> None:
    from frugalml.quantize._gguf_nodes import rewrite
    from frugalml.quantize.gguf_grid import _match, read_tensors

    decoded = _gguf(tmp_path / "m.gguf")
    tensors = read_tensors(tmp_path / "m.gguf")
    for name, _, _, rows in tensors:  # our reading of the blocks is llama.cpp's
        np.testing.assert_array_equal(rows, decoded[name])
    assert {t[1] for t in tensors} == {"Q4_0", "Q4_1", "Q8_0"}
    model = _graph(decoded)
    ids = np.array([[3, 17, 95, 0, 42]], np.int64)
    want = _run(model, ids)
    report = rewrite(model.graph, tensors, _match)
    assert report["transcoded"] == {"embed": "embd Q8_0", "l40": "q40 Q4_0",
                                    "l41": "q41 Q4_1", "l80": "q80 Q8_0"}
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("MatMulNBits") == 3 and "GatherBlockQuantized" in ops
    assert {i.name for i in model.graph.initializer}.isdisjoint({"embd", "w40", "w41", "w80"})
    bits = {n.name: next(a.i for a in n.attribute if a.name == "bits")
            for n in model.graph.node if n.op_type == "MatMulNBits"}
    assert bits == {"l40_gguf": 4, "l41_gguf": 4, "l80_gguf": 8}
    # The weights the new nodes hold are the file's, exactly: unpack and compare.
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}

    def unpacked(stem: str) -> np.ndarray:
        packed = inits[f"{stem}_blocks"]
        codes = np.stack([packed & 0x0F, packed >> 4], axis=-1).reshape(*packed.shape[:2], -1)
        scales = inits[f"{stem}_scales"].reshape(packed.shape[:2])
        return scales[..., None] * (codes.astype(np.float32) - 8)

    np.testing.assert_array_equal(unpacked("l40").reshape(N, K), decoded["q40"])
    offsets = inits["l41_offsets"].T  # [N, K / 32]: 8 d + m
    q41 = unpacked("l41") + offsets[..., None]
    np.testing.assert_allclose(q41.reshape(N, N), decoded["q41"][::-1], rtol=0, atol=1e-6)
    got = _run(model, ids)  # activations int8 per block inside the kernels (accuracy level 4)
    cosine = float(np.sum(got * want) / np.linalg.norm(got) / np.linalg.norm(want))
    assert cosine > 0.999, cosine


def test_a_model_that_did_not_come_from_a_gguf_is_refused(tmp_path: Path) -> None:
    from frugalml.errors import QuantizationError
    from frugalml.quantize.gguf_grid import source_gguf

    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(QuantizationError, match="did not come from a GGUF file"):
        source_gguf(tmp_path / "model.onnx")


def test_an_export_names_its_gguf_by_digest_found_through_this_machines_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No machine path in an export: its record holds the GGUF's sha256; the file is found
    where this machine's GGUF cache last saw it, and only with that content."""
    import json

    from frugalml.core.records import file_sha256
    from frugalml.errors import QuantizationError
    from frugalml.quantize.gguf_grid import source_gguf

    monkeypatch.setenv("FRUGALML_CACHE", str(tmp_path / "cache"))
    gguf = tmp_path / "where" / "model.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF" + bytes(range(200)))
    sha = file_sha256(gguf)
    (tmp_path / "cache" / "gguf").mkdir(parents=True)  # what gguf_model_dir leaves there
    (tmp_path / "cache" / "gguf" / f"{sha[:24]}-3.source.json").write_text(
        json.dumps({"path": str(gguf), "sha256": sha}))
    export = tmp_path / "export"
    export.mkdir()
    (export / "export.json").write_text(json.dumps({"gguf_sha256": sha}))
    assert source_gguf(export / "model.onnx") == gguf
    gguf.write_bytes(b"GGUF" + bytes(range(100)))  # changed since: not the file it came from
    with pytest.raises(QuantizationError, match=f"sha256 {sha[:16]}.*Export the .gguf again"):
        source_gguf(export / "model.onnx")


def test_each_stage_alone_from_a_gguf_carries_its_facts_in_the_records(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """`frugal export`, `calibrate`, `quantize --backend gguf` and `compile`, each on the folder
    the one before wrote: the cache layout and the GGUF's digest ride in export.json and
    quantize.json (no side file beside either model), and the bundle is a decoder's."""
    import json

    from bench._data import tiny_shakespeare
    from frugalml.cli import main
    from frugalml.core.records import file_sha256
    from frugalml.runtime import load
    from frugalml.targets import detect
    from tests.decoders import tiny_llama_gguf

    monkeypatch.setenv("FRUGALML_CACHE", str(tmp_path / "cache"))
    gguf = tiny_llama_gguf(tmp_path / "llama.gguf")
    text = tmp_path / "lines.txt"
    text.write_text("\n".join(t for t in tiny_shakespeare().read_text().splitlines()[:200] if t))
    assert main(["export", str(gguf), "--out", str(tmp_path / "export"),
                 "--task", "text-generation-with-past", "--json"]) == 0
    assert main(["calibrate", str(text), "--model", str(gguf), "--out", str(tmp_path / "cal"),
                 "--num", "8", "--json"]) == 0
    assert main(["quantize", str(tmp_path / "export"), "--data", str(tmp_path / "cal"),
                 "--recipe", "w4a8", "--backend", "gguf", "--out", str(tmp_path / "q"),
                 "--eval-items", "4", "--allow-over-budget", "--json"]) == 0
    assert main(["compile", str(tmp_path / "q"), "--target", detect().name, "--data",
                 str(tmp_path / "cal"), "--out", str(tmp_path / "bundles"), "--json"]) == 0
    capsys.readouterr()
    exported = json.loads((tmp_path / "export" / "export.json").read_text())
    quantized = json.loads((tmp_path / "q" / "quantize.json").read_text())
    assert exported["gguf_sha256"] == quantized["gguf_sha256"] == file_sha256(gguf)
    assert exported["decoder"]["past_inputs"] and quantized["decoder"] == exported["decoder"]
    for folder in ("export", "q"):
        assert not {"decoder.json", "gguf_source.json"} & {
            p.name for p in (tmp_path / folder).iterdir()}
    assert str(tmp_path) not in json.dumps(exported["decoder"]) + exported["gguf_sha256"]
    (bundle,) = [p for p in (tmp_path / "bundles").iterdir() if p.is_dir()]
    with load(bundle) as model:
        assert model.generation is not None
        assert list(model.generation.past_inputs) == exported["decoder"]["past_inputs"]
