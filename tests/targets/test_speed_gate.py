"""The speed gate: quantized ships only when the speed protocol shows it faster than FP32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from frugalml.errors import TargetError
from frugalml.runtime.host import describe_capabilities, read_host
from frugalml.runtime.speed import Plan, from_rounds
from frugalml.targets.speed_gate import measure_speed
from tests.quantize.test_contract import mlp_onnx

QUICK = Plan(min_rounds=4, time_cap_s=8.0, round_s=0.05)


def test_a_model_that_quantization_slows_down_is_refused(tmp_path: Path) -> None:
    """A 64-wide MLP at batch 1: quantizing and dequantizing around each tiny MatMul costs
    more than the integer MatMul saves, so static INT8 is slower here on any CPU."""
    from frugalml.calibration import from_items, make_set
    from frugalml.quantize.api import quantize

    rng = np.random.default_rng(0)
    items = [{"x": rng.normal(0, 1, 64).astype(np.float32)} for _ in range(96)]
    data = make_set(from_items(items, labels=[i % 10 for i in range(96)]), calibration_size=32)
    fp32 = mlp_onnx(tmp_path / "fp32.onnx")
    int8 = quantize(fp32, data, tmp_path / "int8", recipe="int8", target="x86-avx2",
                    eval_items=32, allow_over_budget=True)
    verdict = measure_speed(fp32, int8.path, {"x": items[0]["x"][None]}, plan=QUICK)
    assert verdict.verdict == "slower" and not verdict.faster, verdict.why
    assert verdict.ci95 is not None and verdict.ci95[1] < 1 / 1.03
    assert verdict.settings["threads"] == 1 and verdict.settings["input_shapes"] == {"x": [1, 64]}
    assert verdict.settings["spinning"] is False
    host = read_host()
    # What the flags prove is named on every host; the microarchitecture only where the model
    # number is known (a hypervisor may mask it: an AMX Xeon here reports family 6 model 167).
    assert describe_capabilities(host.to_dict()) in verdict.why
    assert f"family {host.family}" in verdict.why
    assert (host.microarchitecture in verdict.why) == (host.microarchitecture != "unknown")
    assert "FP32 stays the default" in verdict.why
    with pytest.raises(TargetError, match="could not time"):
        measure_speed(fp32, int8.path, {"x": np.zeros((1, 3), np.float32)}, plan=QUICK)


def test_from_rounds_refuses_malformed_rounds() -> None:
    with pytest.raises(ValueError):
        from_rounds([10.0, 11.0], [9.0])
    with pytest.raises(ValueError, match="positive"):
        from_rounds([10.0, 0.0], [9.0, 9.0])


def test_explain_names_the_microarchitecture_and_advises_on_the_governor() -> None:
    import dataclasses

    from frugalml.targets.speed_gate import explain

    verdict = from_rounds([10.0, 10.1, 10.2, 10.0], [5.0, 5.1, 5.0, 5.05])
    zen3 = dataclasses.replace(read_host(), vendor="AuthenticAMD", family=25, model=1,
                               microarchitecture="Zen 3", governor="powersave")
    why = explain(verdict, zen3).why
    assert "Zen 3, family 25 model 1" in why and "it ships as the default" in why
    assert "'powersave': set 'performance'" in why
    calm = explain(verdict, dataclasses.replace(zen3, governor="performance")).why
    assert "governor" not in calm
