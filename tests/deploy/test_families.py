"""Model families are plug-ins (issue 33): a family is one module and one registry line. The
toy family below ("ranking": a scorer whose graph ends in a TopK) is written here, registered
with one call, and a whole deploy then treats a ranking model as one: its candidates, its
limits and its evaluation size, with no other file touched."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from frugalml.deploy import families
from frugalml.deploy.families import Family, GraphFacts
from frugalml.errors import FrugalError


def _claims(graph: GraphFacts) -> bool:
    return graph.ops["TopK"] > 0 and graph.ops["Conv"] == 0


# The toy family module: what a ranking model is, what suits it, what it must meet.
RANKING = Family(name="ranking", about="scores items, keeps the top ones", claims=_claims,
                 candidates=frozenset({"int8-dynamic", "fp32-openvino"}),
                 budgets={"min_mean_cosine": 0.995}, eval_items=48)


@pytest.fixture
def ranking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(families.FAMILIES, "entries", dict(families.FAMILIES.entries))  # undone
    families.register("ranking", "tests.deploy.test_families:RANKING")  # the registry line


def _scorer(path: Path) -> Path:
    """x[batch, 16] -> two MatMuls -> scores[batch, 32] and their top 4 (TopK values)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.normal(size=s).astype(np.float32) / 4, n)
               for n, s in (("w1", (16, 64)), ("w2", (64, 32)))]
    k = numpy_helper.from_array(np.array([4], np.int64), "k")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1"),
         helper.make_node("Relu", ["h"], ["r"], name="relu"),
         helper.make_node("MatMul", ["r", "w2"], ["scores"], name="fc2"),
         helper.make_node("TopK", ["scores", "k"], ["top", "top_index"], name="topk")],
        "scorer", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 32]),
         helper.make_tensor_value_info("top", TensorProto.FLOAT, ["batch", 4])],
        [*weights, k])
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]),
                    str(path))
    return path


def test_a_registered_family_claims_its_models_before_the_catch_all(ranking: None) -> None:
    assert families.names()[-2:] == ("ranking", "other")
    ranked = GraphFacts(task="embedding", ops=Counter({"MatMul": 2, "TopK": 1}))
    assert families.family_of(ranked) is RANKING
    plain = GraphFacts(task="embedding", ops=Counter({"MatMul": 2}))
    assert families.family_of(plain).name == "other"
    conv = GraphFacts(task="classification", ops=Counter({"Conv": 3, "TopK": 1}))
    assert families.family_of(conv).name == "cnn"  # built-ins are asked first


def test_family_names_are_checked() -> None:
    with pytest.raises(FrugalError, match="Unknown model family 'ranking'; known: decoder"):
        families.get_family("ranking")
    with pytest.raises(FrugalError, match="'cnn' is already"):
        families.register("cnn", "somewhere:ELSE")


def test_a_deploy_treats_a_model_as_its_family_says(ranking: None, tmp_path: Path) -> None:
    from frugalml.deploy import DeployOptions, deploy

    model = _scorer(tmp_path / "scorer.onnx")
    np.save(tmp_path / "x.npy", np.random.default_rng(1).normal(size=(160, 16)).astype(
        np.float32))
    result = deploy(model, tmp_path / "x.npy", tmp_path / "out", DeployOptions(
        candidates="all", calibration_items=64, profile_runs=10, time_budget_s=300),
        quiet=True)
    record = result.record
    assert record["family"] == "ranking"
    (target,) = record["targets"].values()
    names = [c["name"] for c in target["candidates"]]
    # the family's candidates that this target runs (fp32-openvino where the kind carries IR)
    assert names[0] == "fp32" and set(names[1:]) <= {"int8-dynamic", "fp32-openvino"}
    assert "int8-dynamic" in names
    for c in target["candidates"][1:]:
        assert c["accuracy"]["items"] == 48, c["name"]  # the family's evaluation size
        cosine = next(k for k in c["accuracy"]["checks"] if "cosine" in k["name"])
        assert cosine["limit"] == 0.995, cosine  # the family's limit
