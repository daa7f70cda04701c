"""Export stage: torch modules, Hugging Face models and ONNX files -> ONNX / OpenVINO IR,
validated against the source on real inputs."""

from __future__ import annotations

from frugalml.export.api import export, read_export
from frugalml.export.exporters import GraphSpec
from frugalml.export.huggingface import export_sentence_encoder, load_encoder
from frugalml.export.records import ExportedModel, OutputCheck
from frugalml.export.samples import tokenize
from frugalml.export.validate import Tolerance, compare_outputs

__all__ = [
    "ExportedModel",
    "GraphSpec",
    "OutputCheck",
    "Tolerance",
    "compare_outputs",
    "export",
    "export_sentence_encoder",
    "load_encoder",
    "read_export",
    "tokenize",
]
