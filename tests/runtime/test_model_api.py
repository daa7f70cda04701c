"""The runtime API apps embed: inputs, concurrency, backends, closing, and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from frugalml.errors import BundleError, FrugalError, InputError
from frugalml.runtime import load

THREADS, CALLS = 8, 2000


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_soak_threads_share_one_model_exactly_without_leaking(mnist_bundle: Path,
                                                              backend: str) -> None:
    """8 threads x 2,000 calls on one Model, each thread its own digits: no errors, every
    output equal to the single-threaded result, RSS within 5 % of its post-warm-up value
    (bench/soak.py runs 10,000 calls per thread)."""
    from bench._data import mnist_batch
    from bench._soak import soak

    digits, _ = mnist_batch(THREADS * 4)
    with load(mnist_bundle, backend=backend, threads=1, streams=2) as model:
        result = soak(model, [digits[i:i + 1] for i in range(len(digits))], threads=THREADS,
                      calls=CALLS)
    assert (result.errors, result.mismatches) == (0, 0), result
    assert result.calls == THREADS * CALLS
    assert result.rss_growth < 0.05, result


def test_openvino_and_onnxruntime_agree_on_the_same_bundle(mnist_bundle: Path) -> None:
    with np.load(mnist_bundle / "samples.npz") as data:
        digits = data["input.image"]
    with load(mnist_bundle) as ort_model, load(mnist_bundle, backend="openvino") as ov_model:
        assert ort_model.backend == "onnxruntime" and ov_model.backend == "openvino"
        a, b = ort_model.run(digits)["logits"], ov_model.run(digits)["logits"]
    assert np.abs(a - b).max() <= 1e-4


def test_signatures_single_array_and_non_contiguous_input(mnist_bundle: Path) -> None:
    with np.load(mnist_bundle / "samples.npz") as data:
        digits = data["input.image"]
    with load(mnist_bundle) as model:
        assert [s.name for s in model.inputs] == ["image"]
        assert model.inputs[0].dtype == "float32" and model.inputs[0].shape[1:] == (1, 28, 28)
        assert [s.name for s in model.outputs] == ["logits"]
        strided = np.asfortranarray(digits[::2])  # neither C-contiguous nor a plain copy
        assert not strided.flags.c_contiguous
        np.testing.assert_array_equal(model.run(strided)["logits"],
                                      model.run(np.ascontiguousarray(digits[::2]))["logits"])


def test_nan_input_is_passed_through(mnist_bundle: Path) -> None:
    """Documented: NaN is not checked per element; it reaches the outputs as NaN."""
    with load(mnist_bundle) as model:
        x = np.zeros((1, 1, 28, 28), np.float32)
        x[0, 0, 14, 14] = np.nan
        assert np.isnan(model.run(x)["logits"]).all()


@pytest.mark.parametrize(("feeds", "message"), [
    ({"pixels": np.zeros((1, 1, 28, 28), np.float32)}, r"unknown: \['pixels'\].*image: float32"),
    ({"image": np.zeros((1, 28, 28), np.float32)}, r"expects 4-D \(batch, 1, 28, 28\)"),
    ({"image": np.zeros((1, 1, 32, 32), np.float32)}, r"axis 2 must be 28"),
    ({"image": np.zeros((1, 1, 28, 28), np.float64)}, r"dtype float64.*astype\(np.float32\)"),
    ({"image": [[0.0]]}, r"is a list; pass a numpy array"),
])
def test_bad_inputs_name_the_expected_signature(mnist_bundle: Path, feeds: dict,
                                                message: str) -> None:
    with load(mnist_bundle) as model, pytest.raises(InputError, match=message):
        model.run(feeds)


def test_closed_model_refuses_to_run(mnist_bundle: Path) -> None:
    model = load(mnist_bundle)
    model.close()
    with pytest.raises(BundleError, match="closed"):
        model.run(np.zeros((1, 1, 28, 28), np.float32))


def test_backend_not_installed_says_how_to_install(mnist_bundle: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "openvino" else real(name, *a))
    with pytest.raises(FrugalError, match=r"pip install .*frugalml\[openvino\]"):
        load(mnist_bundle, backend="openvino")


def test_unknown_backend_is_refused(mnist_bundle: Path) -> None:
    with pytest.raises(FrugalError, match="Unknown backend 'tflite'"):
        load(mnist_bundle, backend="tflite")
