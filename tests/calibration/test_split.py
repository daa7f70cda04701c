"""The hashed split: deterministic, disjoint, deduplicated, and clear about bad sizes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from frugalml.calibration import hashed_split
from frugalml.calibration.descriptor import read_descriptor
from frugalml.errors import CalibrationError


@given(st.lists(st.text(min_size=1, max_size=8), min_size=2, max_size=60),
       st.integers(min_value=1, max_value=10))
def test_parts_never_share_a_text(keys: list[str], size: int) -> None:
    distinct = len(set(keys))
    if distinct <= size:
        with pytest.raises(CalibrationError, match="0 for evaluation"):
            hashed_split(keys, calibration_size=size)
        return
    split = hashed_split(keys, calibration_size=size)
    calib = {keys[i] for i in split.calibration}
    evaluation = {keys[i] for i in split.evaluation}
    assert not calib & evaluation
    assert len(split.calibration) == size
    assert len(split.calibration) + len(split.evaluation) == distinct
    assert split.duplicates_dropped == len(keys) - distinct


def test_split_depends_on_content_not_position() -> None:
    keys = [f"text {i}" for i in range(50)]
    a = hashed_split(keys, calibration_size=10)
    b = hashed_split(list(reversed(keys)), calibration_size=10)
    assert {keys[i] for i in a.calibration} == {keys[::-1][i] for i in b.calibration}
    c = hashed_split(keys, calibration_size=10, salt="other")
    assert a.calibration != c.calibration


def test_zero_calibration_size_is_refused() -> None:
    with pytest.raises(CalibrationError, match="at least 1"):
        hashed_split(["a", "b"], calibration_size=0)


def test_fraction_split_never_moves_existing_items_when_items_are_added() -> None:
    keys = [f"img_{i:04d}.jpg" for i in range(990)]
    before = hashed_split(keys, calibration_fraction=0.1)
    after = hashed_split(keys + [f"new_{i}.jpg" for i in range(10)], calibration_fraction=0.1)
    assert set(before.calibration) == {i for i in after.calibration if i < 990}
    assert set(before.evaluation) == {i for i in after.evaluation if i < 990}
    assert 60 <= len(before.calibration) <= 140  # ~10 % of 990


def test_exactly_one_split_option() -> None:
    with pytest.raises(CalibrationError, match="exactly one"):
        hashed_split(["a", "b"])
    with pytest.raises(CalibrationError, match="between 0 and 1"):
        hashed_split(["a", "b"], calibration_fraction=1.5)


@given(st.integers(min_value=1, max_value=80), st.integers(min_value=1, max_value=80))
def test_the_first_evaluation_items_do_not_depend_on_the_calibration_size(a: int, b: int) -> None:
    """Evaluation runs from the highest hash down: runs with another --num score the same
    first items (and check their export on the same inputs)."""
    keys = [f"review {i}" for i in range(200)]
    first = [hashed_split(keys, calibration_size=n).evaluation[:100] for n in (a, b)]
    assert first[0] == first[1]
    by_fraction = hashed_split(keys, calibration_fraction=0.2).evaluation[:50]
    assert by_fraction == first[0][:50]


def test_a_descriptor_of_an_earlier_split_order_is_refused_by_name(tmp_path: Path) -> None:
    data = tmp_path / "x.npy"
    np.save(data, np.arange(40, dtype=np.float32).reshape(20, 2))
    (tmp_path / "calibration.json").write_text(json.dumps({
        "schema_version": 1, "data": str(data), "options": {}, "salt": "frugalml",
        "split": "size=5, parts in hash order", "fingerprint": "0" * 64}))
    with pytest.raises(CalibrationError, match="earlier frugalml.*calibrate again"):
        read_descriptor(tmp_path / "calibration.json")
