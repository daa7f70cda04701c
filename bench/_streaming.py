"""A tiny streaming voice-activity detector no one else has: 256 audio samples per call,
framed and projected, a 1-D convolution, a 2-layer GRU whose state ``[2, batch, 64]`` has its
batch on axis 1 and is fed back as ``state`` <- ``stateN``, a 0-d int64 sample rate that
scales the features, and a sigmoid speech probability ``[batch, 1]`` per chunk.

It is trained for a few seconds on speech-like audio (voiced bursts: harmonics of a 100-250 Hz
fundamental under a syllable envelope) over noise and silence, with one label per chunk, so
its decisions are a real detector's: mostly clear-cut, uncertain at the edges of bursts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CHUNK, FRAME, HIDDEN, RATE = 256, 32, 64, 16000
ROLE_FLAGS = ("--state", "state=stateN", "--constant", f"sr={RATE}")


def speech_like(seed: int, streams: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``[streams, steps, CHUNK]`` float32 audio and ``[streams, steps]`` 0/1 speech labels."""
    rng = np.random.default_rng(seed)
    n = steps * CHUNK
    t = np.arange(n) / RATE
    audio = np.zeros((streams, n), np.float32)
    labels = np.zeros((streams, steps), np.float32)
    for s in range(streams):
        x = rng.normal(0, rng.uniform(0.002, 0.05), n)
        pos = int(rng.integers(0, 4)) * CHUNK
        while pos < n:
            length = min(int(rng.integers(3, 10)) * CHUNK, n - pos)
            end = pos + length
            if rng.random() < 0.5:
                f0 = rng.uniform(100, 250)
                envelope = np.sin(np.pi * np.linspace(0, 1, length)) ** 0.5
                voiced = sum(np.sin(2 * np.pi * f0 * k * t[:length] + rng.uniform(0, 6)) / k
                             for k in range(1, 6))
                x[pos:end] += rng.uniform(0.1, 0.5) * envelope * voiced
                labels[s, pos // CHUNK:(end + CHUNK - 1) // CHUNK] = 1
            pos = end + int(rng.integers(2, 8)) * CHUNK
        audio[s] = x
    return audio.reshape(streams, steps, CHUNK), labels


def tiny_vad(dest: Path, *, seed: int = 0, epochs: int = 40, cell: str = "gru") -> Path:
    """Train the detector (about 5 s on 2 cores) and export it to ``dest/vad.onnx``; with
    ``cell="lstm"`` to ``dest/vad-lstm.onnx``, whose state is two inputs, ``h`` <- ``hN`` and
    ``c`` <- ``cN``."""
    import torch
    from torch import nn

    lstm = cell == "lstm"

    class TinyVad(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.spectrum = nn.Linear(FRAME, 32)
            self.conv = nn.Conv1d(32, 32, 3, padding=1)
            recurrent = nn.LSTM if lstm else nn.GRU
            self.rnn = recurrent(32, HIDDEN, num_layers=2, batch_first=True)
            self.head = nn.Linear(HIDDEN, 1)

        def forward(self, audio: torch.Tensor, *rest: torch.Tensor) -> tuple[torch.Tensor, ...]:
            *state, sr = rest
            frames = audio.reshape(audio.shape[0], CHUNK // FRAME, FRAME)
            feats = torch.log1p(self.spectrum(frames).abs() * (sr.to(torch.float32) / RATE))
            feats = torch.relu(self.conv(feats.transpose(1, 2))).transpose(1, 2)
            out, state_n = self.rnn(feats, tuple(state) if lstm else state[0])
            return (torch.sigmoid(self.head(out[:, -1])),
                    *(state_n if lstm else (state_n,)))

    torch.manual_seed(seed)
    model = TinyVad()
    audio, labels = (torch.from_numpy(a) for a in speech_like(seed, 32, 40))
    rate = torch.tensor(RATE)
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    zeros = [torch.zeros(2, len(audio), HIDDEN) for _ in range(2 if lstm else 1)]
    for _ in range(epochs):
        state, probs = zeros, []
        for step in range(audio.shape[1]):
            p, *state = model(audio[:, step], *state, rate)
            probs.append(p[:, 0])
        loss = nn.functional.binary_cross_entropy(torch.stack(probs, 1), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    dest.mkdir(parents=True, exist_ok=True)
    names = (["h", "c"], ["hN", "cN"]) if lstm else (["state"], ["stateN"])
    path = dest / ("vad-lstm.onnx" if lstm else "vad.onnx")
    torch.onnx.export(model.eval(), (audio[:1, 0], *(z[:, :1] for z in zeros), rate),
                      str(path), input_names=["audio", *names[0], "sr"],
                      output_names=["speech", *names[1]],
                      dynamic_axes={"audio": {0: "batch"}, **{n: {1: "batch"} for n in names[0]}},
                      dynamo=False, opset_version=17)
    return path


def streams_file(dest: Path, *, seed: int = 1, streams: int = 24, steps: int = 40) -> Path:
    """An .npz of evaluation-style streams for the detector (``audio`` only)."""
    path = dest / f"streams-{seed}.npz"
    np.savez(path, audio=speech_like(seed, streams, steps)[0])
    return path


SENTENCES = (
    "Voice activity detection runs chunk by chunk on the device.",
    "The state of the network is carried from one call to the next.",
    "Quantized models must agree with the float model on every frame.",
    "A keyword spotter listens all day and must not drain the battery.",
    "Streaming speech recognisers keep a recurrent state between chunks.",
    "Edge boxes and phones run small models close to the microphone.",
    "Silence and noise separate the sentences in these recordings.",
    "Each recording is one stream, split whole between calibration and evaluation.",
)


def spoken_recordings(dest: Path, *, seed: int = 0) -> Path:
    """A folder of 16 kHz 16-bit .wav files: real synthetic speech from espeak-ng (one
    sentence, another voice speed each), between silences, under noise. Needs ``espeak-ng``
    (Debian package; CI installs it)."""
    import subprocess
    import wave

    rng = np.random.default_rng(seed)
    dest.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(SENTENCES):
        raw = dest / f"raw-{i}.wav"
        subprocess.run(["espeak-ng", "-v", "en", "-s", str(130 + 10 * i), "-w", str(raw), text],
                       check=True, capture_output=True)
        with wave.open(str(raw), "rb") as w:
            rate = w.getframerate()
            speech = np.frombuffer(w.readframes(w.getnframes()), np.int16) / 32768.0
        raw.unlink()
        at = np.arange(0, len(speech) / rate, 1 / RATE)  # linear resampling to 16 kHz
        speech = np.interp(at, np.arange(len(speech)) / rate, speech)
        gap = np.zeros(int(rng.uniform(0.3, 0.8) * RATE))
        audio = np.concatenate([gap, speech, gap[: len(gap) // 2]])
        audio += rng.normal(0, rng.uniform(0.002, 0.02), len(audio))
        with wave.open(str(dest / f"speech-{i}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes((np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes())
    return dest
