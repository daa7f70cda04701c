"""The Rotten Tomatoes reader on the real file and on broken copies."""

from __future__ import annotations

import bz2
from pathlib import Path

import pytest

from frugalml.calibration import read_reviews, rotten_tomatoes_file
from frugalml.calibration.reviews import LABELS
from frugalml.calibration.text import build_text_set
from frugalml.demo import default_model_dir
from frugalml.errors import CalibrationError

NAMES = ("input_ids", "attention_mask", "token_type_ids")


def test_real_file_has_the_documented_counts() -> None:
    labels = [r.label for r in read_reviews(rotten_tomatoes_file())]
    assert len(labels) == 4866
    assert labels.count(LABELS.index("fresh")) == 2455
    assert labels.count(LABELS.index("rotten")) == 2411


def test_truncated_file_is_a_calibration_error(tmp_path: Path) -> None:
    broken = tmp_path / "cut.csv.bz2"
    broken.write_bytes(rotten_tomatoes_file().read_bytes()[:5000])
    with pytest.raises(CalibrationError, match="corrupt or truncated"):
        list(read_reviews(broken))


def test_wrong_columns_and_empty_set(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.csv.bz2"
    wrong.write_bytes(bz2.compress(b"label,sentence\nfresh,good\n"))
    with pytest.raises(CalibrationError, match="expected 'category' and 'text'"):
        list(read_reviews(wrong))
    empty = tmp_path / "empty.csv.bz2"
    empty.write_bytes(bz2.compress(b"category,text\nplot,a story\n"))
    with pytest.raises(CalibrationError, match="calibration set is empty"):
        build_text_set(empty, default_model_dir(), input_names=NAMES)
    with pytest.raises(CalibrationError, match="does not exist"):
        list(read_reviews(tmp_path / "missing.csv.bz2"))


def test_text_set_streams_tokenized_batches() -> None:
    data = build_text_set(rotten_tomatoes_file(), default_model_dir(), input_names=NAMES,
                          calibration_size=300)
    assert (len(data.calibration), len(data.evaluation)) == (300, 4563)
    feeds, labels = next(data.batches("evaluation", batch_size=8))
    assert set(feeds) == set(NAMES) and feeds["input_ids"].dtype.name == "int64"
    assert feeds["input_ids"].shape[0] == 8 == len(labels)
    again = build_text_set(rotten_tomatoes_file(), default_model_dir(), input_names=NAMES,
                           calibration_size=300)
    assert again.fingerprint == data.fingerprint
    assert build_text_set(rotten_tomatoes_file(), default_model_dir(), input_names=NAMES,
                          calibration_size=200).fingerprint != data.fingerprint
