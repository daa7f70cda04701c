"""The ``real_model`` mark (tests/conftest.py) is decided from the code: a test is marked when
it, or any fixture it uses at any depth, calls a loader of a real model from ../shared; so
`pytest -m "not real_model"` is a quick loop that still runs every tiny-model test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = ("tests/quantize/test_smollm2.py", "tests/quantize/test_attention.py",
         "tests/targets/test_mobile.py", "tests/test_layering.py")


def _collected(marks: str) -> set[str]:
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p",
                          "no:cacheprovider", "-m", marks, *FILES], cwd=ROOT,
                         capture_output=True, text=True, check=False).stdout
    return {line for line in out.splitlines() if "::" in line}


def test_real_model_tests_are_marked_through_their_fixtures() -> None:
    real = _collected("real_model")
    # the module fixture loads SmolLM2's GGUF; the shared session fixture runs the demo deploy
    assert "tests/quantize/test_smollm2.py::test_data_aware_w4a8_stays_within_20_percent_" \
           "perplexity_and_beats_rounding" in real
    assert "tests/quantize/test_attention.py::test_the_fused_minilm_candidate_runs_" \
           "qattention_within_budget" in real
    # a fixture named by a parameter and fetched with request.getfixturevalue
    mobile = "tests/targets/test_mobile.py::test_ort_artifact_runs_in_desktop_runtime_like_its_onnx"
    assert f"{mobile}[int8_bundle]" in real and f"{mobile}[mnist_bundle]" not in real
    quick = _collected("not real_model")
    assert not real & quick
    # tiny graphs built in the test, and tests that read no model at all, stay in the loop
    assert any(t.startswith("tests/quantize/test_attention.py::") for t in quick)
    assert any(t.startswith("tests/test_layering.py::") for t in quick)
    assert not any(t.startswith("tests/test_layering.py::") for t in real)
