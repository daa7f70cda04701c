"""A model's format is read from its file name in one place (issue 33): frugalml.runtime.formats.
Every other module asks it, so a new format is taught once."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from frugalml.runtime.formats import (
    GGUF,
    ONNX,
    OPENVINO,
    ORT,
    ir_pair,
    ir_weights,
    is_gguf,
    is_ir,
    is_onnx,
    model_files,
    model_format,
)

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("frugalml", "export", "calibration", "quantize", "targets", "runtime")
# A suffix compared with, or swapped for, a model file's extension.
MODEL_SUFFIX = re.compile(r"""(suffix\s*(==|!=|in|not in)[^\n]*|with_suffix\(|endswith\(\(?)"""
                          r"""["']\.(onnx|xml|gguf|bin|ort)["']""")


@pytest.mark.parametrize(("name", "fmt"), [("m.onnx", ONNX), ("m.xml", OPENVINO),
                                           ("m.bin", OPENVINO), ("m.gguf", GGUF),
                                           ("m.ort", ORT), ("dir", None), ("d.npz", None)])
def test_formats_by_name(name: str, fmt: str | None) -> None:
    assert model_format(name) == fmt
    assert is_onnx(name) == (fmt == ONNX) and is_gguf(name) == (fmt == GGUF)
    assert is_ir(name) == (name == "m.xml")  # the IR is its .xml; the .bin is its weights


def test_an_ir_is_a_pair() -> None:
    assert ir_weights("a/model.xml") == Path("a/model.bin")
    assert ir_pair("a/model.bin") == Path("a/model.xml")
    assert model_files("a/model.xml") == [Path("a/model.xml"), Path("a/model.bin")]
    assert model_files("a/model.onnx") == [Path("a/model.onnx")]


def test_no_other_module_reads_a_model_format_from_a_suffix() -> None:
    found = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if path == ROOT / "runtime" / "formats.py":
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if MODEL_SUFFIX.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)
