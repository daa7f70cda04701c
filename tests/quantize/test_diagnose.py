"""`diagnose` on a real model where INT8 misses its budget: all-MiniLM-L6-v2 with every
linear layer's activations in int8 (the default recipe keeps the FFN down-projections' GELU
outputs in float, for this reason). The exclusion list it finds must work in both backends."""

from __future__ import annotations

from pathlib import Path

from frugalml.quantize.api import quantize
from frugalml.quantize.diagnose import diagnose
from frugalml.quantize.recipe import Budget, get_recipe
from tests.quantize.test_minilm import minilm  # noqa: F401  (the exported model fixture)

PLAIN = get_recipe("int8", float_activations_after=(), calibration_items=100,
                   budget=Budget(min_mean_cosine=0.99, max_accuracy_drop_points=3.0))


def test_diagnose_finds_the_layers_and_both_backends_accept_them(
        minilm: tuple[Path, object], tmp_path: Path) -> None:  # noqa: F811
    model, data = minilm
    result = diagnose(model, data, tmp_path / "fixed", recipe=PLAIN, target="x86-avx2",
                      eval_items=200, probe_items=32)
    assert not result.baseline["within_budget"]
    assert result.final["within_budget"]
    assert 1 <= len(result.ignored_nodes) <= 8, result.ignored_nodes
    assert result.ranking[0].recovered > 0
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
    layers = {n for n in result.ignored_nodes if "MatMul" in n}  # Adds are no layers
    assert layers and layers <= set(nncf.float_layers)
    assert nncf.accuracy["within_budget"]
