"""Every registry entry imports and meets its protocol; unknown names list the known ones."""

from __future__ import annotations

import pytest

from frugalml.errors import QuantizationError, TargetError
from frugalml.quantize import Quantizer, get_quantizer, names
from frugalml.runtime import backends


@pytest.mark.parametrize("name", names())
def test_quantizers_meet_the_protocol(name: str) -> None:
    assert isinstance(get_quantizer(name), Quantizer)


@pytest.mark.parametrize("name", backends.names())
def test_runtime_backends_meet_the_protocol(name: str) -> None:
    assert isinstance(backends.get_backend(name), backends.Backend)


def test_unknown_names() -> None:
    with pytest.raises(QuantizationError, match="known: onnxruntime"):
        get_quantizer("tensorrt")
    with pytest.raises(TargetError, match="known backends: onnxruntime"):
        backends.get_backend("tflite")
