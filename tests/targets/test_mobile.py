"""Phone targets: the .ort artifact and its reduced-build operator list, checked by running it
in the desktop ONNX Runtime against the ONNX model it came from (what this host can check)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from frugalml.errors import TargetError
from frugalml.targets.mobile import to_ort
from tests.helpers import assert_outputs_close


def _run(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def _samples(bundle: Path) -> dict[str, np.ndarray]:
    with np.load(bundle / "samples.npz", allow_pickle=False) as data:
        return {k.removeprefix("input."): data[k] for k in data.files if k.startswith("input.")}


@pytest.mark.parametrize("which", ["mnist_bundle", "int8_bundle"])
def test_ort_artifact_runs_in_desktop_runtime_like_its_onnx(which: str, tmp_path: Path,
                                                            request: pytest.FixtureRequest
                                                            ) -> None:
    """The MNIST CNN (FP32) and the MiniLM INT8 QDQ model (com.microsoft kernels too)."""
    bundle: Path = request.getfixturevalue(which)
    artifact = to_ort(bundle / "model.onnx", tmp_path / "phone")
    assert artifact.ort_file.read_bytes()[4:8] == b"ORTM"  # flatbuffer file identifier
    feeds = _samples(bundle)
    assert_outputs_close(f"{which} .ort", _run(bundle / "model.onnx", feeds),
                         _run(artifact.ort_file, feeds), atol=1e-4, min_cosine=0.999999)
    ops = artifact.operators()
    # optimised before saving: Conv+Relu are fused into com.microsoft.FusedConv for the phone
    expected = {"mnist_bundle": ("com.microsoft", {"FusedConv"}),
                "int8_bundle": ("ai.onnx", {"DequantizeLinear"})}[which]
    assert expected[1] <= set(ops[expected[0]]), ops


def test_conversion_failure_is_a_target_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(TargetError, match="could not convert .* to the mobile format"):
        to_ort(bad, tmp_path / "out")
