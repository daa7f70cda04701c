"""Recordings as streams: PCM read by the standard library at the model's rate (never
resampled silently), cut into chunks, split by recording; and the detector scored over real
speech streams against FP32."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from bench._streaming import RATE
from frugalml.calibration.audio import RecordingStreams, read_wav
from frugalml.calibration.streams import stream_set
from frugalml.errors import CalibrationError
from frugalml.quantize.api import quantize
from frugalml.runtime.roles import parse_roles

ROLES = parse_roles(state=["state=stateN"], constant=[f"sr={RATE}"])


def _wav(path: Path, samples: np.ndarray, *, rate: int = RATE, width: int = 2,
         channels: int = 1) -> Path:
    dtype, scale, offset = {1: (np.uint8, 127, 128), 2: (np.int16, 32767, 0)}[width]
    frames = np.repeat(samples[:, None], channels, axis=1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes((frames * scale + offset).astype(dtype).tobytes())
    return path


def test_pcm_is_read_at_the_model_rate_and_other_rates_are_refused(tmp_path: Path) -> None:
    tone = (0.5 * np.sin(np.linspace(0, 40 * np.pi, 1000))).astype(np.float32)
    np.testing.assert_allclose(read_wav(_wav(tmp_path / "a.wav", tone), RATE), tone, atol=1e-4)
    stereo = read_wav(_wav(tmp_path / "b.wav", tone, channels=2, width=1), RATE)
    np.testing.assert_allclose(stereo, tone, atol=2 / 128)  # 8-bit steps, truncated
    with pytest.raises(CalibrationError, match=r"sampled at 22050 Hz; the model takes 16000 .*sox"):
        read_wav(_wav(tmp_path / "c.wav", tone, rate=22050), RATE)


def test_recordings_are_cut_into_chunks_one_stream_each(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for i, n in enumerate((1000, 2600, 300)):
        _wav(tmp_path / f"r{i}.wav", rng.uniform(-0.5, 0.5, n).astype(np.float32))
    source = RecordingStreams(tmp_path, input_name="audio", chunk=256, sample_rate=RATE)
    assert source.describe()["steps"] == [1, 10] and len(source.keys()) == 3
    assert source.load([1])["audio"].shape == (1, 10, 256)
    _wav(tmp_path / "tiny.wav", np.zeros(100, np.float32))
    with pytest.raises(CalibrationError, match=r"\['tiny.wav'\] .* shorter than one chunk"):
        RecordingStreams(tmp_path, input_name="audio", chunk=256, sample_rate=RATE)


def test_a_folder_needs_its_chunking(vad_model: Path, tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="give --chunk N"):
        stream_set(tmp_path, ROLES, vad_model, calibration_size=10)


def test_the_detector_on_real_speech_streams(vad_model: Path, spoken: Path,
                                             tmp_path: Path) -> None:
    data = stream_set(spoken, ROLES, vad_model, chunk=256, sample_rate=RATE,
                      calibration_size=300)
    summary = data.summary()
    assert summary["kind"] == "recordings" and summary["calibration_items"] == 1
    assert summary["evaluation_items"] == 7
    record = quantize(vad_model, data, tmp_path / "q", recipe="int8-dynamic",
                      allow_over_budget=True)
    accuracy = record.accuracy
    # FP32 hears speech in part of each recording (speech between silences), not all or none.
    assert 0.1 < accuracy["reference"]["positive_frames"] < 0.9
    assert accuracy["reference"]["steps"] == sum(
        len(c) for c in data.streams("evaluation"))
    assert accuracy["candidate"]["frame_agreement_with_fp32"] >= 0.99
    assert accuracy["candidate"]["fp32_segments"] >= 7
