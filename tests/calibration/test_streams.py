"""Stream data: split and fingerprinted by stream (never by chunk), calibration steps carry the
state FP32 really reaches, and data that does not fit says which input and which flag."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from bench._streaming import HIDDEN, RATE, speech_like
from frugalml.calibration.descriptor import open_set, read_descriptor, write_descriptor
from frugalml.calibration.streams import stream_set
from frugalml.errors import CalibrationError, InputError
from frugalml.runtime.roles import parse_roles

ROLES = parse_roles(state=["state=stateN"], constant=[f"sr={RATE}"])


def test_parts_never_share_a_stream_and_the_split_is_by_stream(vad_model: Path,
                                                               vad_streams: Path) -> None:
    data = stream_set(vad_streams, ROLES, vad_model, calibration_size=12 * 40)
    assert (len(data.split.calibration), len(data.split.evaluation)) == (12, 12)
    assert not set(data.split.calibration) & set(data.split.evaluation)
    summary = data.summary()
    assert summary["kind"] == "streams" and summary["steps_per_stream"] == 40
    assert summary["roles"]["batch_axes"] == {"state": 1}
    streams = list(data.streams("evaluation"))
    assert len(streams) == 12 and all(len(s) == 40 for s in streams)
    audio = np.load(vad_streams)["audio"]
    first = np.concatenate([c["audio"] for c in streams[0]])
    assert any(np.array_equal(first, a) for a in audio[list(data.split.evaluation)])


def test_the_calibration_size_counts_steps_in_whole_streams(vad_model: Path,
                                                             vad_streams: Path) -> None:
    data = stream_set(vad_streams, ROLES, vad_model, calibration_size=41)
    assert len(data.split.calibration) == 2 and data.split_rule.startswith("size=41,")
    with pytest.raises(CalibrationError, match="take 24 streams of 40 steps, but .* holds 24"):
        stream_set(vad_streams, ROLES, vad_model, calibration_size=24 * 40)


def test_calibration_steps_carry_the_state_fp32_reaches(vad_model: Path,
                                                        vad_streams: Path) -> None:
    data = stream_set(vad_streams, ROLES, vad_model, calibration_size=12 * 40)
    session = ort.InferenceSession(str(vad_model), providers=["CPUExecutionProvider"])
    chunks = next(data.streams("calibration"))
    state = np.zeros((2, 1, HIDDEN), np.float32)
    expected = []
    for chunk in chunks[:8]:
        expected.append(state)
        state = session.run(None, {**chunk, "state": state, "sr": np.array(RATE)})[1]
    feeds, labels = next(data.batches("calibration", batch_size=8))
    assert feeds["audio"].shape == (8, 256) and feeds["state"].shape == (2, 8, HIDDEN)
    assert feeds["sr"].shape == () and int(feeds["sr"]) == RATE and (labels == -1).all()
    np.testing.assert_allclose(feeds["state"], np.concatenate(expected, axis=1), atol=1e-6)
    assert np.abs(feeds["state"][:, 7]).max() > 0.1  # not a zero state: carried
    assert sum(len(lab) for _, lab in data.batches("calibration", batch_size=7, limit=20)) == 20


def test_a_descriptor_rebuilds_the_same_stream_set(vad_model: Path, vad_streams: Path,
                                                   tmp_path: Path) -> None:
    options = {"roles": ROLES.to_dict(), "model": str(vad_model), "threshold": 0.6,
               "decision": None}
    data = open_set(vad_streams, options, calibration_size=10 * 40)
    path = write_descriptor(data, vad_streams, options, tmp_path)
    again = read_descriptor(path)
    assert again.fingerprint == data.fingerprint and again.threshold == 0.6
    other = open_set(vad_streams, {**options, "roles": parse_roles(
        state=["state=stateN"], constant=["sr=8000"]).to_dict()}, calibration_size=10 * 40)
    assert other.fingerprint != data.fingerprint  # the constants are part of the set
    stricter = open_set(vad_streams, {**options, "threshold": 0.7}, calibration_size=10 * 40)
    assert stricter.fingerprint != data.fingerprint  # so is the decision scores read


def test_roles_stored_in_the_file_are_read(vad_model: Path, tmp_path: Path) -> None:
    path = tmp_path / "with-roles.npz"
    np.savez(path, audio=speech_like(3, 4, 5)[0], __roles__=np.array(json.dumps(ROLES.to_dict())))
    data = stream_set(path, parse_roles(), vad_model, calibration_size=2)
    assert data.roles.states == {"state": "stateN"} and data.roles.constants == {"sr": RATE}


RNG = np.random.default_rng(0)


@pytest.mark.parametrize(("arrays", "roles", "error", "message"), [
    ({"audio": RNG.normal(size=4).astype(np.float32)}, ROLES, CalibrationError, "no step axis"),
    ({"audio": RNG.normal(size=(4, 256)).astype(np.float32)}, ROLES, CalibrationError,
     r"a chunk of 'audio' is \(1,\) with its batch axis 0, the model expects"),
    ({"audio": RNG.normal(size=(4, 5, 128)).astype(np.float32)}, ROLES, CalibrationError,
     r"a chunk of 'audio' is \(1, 128\) .* --batch-axis"),
    ({"audio": RNG.normal(size=(4, 5, 256)).astype(np.float32),
      "state": np.zeros((4, 5, 2, 64), np.float32)},
     ROLES, CalibrationError, r"a stream's initial 'state' is \(5, 2, 64\) \(batch axis left "
                              r"out\), the model's state is \(2, .*give \[streams, \*state\]"),
    ({"audio": RNG.normal(size=(4, 5, 256))}, ROLES, CalibrationError,
     "'audio' is float64, the model expects float32"),
    ({"audio": RNG.normal(size=(4, 5, 256)).astype(np.float32)},
     parse_roles(state=["state=stateN"]), InputError, r"input 'sr' is 0-d .*--constant sr=VALUE"),
])
def test_streams_that_do_not_fit_say_what_and_how(vad_model: Path, tmp_path: Path,
                                                  arrays: dict, roles, error: type,  # noqa: ANN001
                                                  message: str) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(error, match=message):
        stream_set(path, roles, vad_model, calibration_size=2)


def test_a_streams_initial_state_comes_from_the_data(vad_model: Path, tmp_path: Path) -> None:
    """An array named after a state input, [streams, *state], starts each stream there (a
    stream resumed mid-utterance, a state warmed on earlier audio) instead of zeros: the
    calibration steps, the streams scoring runs and the set's fingerprint all follow it."""
    audio = speech_like(5, 6, 8)[0]
    warm = np.random.default_rng(0).uniform(-0.5, 0.5, (6, 2, HIDDEN)).astype(np.float32)
    np.savez(tmp_path / "warm.npz", audio=audio, state=warm)
    np.savez(tmp_path / "cold.npz", audio=audio)
    data = stream_set(tmp_path / "warm.npz", ROLES, vad_model, calibration_size=3 * 8)
    assert data.summary()["source"]["initial_states"] == {"state": ["float32", [2, HIDDEN]]}
    cold = stream_set(tmp_path / "cold.npz", ROLES, vad_model, calibration_size=3 * 8)
    assert cold.fingerprint != data.fingerprint
    session = ort.InferenceSession(str(vad_model), providers=["CPUExecutionProvider"])
    first = list(data.split.calibration)[0]
    chunks = next(data.streams("calibration"))
    np.testing.assert_array_equal(chunks[0]["state"], warm[first][:, None])
    assert all("state" not in c for c in chunks[1:])
    state, expected = warm[first][:, None], []
    for chunk in chunks:
        expected.append(state)
        state = session.run(None, {"audio": chunk["audio"], "state": state,
                                   "sr": np.array(RATE)})[1]
    feeds, _ = next(data.batches("calibration", batch_size=8))
    np.testing.assert_allclose(feeds["state"], np.concatenate(expected, axis=1), atol=1e-6)
    cold_feeds, _ = next(cold.batches("calibration", batch_size=8))
    assert not np.abs(cold_feeds["state"][:, 0]).any()  # without it: zeros
