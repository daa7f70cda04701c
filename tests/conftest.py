"""Shared fixtures: one real deploy of the demo model on a small evaluation slice, a small
real bundle (the MNIST CNN, FP32) for runtime tests that need thousands of calls, and a tiny
streaming detector with its streams. Every test that loads a real model from ../shared is
marked ``real_model`` here, so `pytest -m "not real_model"` is the quick loop."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from bench._data import build_mnist_bundle
from frugalml.deploy import DeployOptions, DeployResult

# The demo's engine run on a 1,000-text evaluation slice; every default candidate is tried.
# The probe drop budget is 2 points, not the demo's 1: on 1,000 texts (500 probe test items)
# int8-static measured drops of 0.4-1.4 points between runs (ONNX Runtime's calibration and
# scoring are not bit-stable across thread schedules), and a near miss would make this
# fixture run a minutes-long diagnose repair. The engine, not the budget, is under test.
SMALL = DeployOptions(eval_items=1000, profile_runs=30,
                      budget={"max_accuracy_drop_points": 2.0})
SMALL_FLAGS = ("--eval-items", "1000", "--profile-runs", "30", "--max-drop", "2.0")

# The loaders of the real models in ../shared (bench._data; the demo's MiniLM): calling one,
# in a test or in any fixture it uses, makes the test a real-model test.
REAL_MODEL_LOADERS = re.compile(
    r"\b(default_model_dir|run_demo|efficientnet_lite0|effnet_set|minilm_set|smollm2_gguf|"
    r"smollm2_set|ppocr_cls_model|ppocr_det_model)\(")


@functools.cache
def _loads_a_real_model(function: Callable[..., object]) -> bool:
    try:
        return bool(REAL_MODEL_LOADERS.search(inspect.getsource(function)))
    except (OSError, TypeError):  # no source (a builtin fixture)
        return False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``real_model`` each test whose function or fixtures (at any depth, and those it
    names in a parameter to fetch with ``request.getfixturevalue``) call a real-model loader:
    decided from the code, so a new test is marked without a list."""
    for item in items:
        functions = _fixture_functions(item)
        if getattr(item, "function", None) is not None:
            functions.append(item.function)
        if any(_loads_a_real_model(f) for f in functions):
            item.add_marker(pytest.mark.real_model)


def _fixture_functions(item: pytest.Item) -> list[Callable[..., object]]:
    manager = item.session._fixturemanager  # pytest's own lookup: visibility and overrides
    params = getattr(getattr(item, "callspec", None), "params", {})
    todo = [*getattr(item, "fixturenames", ()), *(v for v in params.values() if isinstance(v, str))]
    seen: set[str] = set()
    functions = []
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for definition in manager.getfixturedefs(name, item) or ():
            functions.append(definition.func)
            todo.extend(definition.argnames)
    return functions


@pytest.fixture(scope="session")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> DeployResult:
    """The whole path on all-MiniLM-L6-v2 (about 1 minute on 2 cores)."""
    from frugalml.demo import run_demo

    return run_demo(tmp_path_factory.mktemp("deploy"), options=dataclasses.replace(SMALL),
                    quiet=True)


def candidate(result: DeployResult, name: str) -> dict:
    """One candidate's entry in the deploy record (its only target)."""
    (target,) = result.record["targets"].values()
    return next(c for c in target["candidates"] if c["name"] == name)


@pytest.fixture(scope="session")
def int8_bundle(deployed: DeployResult) -> Path:
    """The int8-static bundle written by the real deploy (shipped or not)."""
    bundle = candidate(deployed, "int8-static")["bundle"]
    assert bundle, "int8-static missed its budget, so the deploy built no bundle for it"
    return Path(bundle)


@pytest.fixture(scope="session")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """all-MiniLM-L6-v2 exported to ONNX, with Rotten Tomatoes reviews (300 calibrating): one
    export for the quantize and diagnose tests (it was made once per module)."""
    from bench._data import minilm_set

    return minilm_set(tmp_path_factory.mktemp("minilm"))


@pytest.fixture(scope="session")
def effnet_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """EfficientNet-Lite0 exported to ONNX with a dynamic batch, checked against torch on 4
    ImageNet photos: one export for the quantize and deploy tests."""
    from bench._data import efficientnet_lite0, imagenet_batch
    from frugalml.export import GraphSpec, export

    x, _ = imagenet_batch(4)
    return export(efficientnet_lite0(), tmp_path_factory.mktemp("effnet"),
                  example={"image": x[:2]},
                  spec=GraphSpec(("image",), ("logits",), {"image": {0: "batch"}}),
                  validation=[{"image": x}]).path


@pytest.fixture(scope="session")
def mnist_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Exported, validated and bundled like a deploy does, with 16 real digits as samples."""
    return build_mnist_bundle(tmp_path_factory.mktemp("mnist"))


@pytest.fixture(scope="session")
def vad_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny streaming voice-activity detector of bench/_streaming.py, trained and exported."""
    from bench._streaming import tiny_vad

    return tiny_vad(tmp_path_factory.mktemp("vad"))


@pytest.fixture(scope="session")
def vad_streams(vad_model: Path) -> Path:
    """24 speech-like streams of 40 chunks for the detector."""
    from bench._streaming import streams_file

    return streams_file(vad_model.parent)


@pytest.fixture(scope="session")
def vad_deploy(vad_model: Path, vad_streams: Path) -> Path:
    """`frugal deploy` of the detector on its streams, state carried, from the CLI: the
    output folder (deploy.json, bundles)."""
    from bench._streaming import ROLE_FLAGS
    from frugalml.cli import main

    out = vad_model.parent / "deploy"
    code = main(["deploy", str(vad_model), str(vad_streams), *ROLE_FLAGS, "--num", "480",
                 "--time-budget", "4m", "--profile-runs", "30", "--out", str(out), "--quiet"])
    assert code == 0
    return out


@pytest.fixture(scope="session")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of 16 kHz recordings of real (espeak-ng) speech between silences, under noise;
    skipped without espeak-ng, except in CI (FRUGALML_REQUIRE_SPEECH=1, scripts/setup-speech.sh)."""
    import os
    import shutil

    from bench._streaming import spoken_recordings

    if shutil.which("espeak-ng") is None:
        if os.environ.get("FRUGALML_REQUIRE_SPEECH") == "1":
            raise RuntimeError("espeak-ng is missing: run scripts/setup-speech.sh")
        pytest.skip("espeak-ng is not installed (scripts/setup-speech.sh)")
    return spoken_recordings(tmp_path_factory.mktemp("speech"))


@pytest.fixture(scope="session")
def vad_lstm(vad_model: Path) -> Path:
    """The detector with a 2-layer LSTM: two states, ``h`` <- ``hN`` and ``c`` <- ``cN``."""
    from bench._streaming import tiny_vad

    return tiny_vad(vad_model.parent, cell="lstm")
