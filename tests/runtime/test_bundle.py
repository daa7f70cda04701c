"""Bundle verification and input checking on the real INT8 bundle."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

from frugalml.errors import BundleError, InputError, TargetError
from frugalml.runtime import load, read_host


@pytest.fixture()
def bundle_copy(int8_bundle: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "bundle"
    shutil.copytree(int8_bundle, dest)
    return dest


def _sample_feeds(bundle: Path) -> dict[str, np.ndarray]:
    with np.load(bundle / "samples.npz") as data:
        return {k.removeprefix("input."): data[k] for k in data.files if k.startswith("input.")}


def test_load_runs_and_reproduces_samples(int8_bundle: Path) -> None:
    model = load(int8_bundle)
    check = model.self_check()
    assert check["min_cosine"] > 0.999
    out = model.run(_sample_feeds(int8_bundle))
    emb = out["sentence_embedding"]
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)


def test_flipped_byte_in_model_is_refused(bundle_copy: Path) -> None:
    model_file = bundle_copy / "model.onnx"
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    model_file.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="model.onnx: sha256 differs"):
        load(bundle_copy)


def test_missing_bundle_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist"):
        load(tmp_path / "nowhere")
    with pytest.raises(BundleError, match="no manifest.json"):
        load(tmp_path)


def test_unlisted_and_missing_files_are_refused(bundle_copy: Path) -> None:
    (bundle_copy / "extra.bin").write_bytes(b"x")
    (bundle_copy / "samples.npz").unlink()
    with pytest.raises(BundleError) as err:
        load(bundle_copy)
    assert "extra.bin: not listed" in str(err.value)
    assert "samples.npz: missing" in str(err.value)


def test_corrupt_manifest_is_refused(bundle_copy: Path) -> None:
    (bundle_copy / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="corrupt"):
        load(bundle_copy)


def test_wrong_input_name(int8_bundle: Path) -> None:
    feeds = _sample_feeds(int8_bundle)
    feeds["input_idz"] = feeds.pop("input_ids")
    with pytest.raises(InputError, match=r"unknown: \['input_idz'\]; missing: \['input_ids'\]"):
        load(int8_bundle).run(feeds)


def test_wrong_shape_and_dtype(int8_bundle: Path) -> None:
    model = load(int8_bundle)
    feeds = _sample_feeds(int8_bundle)
    flat = dict(feeds, input_ids=feeds["input_ids"][0])
    expected = r"'input_ids' has shape \(\d+,\) \(1-D\); the model expects 2-D"
    with pytest.raises(InputError, match=expected):
        model.run(flat)
    as_int32 = dict(feeds, attention_mask=feeds["attention_mask"].astype(np.int32))
    with pytest.raises(InputError, match=r"dtype int32; the model expects int64"):
        model.run(as_int32)


def test_host_without_the_target_features_is_refused(int8_bundle: Path) -> None:
    host = read_host()
    bare = dataclasses.replace(host, flags=("sse2",), cpu_model="Old CPU")
    with pytest.raises(TargetError, match="lacks them"):
        load(int8_bundle, host=bare)
    arm = dataclasses.replace(host, machine="aarch64")
    with pytest.raises(TargetError, match="this host is aarch64"):
        load(int8_bundle, host=arm)
