"""The runtime's stream session: it feeds the state back and the constants itself, equals a
hand-written loop, serves many streams from many threads on one model, and a bundle whose
roles were altered is refused."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from bench._streaming import HIDDEN, RATE, speech_like
from frugalml import runtime
from frugalml.errors import BundleError, InputError
from frugalml.runtime.roles import parse_roles, resolve_roles
from frugalml.runtime.stream import StreamSession

VAD = [("audio", "float32", ("batch", 256)), ("state", "float32", (2, "batch", 64)),
       ("sr", "int64", ())]


def _roles():  # noqa: ANN202
    return resolve_roles(parse_roles(state=["state=stateN"], constant=[f"sr={RATE}"]), VAD,
                         ["speech", "stateN"])


def test_steps_equal_a_hand_written_loop_feeding_the_state_back(vad_model: Path) -> None:
    session = ort.InferenceSession(str(vad_model), providers=["CPUExecutionProvider"])
    audio = speech_like(5, 1, 30)[0][0]
    stream = StreamSession(lambda f: dict(zip(["speech", "stateN"], session.run(None, f),
                                              strict=True)), _roles(), VAD)
    state = np.zeros((2, 1, HIDDEN), np.float32)
    for chunk in audio:
        speech, state = session.run(None, {"audio": chunk[None], "state": state,
                                           "sr": np.array(RATE)})
        got = stream.step({"audio": chunk[None]})
        np.testing.assert_allclose(got["speech"], speech, atol=1e-6)
        np.testing.assert_allclose(stream.state["state"], state, atol=1e-6)
    assert stream.steps == 30
    stream.reset()
    assert stream.state is None
    first = stream.step({"audio": audio[0][None]})["speech"]
    np.testing.assert_allclose(first, session.run(None, {
        "audio": audio[0][None], "state": np.zeros((2, 1, HIDDEN), np.float32),
        "sr": np.array(RATE)})[0], atol=1e-6)


def _fp32_bundle(vad_deploy: Path) -> Path:
    record = json.loads((vad_deploy / "deploy.json").read_text())
    (target,) = record["targets"].values()
    fp32 = next(c for c in target["candidates"] if c["name"] == "fp32")
    return Path(fp32["bundle"])


def test_many_streams_from_many_threads_on_one_model(vad_deploy: Path) -> None:
    streams = speech_like(7, 20, 12)[0]
    with runtime.load(_fp32_bundle(vad_deploy), threads=1) as model:
        assert model.roles.states == {"state": "stateN"} and model.roles.constants == {"sr": RATE}

        def run(audio: np.ndarray) -> np.ndarray:
            stream = model.open_stream()
            return np.concatenate([stream.step({"audio": c[None]})["speech"] for c in audio])

        alone = [run(s) for s in streams]
        with ThreadPoolExecutor(4) as pool:
            together = list(pool.map(run, streams))
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_array_equal(a, b)
    assert len({float(a.sum()) for a in alone}) > 1  # the streams differ


def test_a_constant_or_a_new_batch_size_mid_stream_is_refused(vad_deploy: Path) -> None:
    with runtime.load(_fp32_bundle(vad_deploy), threads=1) as model:
        stream = model.open_stream()
        chunk = np.zeros((1, 256), np.float32)
        with pytest.raises(InputError, match=r"constants of this deployment \(sr=16000\)"):
            stream.step({"audio": chunk, "sr": np.array(8000)})
        stream.step({"audio": chunk})
        with pytest.raises(InputError, match="call reset"):
            stream.step({"audio": np.zeros((2, 256), np.float32)})
        stream.reset()
        assert stream.step({"audio": np.zeros((2, 256), np.float32)})["speech"].shape == (2, 1)


@pytest.mark.parametrize(("change", "message"), [
    ({"states": {"state": "speech"}}, "whose shape does not fit"),
    ({"constants": {"sr": [16000, 8000]}}, "does not fit"),
    ({"batch_axes": {"state": 0}}, "gives batch axes"),
])
def test_a_bundle_whose_roles_were_altered_is_refused(vad_deploy: Path, tmp_path: Path,
                                                      change: dict, message: str) -> None:
    bundle = tmp_path / "altered"
    shutil.copytree(_fp32_bundle(vad_deploy), bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["roles"] = {**manifest["roles"], **change}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=message):
        runtime.load(bundle)


def test_samples_that_chain_are_replayed_with_the_state_fed_back() -> None:
    from frugalml.runtime.stream import replay

    roles = _roles()
    seen = []

    def run(feeds):  # noqa: ANN001, ANN202
        seen.append(feeds["state"].copy())
        return {"speech": feeds["audio"].sum(axis=1, keepdims=True),
                "stateN": feeds["state"] + feeds["audio"][None, :, :HIDDEN]}

    audio = np.random.default_rng(0).normal(size=(4, 256)).astype(np.float32)
    states = [np.zeros((2, 1, HIDDEN), np.float32)]
    for i in range(3):
        states.append(states[-1] + audio[i][None, None, :HIDDEN])
    feeds = {"audio": audio, "state": np.concatenate(states, axis=1), "sr": np.array(RATE)}
    expected = run(feeds)
    seen.clear()
    pairs = replay(StreamSession(run, roles, VAD), feeds, expected)
    for got, want in pairs:
        np.testing.assert_allclose(got["stateN"], want["stateN"], atol=1e-6)
    assert len(seen) == 4
    # Item 2 made to start elsewhere: its state is given, not fed back; the rest still chain.
    feeds["state"][:, 2] += 5.0
    expected = run(feeds)
    pairs = replay(StreamSession(run, roles, VAD), feeds, expected)
    for got, want in pairs:
        np.testing.assert_allclose(got["stateN"], want["stateN"], atol=1e-6)
