"""A folder of recordings as streams: each ``.wav`` (or 1-D ``.npy``) file is one stream, cut
into chunks of ``chunk`` samples (the tail shorter than a chunk is left off).

Read with the standard library's ``wave`` (PCM, 8/16/32-bit; channels averaged) at the
sample rate the model was trained for: a file at another rate is refused, never resampled
behind the user's back. Streams may differ in length.
"""

from __future__ import annotations

import hashlib
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.errors import CalibrationError

_PCM = {1: (np.uint8, 128.0, 128.0), 2: (np.int16, 0.0, 32768.0), 4: (np.int32, 0.0, 2.0**31)}


def read_wav(path: Path, sample_rate: int) -> np.ndarray:
    """Mono float32 samples in [-1, 1] of a PCM ``.wav`` at ``sample_rate``.

    Raises:
        CalibrationError: not a PCM wav this reader knows, or another sample rate.
    """
    try:
        with wave.open(str(path), "rb") as w:
            rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError, OSError) as e:
        raise CalibrationError(f"Cannot read {path} as a PCM .wav: {e}.") from e
    if rate != sample_rate:
        raise CalibrationError(f"{path} is sampled at {rate} Hz; the model takes {sample_rate} Hz "
                               f"(--sample-rate). Resample it first, e.g. `sox {path.name} -r "
                               f"{sample_rate} out.wav`.")
    if width not in _PCM:
        raise CalibrationError(f"{path} has {8 * width}-bit samples; use 8, 16 or 32-bit PCM.")
    dtype, offset, scale = _PCM[width]
    samples = (np.frombuffer(raw, dtype=dtype).astype(np.float32) - offset) / scale
    return samples.reshape(-1, channels).mean(axis=1).astype(np.float32)


class RecordingStreams:
    """Recordings in a folder, one stream each, as chunks for the model's one audio input."""

    kind = "recordings"

    def __init__(self, folder: Path, *, input_name: str, chunk: int, sample_rate: int) -> None:
        """Read and cut every recording.

        Raises:
            CalibrationError: no recordings, a bad chunk size, or a recording shorter than
                one chunk.
        """
        self.folder, self.input_name = Path(folder), input_name
        self.chunk, self.sample_rate = int(chunk), int(sample_rate)
        if self.chunk < 1 or self.sample_rate < 1:
            raise CalibrationError(f"--chunk {chunk} and --sample-rate {sample_rate} must be at "
                                   "least 1.")
        files = sorted(p for p in self.folder.iterdir() if p.suffix in (".wav", ".npy"))
        if not files:
            raise CalibrationError(f"{folder} holds no .wav or .npy recordings.")
        self._streams, short = [], []
        for path in files:
            samples = read_wav(path, self.sample_rate) if path.suffix == ".wav" else \
                np.load(path, allow_pickle=False).astype(np.float32).reshape(-1)
            steps = len(samples) // self.chunk
            if steps == 0:
                short.append(path.name)
            self._streams.append(samples[:steps * self.chunk].reshape(steps, self.chunk))
        if short:
            raise CalibrationError(f"Recordings {short} in {folder} are shorter than one chunk of "
                                   f"{self.chunk} samples; remove them or use a smaller --chunk.")
        self._keys = tuple(hashlib.sha256(s.tobytes()).hexdigest() for s in self._streams)

    @property
    def steps(self) -> float:
        """Mean chunks per stream."""
        return float(np.mean([len(s) for s in self._streams]))

    def chunks(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        """Each data input's dtype and chunk shape (without the batch axis)."""
        return {self.input_name: ("float32", (self.chunk,))}

    def keys(self) -> tuple[str, ...]:
        """Content hash of each recording's chunks."""
        return self._keys

    def labels(self) -> tuple[int | None, ...]:
        """Recordings carry no labels: scoring compares with FP32."""
        return (None,) * len(self._keys)

    def describe(self) -> dict[str, Any]:
        """Folder, chunking and the input the chunks feed."""
        return {"path": str(self.folder), "input": self.input_name, "chunk": self.chunk,
                "sample_rate": self.sample_rate, "streams": len(self._keys),
                "steps": [min(len(s) for s in self._streams), max(len(s) for s in self._streams)]}

    def content_digest(self) -> str:
        """sha256 over the recordings' hashes, in order."""
        return hashlib.sha256("".join(self._keys).encode()).hexdigest()

    def load(self, indices: Sequence[int]) -> dict[str, np.ndarray]:
        """``[len(indices), steps, chunk]`` of recordings of one length (one stream at a time
        for recordings of different lengths).

        Raises:
            CalibrationError: the recordings asked for differ in length.
        """
        lengths = {len(self._streams[i]) for i in indices}
        if len(lengths) > 1:
            raise CalibrationError("Recordings of different lengths load one at a time.")
        return {self.input_name: np.stack([self._streams[i] for i in indices])}
