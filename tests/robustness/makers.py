"""Builders of good and bad inputs for the robustness tests: a tiny real bundle, and the ways a
user, a disk or an attacker can break files."""

from __future__ import annotations

import json
import os
import platform
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.core.atomic import staged
from frugalml.core.records import file_sha256
from frugalml.targets.bundle import assemble
from frugalml.targets.profiles import QuantFormat, Target
from tests.helpers import tiny_onnx

# Runs on any host: no ISA feature required, this machine's architecture.
HOST_TARGET = Target(name="test-host", machine=platform.machine(), required_features=(),
                     backend="onnxruntime", int8_format=QuantFormat.U8S8_REDUCED,
                     description="whatever runs these tests")
MODEL_IO = {"x": np.arange(12, dtype=np.float32).reshape(4, 3)}
TARGET_FIELDS = {"name": "edge-box", "machine": "x86_64", "required_features": ["avx2"],
                 "backend": "onnxruntime", "int8_format": "u8s8-reduce-range",
                 "description": "an AVX2 edge box"}


def tiny_bundle(dest: Path) -> Path:
    """A real FP32 bundle of the one-MatMul model, verified like any other."""
    source = dest.parent / f"{dest.name}-src" / "tiny.onnx"
    tiny_onnx(source)
    with staged(dest) as stage:
        assemble(stage, name="tiny-fp32", model_file=source, target=HOST_TARGET,
                 precision="fp32", samples=MODEL_IO,
                 source={"model": "tiny"}, recipe={"precision": "fp32"}, calibration=None,
                 metrics={}, sample_tolerance={"min_cosine": 0.9999, "max_abs": 1e-4})
    return dest


def edit_manifest(bundle: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    """Apply ``change`` to the parsed manifest and write it back (as a tamperer would)."""
    path = bundle / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def replace_file(bundle: Path, name: str, content: bytes, *, rehash: bool) -> None:
    """Overwrite a bundle file; with ``rehash``, also fix its sha256 in the manifest, so only
    checks after the hash check can catch it."""
    (bundle / name).write_bytes(content)
    if rehash:
        edit_manifest(bundle, lambda m: m["files"].__setitem__(name, file_sha256(bundle / name)))


def flip_byte(path: Path) -> None:
    """Flip one bit in the middle of a file (bit rot, or a tampered weight)."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def pickled_npy(path: Path) -> Path:
    """An .npy whose object array would run code on np.load(allow_pickle=True)."""
    np.save(path, np.array([{"payload": "never loaded"}], dtype=object), allow_pickle=True)
    return path


def pickled_npz(path: Path, name: str) -> Path:
    """An .npz holding one object array under ``name``."""
    np.savez(path, **{name: np.array([{"payload": 1}], dtype=object)})
    return path


def write_npz(path: Path, **arrays: np.ndarray) -> Path:
    """Save arrays and return the path."""
    np.savez(path, **arrays)
    return path


def external_data_model(folder: Path, location: str) -> Path:
    """The tiny model with its weight in external data at ``location`` (as written in the file)."""
    import onnx

    src = folder / "tiny.onnx"
    proto = tiny_onnx(src, external=True)
    proto.graph.initializer[0].external_data[0].value = location
    onnx.save_model(proto, str(src))
    return src


def symlink_escape(folder: Path, outside: Path) -> Path:
    """External data whose file inside the model dir is a symlink to a file outside it."""
    src = folder / "tiny.onnx"
    tiny_onnx(src, external=True)
    data = folder / "tiny.onnx.data"
    outside.write_bytes(data.read_bytes())
    data.unlink()
    os.symlink(outside, data)
    return src


def text_file(path: Path, text: str) -> Path:
    """Write text and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def ir_pair(folder: Path) -> Path:
    """A real OpenVINO IR (.xml/.bin) of the tiny model."""
    from frugalml.export.openvino import to_openvino

    tiny_onnx(folder / "src" / "tiny.onnx")
    record = to_openvino(folder / "src" / "tiny.onnx", folder / "ir")
    shutil.rmtree(folder / "src")
    return record.path


def image_folder(folder: Path, count: int = 6, size: tuple[int, int] = (48, 36)) -> Path:
    """``count`` small PNG photos-to-be (seeded noise) in ``folder``."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i}.png")
    return folder


def conv_model(path: Path, side: int = 32) -> Path:
    """An ONNX model taking ``images [N, 3, side, side]`` (one 1x1 Conv)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((2, 3, 1, 1), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["images", "w"], ["y"])], "conv",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["n", 3, side, side])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2, side, side])], [weight])
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path
