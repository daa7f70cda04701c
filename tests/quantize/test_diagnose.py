"""`diagnose` on a real model where INT8 misses its budget: all-MiniLM-L6-v2 with every
linear layer's activations in int8 (the default recipe keeps the FFN down-projections' GELU
outputs in float, for this reason). The exclusion list it finds must work in both backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from frugalml.errors import QuantizationError
from frugalml.quantize.api import quantize
from frugalml.quantize.diagnose import diagnose
from frugalml.quantize.recipe import Budget, get_recipe

PLAIN = get_recipe("int8", float_activations_after=(), calibration_items=100,
                   budget=Budget(min_mean_cosine=0.99, max_accuracy_drop_points=3.0))


def test_diagnose_finds_the_layers_and_both_backends_accept_them(
        minilm: tuple[Path, object], tmp_path: Path) -> None:
    model, data = minilm
    result = diagnose(model, data, tmp_path / "fixed", recipe=PLAIN, target="x86-avx2",
                      eval_items=200, probe_items=32)
    assert not result.baseline["within_budget"]
    assert result.final["within_budget"]
    assert 1 <= len(result.ignored_nodes) <= 8, result.ignored_nodes
    assert result.ranking[0].recovered > 0
    # ONNX Runtime keeps each residual Add's Q/DQ pair (shared with the next MatMul) when
    # told to exclude it: asked once, the 12 of MiniLM's 6 layers are not ranked.
    assert len(result.kept_in_int8) == 12 and all("add" in n for n in result.kept_in_int8)
    assert not set(result.kept_in_int8) & {s.node for s in result.ranking}
    top = {s.node for s in result.ranking[:len(result.ignored_nodes)]}
    assert set(result.ignored_nodes) == top
    assert (tmp_path / "fixed" / "model.onnx").is_file()
    assert (tmp_path / "fixed" / "diagnosis.json").is_file()
    # The same names, given to NNCF as an IgnoredScope, keep those layers out of int8.
    nncf = quantize(model, data, tmp_path / "nncf", backend="nncf", target="x86-avx2",
                    recipe=get_recipe("int8", calibration_items=64,
                                      ignored_nodes=result.ignored_nodes),
                    eval_items=200)
    assert set(result.ignored_nodes).isdisjoint(nncf.int8_activation_layers)
    assert set(result.ignored_nodes) <= set(nncf.float_layers)
    assert nncf.accuracy["within_budget"]



def test_the_search_finds_the_fewest_float_nodes_and_stops_at_its_deadline(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Doubling then bisection over a ranking: with 11 nodes and a budget met from 5 float
    nodes on, the points tried are 1, 2, 4, 8, 6, 5 (0, all INT8, is the caller's); at the
    deadline the fewest-float passing point so far is kept, and none passing is an error."""
    from types import SimpleNamespace

    import frugalml.quantize.diagnose as module

    ranking = tuple(module.Sensitivity(f"n{i}", 0.9, 0.01) for i in range(11))
    tried: list[int] = []

    def attempt(k: int) -> SimpleNamespace:
        tried.append(k)
        return SimpleNamespace(accuracy={"within_budget": k >= 5, "checks": []})

    tries: list[dict] = []
    chosen, stopped = module._search(ranking, attempt, tries)
    assert chosen.accuracy["within_budget"] and stopped == ""
    assert [t["float_layers"] for t in tries] == [1, 2, 4, 8, 6, 5]
    assert not {t["float_layers"]: t["within_budget"] for t in tries}[4]  # one fewer fails
    # A clock that passes the deadline once four points were tried.
    monkeypatch.setattr(module.time, "monotonic", lambda: 10.0 if len(tried) >= 4 else 0.0)
    tried.clear()
    chosen, stopped = module._search(ranking, attempt, [], deadline=5.0)
    assert tried == [1, 2, 4, 8] and chosen.accuracy["within_budget"]
    assert "time budget ran out after 4 points" in stopped
    tried.clear()
    with pytest.raises(QuantizationError, match="before any met the budget"):
        module._search(ranking, attempt, [], deadline=-1.0)


@pytest.mark.parametrize(("start", "points"), [
    (5, [5, 4]),  # predicted right: the point and the one below, nothing else
    (7, [7, 6, 4, 5]),  # too high: down by 1, 2 until a miss, then bisection
    (3, [3, 4, 6, 5]),  # too low: up by 1, 2 until a pass, then bisection
    (1, [1, 2, 4, 8, 6, 5]),  # no prediction: doubling
    (40, [11, 10, 8, 4, 6, 5]),  # past the ranking: from all of it
])
def test_the_search_from_a_predicted_start_finds_the_same_fewest_float_nodes(
        start: int, points: list[int]) -> None:
    from types import SimpleNamespace

    import frugalml.quantize.diagnose as module

    ranking = tuple(module.Sensitivity(f"n{i}", 0.9, 0.01) for i in range(11))
    tries: list[dict] = []
    chosen, _ = module._search(ranking, lambda k: SimpleNamespace(
        accuracy={"within_budget": k >= 5, "checks": [], "k": k}), tries, start=start)
    assert chosen.accuracy["k"] == 5
    assert [t["float_layers"] for t in tries] == points


def test_the_start_is_predicted_only_from_failed_cosine_checks() -> None:
    """Bisection on the probe's cosine over the ranking: the fewest top nodes reaching the
    limit of the failed cosine checks; 1 when anything else failed (the probe does not
    measure it)."""
    from types import SimpleNamespace

    import frugalml.quantize.diagnose as module

    ranking = tuple(module.Sensitivity(f"n{i}", 0.9, 0.01) for i in range(42))
    probed: list[int] = []

    def cosine(nodes: tuple[str, ...]) -> float:
        probed.append(len(nodes))
        return 0.990 + 0.0003 * len(nodes)  # reaches 0.995 at 17 nodes

    probe = SimpleNamespace(cosine=cosine)
    cos = {"name": "mean cosine to FP32", "passed": False, "limit": 0.995}
    part = dict(cos, name="mean cosine to FP32 of logits[0:4]")
    drop = {"name": "accuracy drop (points)", "passed": False, "limit": 2.0}
    assert module.predicted_start(probe, ranking, {"checks": [cos, part]}) == 17
    assert len(probed) <= 6  # log2(42) probes, not 42
    assert module.predicted_start(probe, ranking, {"checks": [cos, drop]}) == 1
    assert module.predicted_start(probe, ranking, {"checks": [dict(drop, passed=True)]}) == 1
    assert module.predicted_start(probe, (), {"checks": [cos]}) == 1


@pytest.mark.parametrize("float_precision", ["fp32", "bf16"])
def test_an_openvino_candidate_is_searched_as_irs_with_its_float_nodes_at_its_precision(
        float_precision: str, tmp_path: Path) -> None:
    """NNCF -> OpenVINO INT8 (deploy's int8-openvino, int8-bf16-openvino) searched as it
    ships: every point an IR scored by OpenVINO, the nodes kept out of INT8 computed at the
    recipe's float precision (bf16 where native: kept in bf16, not f32), ranked on the ONNX
    twin. The MLP's last MatMul writes the graph output, so OpenVINO names it after the
    output (``logits``), not ``fc2``: it is still found. Before, an IR's search opened the
    .xml as ONNX and the deploy crashed."""
    import numpy as np

    from frugalml.calibration import from_items, make_set
    from frugalml.runtime.host import read_host
    from tests.quantize.test_contract import mlp_onnx

    if float_precision == "bf16" and not read_host().capabilities.bf16:
        pytest.skip("this host has no native bf16 (avx512_bf16 / amx_bf16) to search at")
    rng = np.random.default_rng(3)
    items = [{"x": rng.normal(0, 1, 64).astype(np.float32)} for _ in range(160)]
    data = make_set(from_items(items, labels=[i % 10 for i in range(160)]), calibration_size=64)
    recipe = get_recipe("int8", calibration_items=64, float_precision=float_precision,
                        budget=Budget(min_mean_cosine=0.9999, max_accuracy_drop_points=100.0,
                                      max_size_ratio=2.0))  # a 2-layer IR is mostly its XML
    target = "x86-amx" if float_precision == "bf16" else "x86-avx2"
    result = diagnose(mlp_onnx(tmp_path / "model.onnx"), data, tmp_path / "out", recipe=recipe,
                      backend="nncf", target=target, eval_items=96, probe_items=32,
                      output_format="openvino")
    cosines = {t["float_layers"]: next(c["value"] for c in t["checks"]
                                       if c["name"] == "mean cosine to FP32")
               for t in result.tries}
    assert cosines[0] < cosines[1] < 0.9999 <= cosines[2], cosines  # INT8 misses; 2 float
    assert set(result.ignored_nodes) == {"fc1", "fc2"}
    record = json.loads((tmp_path / "out" / "quantize.json").read_text())
    assert record["path"].endswith("model.xml") and record["precision"] == "int8"
    assert record["accuracy"]["scored_with"] == (
        f"OpenVINO at {'bf16' if float_precision == 'bf16' else 'f32'} on this host")
    if float_precision == "bf16":  # bf16 really ran on the float nodes: close, not equal
        assert 1.0 - 1e-4 <= cosines[2] < 1.0 - 1e-7, cosines
    else:
        assert cosines[2] == pytest.approx(1.0, abs=1e-6)
