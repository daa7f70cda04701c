"""The speed gate: quantized ships only when faster than FP32 beyond the run's own noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from frugalml.errors import TargetError
from frugalml.targets.speed_gate import judge, measure_speed
from tests.quantize.test_contract import mlp_onnx


def test_judge_needs_a_speedup_beyond_the_noise() -> None:
    clear = judge([10.0, 10.2, 10.1], [5.0, 5.1, 5.0])
    assert clear.faster and clear.speedup == pytest.approx(2.0, rel=0.01)
    assert "ships as the default" in clear.why
    # 8 % faster, but FP32 itself varied 20 % between rounds: not proven.
    noisy = judge([10.0, 12.0, 11.0], [9.2, 11.1, 10.2])
    assert not noisy.faster and noisy.margin == pytest.approx(0.2)
    assert "FP32 stays the default" in noisy.why
    # 2 % faster on a quiet machine is still under the 3 % floor.
    assert not judge([10.0, 10.0, 10.0], [9.8, 9.8, 9.8]).faster
    assert not judge([10.0], [12.0]).faster


@pytest.mark.parametrize(("fp32", "quant"), [([], []), ([1.0, 2.0], [1.0]), ([1.0], [0.0])])
def test_judge_refuses_malformed_rounds(fp32: list[float], quant: list[float]) -> None:
    with pytest.raises(TargetError, match="same number"):
        judge(fp32, quant)


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
    verdict = measure_speed(fp32, int8.path, {"x": items[0]["x"][None]}, rounds=5, runs=200)
    assert not verdict.faster, verdict.why
    assert len(verdict.fp32_p50_ms) == len(verdict.quantized_p50_ms) == 5
    assert verdict.settings["threads"] == 1 and verdict.settings["input_shapes"] == {"x": [1, 64]}
    with pytest.raises(TargetError, match="rounds >= 1"):
        measure_speed(fp32, int8.path, {"x": items[0]["x"][None]}, rounds=0)


def test_deploy_keeps_fp32_when_int8_is_only_within_noise_faster() -> None:
    """The deploy report uses the same rule on its alternating profile rounds."""
    from frugalml.quantize.recipe import Budget
    from frugalml.report import decide

    def metrics(rounds: list[float]) -> dict:
        return {"size_bytes": 100, "latency_ms": {"p50": min(rounds)}, "p50_rounds": rounds,
                "mean_cosine": 0.999, "accuracy_drop_points": 0.0, "kernels": {}}

    host = {"cpu_model": "AMD EPYC", "flags": ["avx2", "fma"]}
    fp32 = metrics([10.0, 11.0])
    checks = decide(Budget(max_size_ratio=1.0), fp32, metrics([9.6, 10.4]), host)
    speed = checks[-1]
    assert speed.name.startswith("p50 speed-up") and not speed.passed
    assert "FP32 varied 10.0%" in speed.why and "no VNNI" in speed.why
    assert all(c.passed for c in decide(Budget(max_size_ratio=1.0), fp32,
                                        metrics([5.0, 5.2]), host))
