"""`frugal calibrate`: a descriptor that rebuilds the same set, and refuses changed data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench._data import mnist_batch
from frugalml.calibration.descriptor import read_descriptor
from frugalml.cli import main
from frugalml.errors import CalibrationError


def test_calibrate_arrays_against_the_bundle_model(mnist_bundle: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    digits, labels = mnist_batch(300)
    np.savez(tmp_path / "digits.npz", image=digits, labels=labels)
    model = mnist_bundle / "model.onnx"
    assert main(["calibrate", str(tmp_path / "digits.npz"), "--model", str(model), "--out",
                 str(tmp_path / "cal"), "--num", "100", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["calibration_items"] == 100 and out["evaluation_items"] == 200
    rebuilt = read_descriptor(tmp_path / "cal" / "calibration.json")
    assert rebuilt.fingerprint == out["fingerprint"]
    np.savez(tmp_path / "digits.npz", image=digits[::-1], labels=labels[::-1])
    with pytest.raises(CalibrationError, match="changed since"):
        read_descriptor(tmp_path / "cal" / "calibration.json")


def test_a_relative_data_path_reads_back_from_anywhere(mnist_bundle: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture) -> None:
    """The fingerprint is the data's, not where it was read from (a relative path once made
    every descriptor written with one refuse to load: "changed since")."""
    digits, _ = mnist_batch(40)
    np.savez(tmp_path / "digits.npz", image=digits)
    monkeypatch.chdir(tmp_path)
    assert main(["calibrate", "digits.npz", "--model", str(mnist_bundle / "model.onnx"),
                 "--out", "cal", "--num", "10", "--json"]) == 0
    written = json.loads(capsys.readouterr().out)["fingerprint"]
    monkeypatch.chdir("/")
    assert read_descriptor(tmp_path / "cal" / "calibration.json").fingerprint == written


def test_calibrate_refuses_inputs_that_do_not_fit(mnist_bundle: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "wrong.npz", image=rng.normal(size=(20, 1, 32, 32)).astype(np.float32))
    code = main(["calibrate", str(tmp_path / "wrong.npz"), "--model",
                 str(mnist_bundle / "model.onnx"), "--out", str(tmp_path / "c"), "--num", "5"])
    assert code == 2
    assert "has shape (1, 1, 32, 32), the model expects" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size() -> None:
    from frugalml.calibration import perplexity

    vocab = 50
    logits = np.zeros((2, 6, vocab), np.float32)
    ids = np.random.default_rng(0).integers(0, vocab, size=(2, 6))
    mask = np.array([[1] * 6, [1] * 4 + [0] * 2])
    m = perplexity(logits, ids, mask)
    assert m.value == pytest.approx(vocab) and m.count == 5 + 3
    confident = np.full((1, 3, vocab), -30.0, np.float32)
    confident[0, np.arange(2), ids[0, 1:3]] = 30.0
    assert perplexity(confident, ids[:1, :3], np.ones((1, 3))).value == pytest.approx(1.0)
