"""Per-output and per-channel-group scoring, detection decoding and range safety's graph rules,
on small hand-made tensors and graphs whose right answers are known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from frugalml.quantize import detection
from frugalml.quantize.checks import Task
from frugalml.quantize.parts import OutputParts, channel_label, spread_groups
from frugalml.quantize.recipe import Budget
from frugalml.quantize.scoring import TaskScorer


def yolo_outputs(seed: int = 0, items: int = 8, anchors: int = 200) -> np.ndarray:
    """[items, 4 + 3, anchors]: boxes in pixels (0-320), scores in (0, 1)."""
    rng = np.random.default_rng(seed)
    boxes = np.concatenate([rng.uniform(20, 300, (items, 2, anchors)),
                            rng.uniform(10, 60, (items, 2, anchors))], 1)
    scores = 1 / (1 + np.exp(-rng.normal(-3, 2, (items, 3, anchors))))
    return np.concatenate([boxes, scores], 1).astype(np.float32)


def test_channels_of_different_scales_are_grouped_and_constant_ones_left_out() -> None:
    spreads = np.array([120.0, 100.0, 1.0, 0.9, 0.0, 1e-9, 30.0])
    groups = spread_groups(spreads)
    assert [g.tolist() for g in groups] == [[2, 3], [0, 1, 6]]
    assert channel_label(np.array([0, 1, 2, 3, 7])) == "0-3,7"


def test_a_broken_score_group_fails_where_the_whole_tensor_cosine_passes() -> None:
    ref = yolo_outputs()
    cand = ref.copy()
    cand[:, 4:] = np.where(ref[:, 4:] > 0.62, 1.24, 0.0)  # one uint8 scale of 1.24
    parts = OutputParts("output")
    parts.add(ref[:4], cand[:4])
    parts.add(ref[4:], cand[4:])
    scores = {p.label: p for p in parts.scores()}
    assert scores["output"].mean_cosine > 0.999
    assert scores["output[4-6]"].mean_cosine < 0.8 and scores["output[4-6]"].axis == 1
    assert scores["output[0-3]"].mean_cosine == pytest.approx(1.0)


def test_an_axis_whose_length_varies_is_not_a_channel_axis() -> None:
    parts = OutputParts("tokens")
    rng = np.random.default_rng(0)
    for length in (5, 9):
        ref = rng.normal(0, 1, (2, length, 6))
        ref[..., 0] *= 100
        parts.add(ref, ref + 0.01)
    groups = [p for p in parts.scores() if p.channels is not None]
    assert [p.axis for p in groups] == [2, 2] and groups[1].channels == (0,)


def test_detections_decode_nms_and_match() -> None:
    head = np.zeros((1, 6, 3), np.float32)  # 3 anchors, 2 classes
    head[0, :4] = [[50, 52, 200], [50, 50, 200], [20, 20, 20], [20, 20, 20]]
    head[0, 4] = [0.9, 0.8, 0.1]  # anchors 0 and 1 overlap in class 0: NMS keeps 0
    head[0, 5] = [0.1, 0.1, 0.7]
    assert detection.yolo_layout(yolo_outputs()) == "channels-first"
    assert detection.yolo_layout(yolo_outputs().transpose(0, 2, 1)) == "channels-last"
    found = detection.decode(head, "channels-first")[0]
    assert found.classes.tolist() == [0, 1] and found.scores.tolist() == pytest.approx([0.9, 0.7])
    moved = head.copy()
    moved[0, 0, 2] += 15  # class 1's box moves 15 of its 20 pixels: IoU 0.14
    assert detection.matched(found, detection.decode(moved, "channels-first")[0]).tolist() == [
        True, False]
    assert detection.yolo_layout(np.full((1, 1, 8, 8), 0.5, np.float32)) is None  # a map


def test_detection_task_reports_agreement_and_refuses_a_set_without_detections() -> None:
    ref = yolo_outputs()
    scorer = TaskScorer(Task.OBJECT_DETECTION, "output")
    scorer.add({"output": ref}, {"output": ref}, {}, np.full(len(ref), -1))
    report = scorer.report(Budget())
    assert report.within_budget and report.candidate["detection_agreement_with_fp32"] == 1.0
    empty = TaskScorer(Task.OBJECT_DETECTION, "output")
    quiet = ref.copy()
    quiet[:, 4:] = 0.01
    empty.add({"output": quiet}, {"output": quiet}, {}, np.full(len(ref), -1))
    with pytest.raises(Exception, match="no detection scoring 0.25"):
        empty.report(Budget())


def test_a_classifier_checks_cosine_only_when_a_cosine_is_given() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 1, (64, 10))
    noisy = logits + rng.normal(0, 0.3, logits.shape)
    labels = logits.argmax(1)

    def checks(budget: Budget) -> dict[str, bool]:
        scorer = TaskScorer(Task.CLASSIFICATION, "logits")
        scorer.add({"logits": logits}, {"logits": noisy}, {}, labels)
        return {c.name: c.passed for c in scorer.report(budget).checks}

    assert "mean cosine to FP32" not in checks(Budget(max_accuracy_drop_points=100))
    assert checks(Budget(min_mean_cosine=0.999, max_accuracy_drop_points=100))[
        "mean cosine to FP32"] is False


def _graph(path: Path) -> Path:
    """x -> Conv a (range ~100) and Conv b (range ~1) -> Concat -> Conv c -> Sigmoid -> y."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = {k: numpy_helper.from_array(rng.normal(0, s, shape).astype(np.float32), k)
         for k, s, shape in (("wa", 30.0, (4, 3, 1, 1)), ("wb", 0.3, (4, 3, 1, 1)),
                             ("wc", 0.1, (2, 8, 1, 1)))}
    nodes = [helper.make_node("Conv", ["x", "wa"], ["a"], name="conv_a"),
             helper.make_node("Conv", ["x", "wb"], ["b"], name="conv_b"),
             helper.make_node("Concat", ["a", "b"], ["ab"], name="mix", axis=1),
             helper.make_node("Conv", ["ab", "wc"], ["c"], name="conv_c"),
             helper.make_node("Sigmoid", ["c"], ["y"], name="head")]
    graph = helper.make_graph(
        nodes, "mixed", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2, 4, 4])], list(w.values()))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_range_safety_finds_the_output_tail_and_a_mixed_range_concat(tmp_path: Path) -> None:
    import onnx

    from frugalml.calibration import from_items, make_set
    from frugalml.quantize.api import quantize
    from frugalml.quantize.range_safety import analyse

    model = onnx.load(str(_graph(tmp_path / "mixed.onnx")))
    rng = np.random.default_rng(1)
    feeds = [{"x": rng.normal(0, 1, (1, 3, 4, 4)).astype(np.float32)} for _ in range(8)]
    safety = analyse(model, iter(feeds))
    assert safety.output_tail == ("head",)
    assert [m["node"] for m in safety.mixed_ranges] == ["mix"]
    assert safety.mixed_ranges[0]["ratio"] > 8

    items = [{"x": rng.normal(0, 1, (3, 4, 4)).astype(np.float32)} for _ in range(60)]
    data = make_set(from_items(items), calibration_size=30)

    def concat_scales(safe: bool) -> list[float | None]:
        """The scales NNCF (which unifies a Concat's inputs) gives the Concat's two inputs
        (None: the input arrives in float)."""
        from onnx import numpy_helper

        from frugalml.quantize.recipe import get_recipe

        record = quantize(tmp_path / "mixed.onnx", data, tmp_path / f"int8-{safe}",
                          backend="nncf", allow_over_budget=True,
                          recipe=get_recipe("int8", range_safe=safe))
        if safe:
            assert record.range_safety["output_tail"] == ["head"]
            assert [m["node"] for m in record.range_safety["mixed_ranges"]] == ["mix"]
            assert "mix" not in record.recipe["ignored_nodes"]  # the user's recipe, as given
        quantized = onnx.load(str(record.path))
        producer = {o: n for n in quantized.graph.node for o in n.output}
        inits = {i.name: numpy_helper.to_array(i) for i in quantized.graph.initializer}
        mix = next(n for n in quantized.graph.node if n.name == "mix")
        return [float(inits[producer[i].input[1]]) if producer[i].op_type ==
                "DequantizeLinear" else None for i in mix.input]

    shared = concat_scales(safe=False)
    assert shared[0] is not None and shared[0] == shared[1]  # one scale over ~100 and ~1
    assert concat_scales(safe=True) == [None, None]  # the Concat reads both in float


def test_average_precision_of_known_rankings() -> None:
    truths = [np.array([[0, 0, 10, 10, 0], [20, 20, 30, 30, 0]], np.float32)]
    exact = detection.Detections(truths[0][:, :4], np.array([0.9, 0.8]), np.array([0, 0]))
    assert detection.average_precision([exact], truths) == pytest.approx(1.0)
    # A false positive ranked first, then one of the two boxes: precision 1/2 at recall 1/2.
    half = detection.Detections(np.array([[50, 50, 60, 60], [0, 0, 10, 10]], np.float32),
                                np.array([0.9, 0.8]), np.array([0, 0]))
    assert detection.average_precision([half], truths) == pytest.approx(0.25)


def test_labelled_boxes_follow_the_letterbox_and_the_crop() -> None:
    from frugalml.calibration.pixels import pixels_from

    box = np.array([[0, 0, 200, 100, 3]], np.float32)
    boxed = pixels_from("yolo", letterbox=64).map_boxes(box, 200, 100)
    np.testing.assert_allclose(boxed, [[0, 16, 64, 48, 3]])
    # Short side 100 -> 50: 100 x 50, centre crop 50 cuts 25 pixels on the left.
    cropped = pixels_from("imagenet", size=50, resize=50).map_boxes(
        np.array([[0, 0, 40, 100, 1], [100, 0, 150, 100, 2]], np.float32), 200, 100)
    np.testing.assert_allclose(cropped, [[25, 0, 50, 50, 2]])  # the first is cut away


def test_graph_rules_find_a_decision_head_and_a_log_front_end() -> None:
    """x -> MatMul "spectrum" -> Abs -> Add 1 -> Log -> MatMul "body" -> Relu -> Gemm "head"
    -> Sigmoid -> y[n, 1], and a second output z[n, 4] from "body": the chain before the Log
    (with its weighted layer) and the head are kept float; "body", which makes a
    several-value output too, is not a decision head."""
    from onnx import TensorProto, helper, numpy_helper

    from frugalml.quantize.range_safety import graph_only

    rng = np.random.default_rng(4)
    w = {k: numpy_helper.from_array(rng.normal(0, 0.1, s).astype(np.float32), k)
         for k, s in (("ws", (8, 8)), ("wb", (8, 4)), ("wh", (4, 1)), ("one", ()))}
    nodes = [helper.make_node("MatMul", ["x", "ws"], ["s"], name="spectrum"),
             helper.make_node("Abs", ["s"], ["a"], name="abs"),
             helper.make_node("Add", ["a", "one"], ["p"], name="plus_one"),
             helper.make_node("Log", ["p"], ["f"], name="log"),
             helper.make_node("MatMul", ["f", "wb"], ["z"], name="body"),
             helper.make_node("Relu", ["z"], ["r"], name="relu"),
             helper.make_node("Gemm", ["r", "wh"], ["g"], name="head"),
             helper.make_node("Sigmoid", ["g"], ["y"], name="decide")]
    graph = helper.make_graph(
        nodes, "decide", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, ["n", 4])], list(w.values()))
    found = graph_only(helper.make_model(graph))
    assert found.output_tail == ("decide",)
    assert found.decision_heads == ("head",)
    assert set(found.log_inputs) == {"plus_one", "abs", "spectrum"}
    assert set(found.nodes) == {"decide", "head", "plus_one", "abs", "spectrum"}


def _matmul_concat(path: Path) -> Path:
    """x[n, 128] -> two MatMuls, one scaled x100 -> Concat ("mix") -> MatMul ("head")."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(2)
    w = {name: numpy_helper.from_array(rng.normal(0, 0.1, shape).astype(np.float32), name)
         for name, shape in (("w1", (128, 128)), ("w2", (128, 128)), ("w3", (256, 8)))}
    w["hundred"] = numpy_helper.from_array(np.array(100.0, np.float32), "hundred")
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["a"], name="a"),
             helper.make_node("MatMul", ["x", "w2"], ["b0"], name="b0"),
             helper.make_node("Mul", ["b0", "hundred"], ["b"], name="b"),
             helper.make_node("Concat", ["a", "b"], ["ab"], name="mix", axis=-1),
             helper.make_node("MatMul", ["ab", "w3"], ["y"], name="head")]
    graph = helper.make_graph(
        nodes, "mix", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 128])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 8])], list(w.values()))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]), str(path))
    return path


def test_w4a8_of_matmuls_keeps_the_output_tail_and_reads_no_ranges(tmp_path: Path) -> None:
    """4-bit MatMuls quantize their activations per call: no Concat scale to keep apart, so
    range safety keeps the (graph-only) output tail and skips the FP32 ranges pass."""
    import onnx

    from frugalml.calibration import from_items, make_set
    from frugalml.quantize.api import quantize
    from frugalml.quantize.range_safety import analyse
    from frugalml.quantize.recipe import get_recipe

    model = _matmul_concat(tmp_path / "mm.onnx")
    rng = np.random.default_rng(3)
    items = [{"x": rng.normal(0, 1, (128,)).astype(np.float32)} for _ in range(48)]
    data = make_set(from_items(items), calibration_size=32)
    static = analyse(onnx.load(str(model)), iter([{"x": i["x"][None]} for i in items[:8]]))
    assert [m["node"] for m in static.mixed_ranges] == ["mix"]  # what INT8 would keep apart
    record = quantize(model, data, tmp_path / "w4a8", recipe=get_recipe("w4a8", group_size=32),
                      eval_items=16, allow_over_budget=True)
    assert record.range_safety["output_tail"] == list(static.output_tail)
    assert record.range_safety["mixed_ranges"] == []
    assert record.int4_weight_layers  # and the MatMuls did get 4-bit weights
