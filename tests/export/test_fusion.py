"""Transformer fusions for ONNX Runtime: kept only with outputs equal to the unfused graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from frugalml.errors import ExportError
from frugalml.export import export
from frugalml.export.fusion import fuse_for_onnxruntime
from tests.helpers import tiny_onnx


def test_a_graph_with_nothing_to_fuse_is_refused_and_says_so(tmp_path: Path) -> None:
    tiny_onnx(tmp_path / "m" / "tiny.onnx")
    feeds = [{"x": np.random.default_rng(0).random((4, 3), np.float32)}]
    exported = export(tmp_path / "m" / "tiny.onnx", tmp_path / "exp", validation=feeds)
    with pytest.raises(ExportError, match="No transformer pattern fused.*unfused graph"):
        fuse_for_onnxruntime(exported, tmp_path / "fused", feeds)
    with pytest.raises(ExportError, match="needs real inputs"):
        fuse_for_onnxruntime(exported, tmp_path / "fused", [])
