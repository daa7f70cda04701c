"""Streaming scores: decisions per frame and per segment, one-value outputs by their error
(never a cosine over one number), and an error that only shows through the carried state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper

from bench._streaming import RATE
from frugalml.calibration.streams import stream_set
from frugalml.quantize.accuracy import measure
from frugalml.quantize.api import quantize
from frugalml.quantize.recipe import Budget
from frugalml.quantize.streaming import StreamScorer, segment_agreement, segments
from frugalml.runtime.roles import parse_roles

ROLES = parse_roles(state=["state=stateN"], constant=[f"sr={RATE}"])


def test_segments_and_their_agreement() -> None:
    ref = np.array([0, 1, 1, 1, 0, 0, 1, 1, 0, 1], bool)
    assert segments(ref) == [(1, 4), (6, 8), (9, 10)]
    assert segment_agreement(ref, ref) == (3, 3, 3)
    shifted = np.array([0, 0, 1, 1, 1, 0, 0, 0, 0, 1], bool)  # IoU 2/4, missed, exact
    assert segment_agreement(ref, shifted) == (2, 3, 2)
    assert segment_agreement(np.zeros(5, bool), np.zeros(5, bool)) == (0, 0, 0)


def _steps(values: list[float], state: float) -> list[dict[str, np.ndarray]]:
    return [{"speech": np.array([[v]], np.float32),
             "stateN": np.full((2, 1, 4), state, np.float32)} for v in values]


def test_one_value_outputs_are_scored_by_error_and_decision_not_cosine() -> None:
    scorer = StreamScorer({"state": "stateN"}, threshold=0.5, decision=None)
    ref = _steps([0.1, 0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], 1.0)
    cand = _steps([0.1, 0.9, 0.4, 0.4, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], 1.0)
    cand[-1]["stateN"][1] *= -1  # the second layer's state ends reversed
    scorer.add(ref, cand, {"state": 1})
    report = scorer.report(Budget())
    assert report.output == "speech" and "speech_mean_cosine" not in report.candidate
    assert np.isclose(report.candidate["frame_agreement_with_fp32"], 0.8)
    assert np.isclose(report.candidate["speech_max_abs_error"], 0.5)
    assert report.candidate["segment_agreement_with_fp32"] == 0.0  # [1,4) vs [1,2): IoU 1/3
    assert report.candidate["state_end_cosine_per_slice"] == {"stateN[0]": 1.0, "stateN[1]": -1.0}
    assert not report.within_budget
    assert {c.name for c in report.checks if not c.passed} == {
        "frame agreement with FP32", "segment agreement with FP32"}


def _state_scaled(model: Path, dest: Path, factor: float) -> Path:
    """The detector with its state output scaled: no change from a zero state's first step
    beyond the state's size, a drift once the state is fed back."""
    graph = onnx.load(str(model))
    out = next(o for o in graph.graph.output if o.name == "stateN")
    for node in graph.graph.node:
        node.output[:] = ["stateN_raw" if o == "stateN" else o for o in node.output]
    graph.graph.initializer.append(onnx.numpy_helper.from_array(
        np.array(factor, np.float32), "state_factor"))
    graph.graph.node.append(helper.make_node("Mul", ["stateN_raw", "state_factor"], ["stateN"]))
    del out
    path = dest / "scaled.onnx"
    onnx.save(graph, str(path))
    return path


def test_an_error_that_compounds_through_the_state_is_seen(vad_model: Path, vad_streams: Path,
                                                           tmp_path: Path) -> None:
    data = stream_set(vad_streams, ROLES, vad_model, calibration_size=12 * 40)
    drifting = _state_scaled(vad_model, tmp_path, 1.5)
    feeds, _ = next(data.batches("evaluation", batch_size=40))  # steps from FP32's state
    per_step = [ort.InferenceSession(str(m), providers=["CPUExecutionProvider"]).run(
        ["speech"], feeds)[0] for m in (vad_model, drifting)]
    np.testing.assert_allclose(*per_step, atol=1e-6)  # scored per step, nothing is wrong
    report = measure(vad_model, drifting, data, Budget(), items=12)
    assert report.task == "streaming" and report.items == 12
    assert report.reference["steps"] == 12 * 40
    # Each step's own output from FP32's state is unchanged (the state only changes in size,
    # which a per-step cosine cannot see); over a stream the fed-back state drifts.
    assert report.candidate["speech_max_abs_error"] > 0.05
    assert report.candidate["state_end_cosine"] < 0.999
    same = measure(vad_model, vad_model, data, Budget(), items=12)
    assert same.candidate["frame_agreement_with_fp32"] == 1.0
    assert same.candidate["state_end_cosine"] > 0.99999 and same.within_budget


def test_quantize_scores_a_streaming_model_over_its_streams(vad_model: Path, vad_streams: Path,
                                                            tmp_path: Path) -> None:
    data = stream_set(vad_streams, ROLES, vad_model, calibration_size=12 * 40)
    record = quantize(vad_model, data, tmp_path / "q", recipe="int8-dynamic",
                      allow_over_budget=True)
    accuracy = record.accuracy
    assert accuracy["task"] == "streaming" and accuracy["output"] == "speech"
    candidate = accuracy["candidate"]
    assert 0.9 <= candidate["frame_agreement_with_fp32"] <= 1.0
    assert 0.0 <= candidate["segment_agreement_with_fp32"] <= 1.0
    assert 0.9 < candidate["state_end_cosine"] <= 1.0 + 1e-9
    assert record.input_roles == data.roles.to_dict()
    assert {c["name"] for c in accuracy["checks"]} >= {"frame agreement with FP32",
                                                      "segment agreement with FP32"}


def test_lstm_weights_go_int8_and_a_gru_is_reported_float(vad_model: Path, vad_lstm: Path,
                                                          vad_streams: Path,
                                                          tmp_path: Path) -> None:
    roles = parse_roles(state=["h=hN", "c=cN"], constant=[f"sr={RATE}"])
    data = stream_set(vad_streams, roles, vad_lstm, calibration_size=12 * 40)
    assert data.roles.batch_axes == {"h": 1, "c": 1}
    lstm = quantize(vad_lstm, data, tmp_path / "lstm", recipe="int8-dynamic",
                    allow_over_budget=True)
    assert sum("LSTM" in n for n in lstm.int8_activation_layers) == 2  # DynamicQuantizeLSTM
    assert lstm.size_bytes < 0.5 * vad_lstm.stat().st_size
    assert lstm.accuracy["candidate"]["frame_agreement_with_fp32"] >= 0.99
    assert set(lstm.accuracy["candidate"]["state_end_cosine_per_slice"]) == {
        "hN[0]", "hN[1]", "cN[0]", "cN[1]"}
    gru = quantize(vad_model, stream_set(vad_streams, ROLES, vad_model, calibration_size=480),
                   tmp_path / "gru", recipe="int8-dynamic", allow_over_budget=True)
    assert sum("GRU" in n for n in gru.float_layers) == 2  # ONNX Runtime has no integer GRU


def test_nncf_quantizes_an_lstm_for_openvino_and_says_a_gru_stays_float(
        vad_model: Path, vad_lstm: Path, vad_streams: Path, tmp_path: Path) -> None:
    """NNCF -> OpenVINO INT8: the LSTMSequence gets an int8 input and int8 weights (it ran as
    OpenVINO's I8 kernel), the GRUSequence stays float; the record says which."""
    roles = parse_roles(state=["h=hN", "c=cN"], constant=[f"sr={RATE}"])
    lstm = quantize(vad_lstm, stream_set(vad_streams, roles, vad_lstm, calibration_size=240),
                    tmp_path / "lstm", recipe="int8", backend="nncf", output_format="openvino",
                    target="x86-avx512", eval_items=4, allow_over_budget=True)
    assert sum(n.startswith("LSTMSequence") for n in lstm.int8_activation_layers) == 2
    assert not [n for n in lstm.float_layers if "LSTM" in n]
    gru = quantize(vad_model, stream_set(vad_streams, ROLES, vad_model, calibration_size=240),
                   tmp_path / "gru", recipe="int8", backend="nncf", output_format="openvino",
                   target="x86-avx512", eval_items=4, allow_over_budget=True)
    assert sum(n.startswith("GRUSequence") for n in gru.float_layers) == 2
    for record in (lstm, gru):  # the convolution reads its FakeQuantize through a Reshape:
        assert "/conv/Conv/WithoutBiases" in record.int8_activation_layers  # int8 activations
        # range safety keeps the spectrum MatMul (before the Log) and the head Gemm float
        assert not [n for n in record.int8_activation_layers + record.weight_only_layers
                    if "spectrum" in n or "head" in n]


def test_range_safety_keeps_the_log_front_end_and_the_decision_head_float(
        vad_model: Path, vad_streams: Path, spoken: Path, tmp_path: Path) -> None:
    """int8-static meets the detector's budget without the search once range safety keeps the
    Log's input chain (from the raw waveform's spectrum MatMul) and the head Gemm that makes
    the one-value decision in float; without it the decisions drift (0.74 / 0.57 here)."""
    from frugalml.quantize.recipe import get_recipe

    speech = stream_set(spoken, ROLES, vad_model, chunk=256, sample_rate=RATE,
                        calibration_size=300)
    synthetic = stream_set(vad_streams, ROLES, vad_model, calibration_size=12 * 40)
    for name, data in (("speech", speech), ("synthetic", synthetic)):
        safe = quantize(vad_model, data, tmp_path / f"{name}-safe", recipe="int8",
                        allow_over_budget=True)
        assert safe.range_safety["decision_heads"] == ["/head/Gemm"]
        assert {"/spectrum/MatMul", "/Abs", "/Add"} <= set(safe.range_safety["log_inputs"])
        assert safe.int8_activation_layers == ("/conv/Conv",)  # the Conv after the Log
        assert safe.accuracy["candidate"]["frame_agreement_with_fp32"] >= 0.99
        unsafe = quantize(vad_model, data, tmp_path / f"{name}-unsafe", allow_over_budget=True,
                          recipe=get_recipe("int8", range_safe=False))
        assert unsafe.accuracy["candidate"]["frame_agreement_with_fp32"] < 0.9
