"""Property-based fuzzing of everything that parses outside data: the manifest loader, the
target-file parser, the calibration readers and the runtime's input checks. Whatever the input,
the only exceptions allowed are frugalml's typed ones, and every example finishes within its
deadline (no hang). Runs derandomized, so CI sees the same examples every time."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from frugalml import runtime
from frugalml.calibration.arrays import read_arrays
from frugalml.calibration.images import ImageFolder
from frugalml.errors import BundleError, CalibrationError, InputError, TargetError
from frugalml.runtime.bundle import read_manifest, verify_files
from frugalml.targets.profiles import load_target_file
from tests.robustness import makers as mk

FUZZ = settings(max_examples=200, deadline=2000, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=20)


def _mutations(valid: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A valid document with one field deleted, replaced by any JSON value, or one added."""
    keys = sorted(valid)

    def mutate(choice: tuple[int, str, Any, int]) -> dict[str, Any]:
        kind, extra_key, value, index = choice
        doc = json.loads(json.dumps(valid))
        key = keys[index % len(keys)]
        if kind == 0:
            del doc[key]
        elif kind == 1:
            doc[key] = value
        else:
            doc[extra_key] = value
        return doc

    return st.tuples(st.integers(0, 2), st.text(max_size=8), json_values,
                     st.integers(0, 1000)).map(mutate)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return mk.tiny_bundle(tmp_path_factory.mktemp("fuzz") / "bundle")


@pytest.fixture(scope="module")
def valid_manifest(bundle: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((bundle / "manifest.json").read_text())
    return loaded


@FUZZ
@given(data=st.data())
def test_manifest_loader_raises_only_bundle_errors(bundle: Path, valid_manifest: dict,
                                                    tmp_path: Path, data: st.DataObject) -> None:
    doc = data.draw(st.one_of(_mutations(valid_manifest), json_values))
    copy = tmp_path / "b"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(bundle, copy)
    (copy / "manifest.json").write_text(json.dumps(doc))
    try:
        manifest = read_manifest(copy)
        verify_files(copy, manifest)
        runtime.load(copy).self_check()
    except (BundleError, TargetError, InputError):
        pass


@FUZZ
@given(raw=st.binary(max_size=300))
def test_manifest_loader_on_arbitrary_bytes(bundle: Path, tmp_path: Path, raw: bytes) -> None:
    copy = tmp_path / "raw"
    copy.mkdir(exist_ok=True)
    (copy / "manifest.json").write_bytes(raw)
    with pytest.raises(BundleError):
        read_manifest(copy)


@FUZZ
@given(doc=st.one_of(_mutations(mk.TARGET_FIELDS), json_values),
       raw=st.none() | st.binary(max_size=100))
def test_target_file_parser_raises_only_target_errors(tmp_path: Path, doc: Any,
                                                      raw: bytes | None) -> None:
    path = tmp_path / "t.json"
    path.write_bytes(raw if raw is not None else json.dumps(doc).encode())
    try:
        target = load_target_file(path)
    except TargetError:
        return
    assert target.name.strip() and isinstance(target.required_features, tuple)


@FUZZ
@given(raw=st.binary(max_size=400), suffix=st.sampled_from([".npy", ".npz"]))
def test_array_reader_on_arbitrary_bytes(tmp_path: Path, raw: bytes, suffix: str) -> None:
    path = tmp_path / f"d{suffix}"
    path.write_bytes(raw)
    try:
        read_arrays(path)
    except CalibrationError:
        pass


@FUZZ
@given(arrays=st.dictionaries(
    st.text("abxyz_", min_size=1, max_size=4),
    hnp.arrays(st.sampled_from(["float32", "float64", "int64", "uint8", "bool", "float16"]),
               hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)), max_size=3))
def test_array_reader_on_arbitrary_arrays(tmp_path: Path, arrays: dict) -> None:
    """NaN/Inf, mismatched item counts, 0-d arrays and empty files: typed errors or a source
    whose items are all finite."""
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    try:
        source = read_arrays(path)
    except CalibrationError:
        return
    items = source.load(range(len(source.keys())))
    assert all(np.isfinite(v).all() for v in items.values() if v.dtype.kind == "f")


@FUZZ
@given(raw=st.binary(max_size=300), name=st.sampled_from(["a.jpg", "b.png", "c.jpeg"]))
def test_image_reader_skips_or_refuses_non_images(tmp_path: Path, raw: bytes,
                                                  name: str) -> None:
    folder = tmp_path / "imgs"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    (folder / name).write_bytes(raw)
    try:
        source = ImageFolder(folder)
        source.load(range(len(source.keys())))
    except CalibrationError:
        pass


@FUZZ
@given(feeds=st.dictionaries(
    st.sampled_from(["x", "y", ""]),
    st.one_of(hnp.arrays(st.sampled_from(["float32", "float64", "int32", "uint8", "bool"]),
                         hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)),
              json_values), max_size=2))
def test_model_input_checks_raise_only_input_errors(bundle: Path, feeds: dict) -> None:
    with runtime.load(bundle) as model:
        try:
            out = model.run(feeds)
        except InputError:
            return
    with np.errstate(all="ignore"):  # inf * 0 in the reference is fine: NaN compares equal
        expected = feeds["x"] @ np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_allclose(out["y"], expected, rtol=1e-5)
