"""The one table of quantization backends: name -> "module:Class", imported on lookup."""

from __future__ import annotations

import importlib

from frugalml.errors import QuantizationError
from frugalml.quantize._protocol import Quantizer

_QUANTIZERS: dict[str, str] = {
    "onnxruntime": "frugalml.quantize.onnxruntime:OnnxRuntimeQuantizer",
    "nncf": "frugalml.quantize.nncf:NncfQuantizer",
    "gguf": "frugalml.quantize.gguf_grid:GgufGridQuantizer",
}


def names() -> tuple[str, ...]:
    """Known quantizer names."""
    return tuple(_QUANTIZERS)


def get_quantizer(name: str) -> Quantizer:
    """Instantiate the quantizer called ``name``.

    Raises:
        QuantizationError: the name is unknown.
    """
    if name not in _QUANTIZERS:
        raise QuantizationError(
            f"Unknown quantization backend {name!r}; known: {', '.join(_QUANTIZERS)}."
        )
    module_name, cls_name = _QUANTIZERS[name].split(":")
    quantizer: Quantizer = getattr(importlib.import_module(module_name), cls_name)()
    return quantizer
