"""Token windows: running text for a language model, cut into full windows of real tokens."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench._data import tiny_shakespeare
from frugalml.calibration import TokenWindows, make_set
from frugalml.calibration.descriptor import open_source
from frugalml.demo import default_model_dir
from frugalml.errors import CalibrationError


def test_windows_cover_the_text_in_order_and_split_without_overlap(tmp_path: Path) -> None:
    text = tmp_path / "shakespeare.txt"
    text.write_text(tiny_shakespeare().read_text()[:20_000])
    windows = TokenWindows(text, default_model_dir(), window=64)
    count = len(windows.keys())
    tokenizer_ids = windows.load(range(count))["input_ids"].ravel()
    assert count > 50
    data = make_set(windows, calibration_size=16)
    feeds, labels = next(data.batches("evaluation", batch_size=4))
    assert feeds["input_ids"].shape == (4, 64) and feeds["attention_mask"].min() == 1
    assert (labels == -1).all()
    assert not set(data.split.calibration) & set(data.split.evaluation)
    # each window: the special token the runtime puts before a prompt ([CLS] for this
    # tokenizer), then the tokenizer's own ids of the text, in order
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    from frugalml.runtime.prompt import encode_prompt

    runtime_prefix = encode_prompt(
        Tokenizer.from_file(str(default_model_dir() / "tokenizer.json")), "")
    assert windows.prefix == tuple(runtime_prefix) == (101,)
    expected = AutoTokenizer.from_pretrained(default_model_dir())(
        text.read_text(), add_special_tokens=False)["input_ids"][:count * 63]
    by_window = tokenizer_ids.reshape(count, 64)
    assert (by_window[:, 0] == 101).all()
    np.testing.assert_array_equal(by_window[:, 1:].ravel(), expected)
    same = open_source(text, {"tokenizer": default_model_dir(), "window": 64})
    assert make_set(same, calibration_size=16).fingerprint == data.fingerprint


def test_calibrate_cli_writes_a_window_descriptor_that_rebuilds(tmp_path: Path) -> None:
    import json

    from frugalml.calibration.descriptor import read_descriptor
    from frugalml.cli import main

    text = tmp_path / "shakespeare.txt"
    text.write_text(tiny_shakespeare().read_text()[:8_000])
    assert main(["calibrate", str(text), "--model", str(default_model_dir()), "--out",
                 str(tmp_path / "cal"), "--window", "32", "--num", "8"]) == 0
    desc = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    assert desc["kind"] == "token-windows" and desc["options"]["window"] == 32
    rebuilt = read_descriptor(tmp_path / "cal" / "calibration.json")
    assert rebuilt.fingerprint == desc["fingerprint"]
    assert rebuilt.summary()["calibration_items"] == 8


def test_bad_windows(tmp_path: Path) -> None:
    short = tmp_path / "short.txt"
    short.write_text("To be, or not to be.")
    with pytest.raises(CalibrationError, match=r"fewer than one window of 512"):
        TokenWindows(short, default_model_dir(), window=512)
    with pytest.raises(CalibrationError, match="at least 2 tokens"):
        TokenWindows(short, default_model_dir(), window=1)
    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(CalibrationError, match="as UTF-8 text"):
        TokenWindows(binary, default_model_dir(), window=8)
    with pytest.raises(CalibrationError, match="Option not valid"):
        open_source(short, {"tokenizer": default_model_dir(), "window": 8, "column": "x"})
