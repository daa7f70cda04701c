"""Export stage: source models -> ONNX, validated against the source on real inputs."""

from __future__ import annotations

from frugalml.export.huggingface import export_sentence_encoder, load_encoder, tokenize
from frugalml.export.records import ExportedModel, OutputCheck
from frugalml.export.validate import compare_outputs

__all__ = [
    "ExportedModel",
    "OutputCheck",
    "compare_outputs",
    "export_sentence_encoder",
    "load_encoder",
    "tokenize",
]
