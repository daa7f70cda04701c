"""`frugal deploy` of a streaming detector from the CLI: state carried through calibration and
scoring, stream scores per candidate in deploy.json, roles in every bundle, steps/s and the
real-time factor from `frugal bench`, and roles that do not fit refused before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench._streaming import RATE, ROLE_FLAGS
from frugalml.cli import main

STREAM_SCORES = ("segment_agreement_with_fp32", "state_end_cosine")


def _record(out: Path) -> dict:
    return json.loads((out / "deploy.json").read_text())


def test_deploy_scores_every_candidate_over_streams(vad_deploy: Path) -> None:
    record = _record(vad_deploy)
    assert (record["task"], record["family"]) == ("streaming", "streaming")
    assert record["calibration"]["roles"] == {"batch_axes": {"state": 1},
                                              "constants": {"sr": RATE},
                                              "states": {"state": "stateN"}}
    (target,) = record["targets"].values()
    scored = [c for c in target["candidates"] if c["status"] == "scored" and c["name"] != "fp32"]
    assert {c["name"] for c in scored} >= {"int8-static", "int8-dynamic"}
    for c in scored:
        accuracy = c["accuracy"]
        assert accuracy["metric"] == "frame_agreement_with_fp32" and accuracy["fp32"] == 1.0
        assert 0.0 <= accuracy["value"] <= 1.0 and accuracy["items"] == 12
        assert all(k in accuracy for k in STREAM_SCORES)
        frames = next(k for k in accuracy["checks"] if k["name"] == "frame agreement with FP32")
        assert frames["limit"] == 0.99 and frames["passed"] == (frames["value"] >= 0.99)
    shipped = target["shipped"]
    chosen = next(c for c in target["candidates"] if c["name"] == shipped)
    if chosen["name"] != "fp32":  # what ships met the budget and measured faster
        assert chosen["accuracy"]["budget_met"] and chosen["accuracy"]["value"] >= 0.99
    for c in target["candidates"]:
        if c.get("bundle"):
            manifest = json.loads((Path(c["bundle"]) / "manifest.json").read_text())
            assert manifest["roles"]["states"] == {"state": "stateN"}


def test_bench_reports_steps_per_second_and_the_real_time_factor(vad_deploy: Path,
                                                                 capsys: pytest.CaptureFixture
                                                                 ) -> None:
    (target,) = _record(vad_deploy)["targets"].values()
    bundle = next(c["bundle"] for c in target["candidates"] if c["name"] == "fp32")
    assert main(["bench", bundle, "--runs", "30", "--no-ops"]) == 0
    text = capsys.readouterr().out
    assert "steps/s (p50), real-time factor" in text and "16.0 ms of audio per step" in text
    assert main(["bench", bundle, "--runs", "30", "--no-ops", "--json"]) == 0
    stream = json.loads(capsys.readouterr().out)["stream"]
    assert stream["chunk_seconds"] == 256 / RATE
    assert stream["real_time_factor"] == pytest.approx(stream["steps_per_s"] * 256 / RATE)


@pytest.mark.parametrize(("flags", "message"), [
    (["--state", "state=next", "--constant", f"sr={RATE}"], "the model has no output 'next'"),
    (["--state", "state=stateN"], "--constant sr=VALUE"),
    (["--state", "state=stateN", "--constant", "sr"], "--constant 'sr' is not NAME=VALUE"),
])
def test_roles_that_do_not_fit_are_refused_before_any_work(
        vad_model: Path, vad_streams: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
        flags: list[str], message: str) -> None:
    out = tmp_path / "out"
    assert main(["deploy", str(vad_model), str(vad_streams), *flags, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not (out / "deploy.json").exists()


def test_calibrate_writes_a_stream_descriptor(vad_model: Path, vad_streams: Path,
                                              tmp_path: Path, capsys: pytest.CaptureFixture
                                              ) -> None:
    assert main(["calibrate", str(vad_streams), "--model", str(vad_model), "--state",
                 "state=stateN", "--constant", f"sr={RATE}", "--num", "400", "--out",
                 str(tmp_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kind"] == "streams" and summary["calibration_items"] == 10
    assert summary["evaluation_items"] == 14 and summary["steps_per_stream"] == 40


def test_deploy_on_real_speech_recordings(vad_model: Path, spoken: Path, tmp_path: Path) -> None:
    out = tmp_path / "speech"
    assert main(["deploy", str(vad_model), str(spoken), "--chunk", "256", "--sample-rate",
                 str(RATE), "--state", "state=stateN", "--constant", f"sr={RATE}",
                 "--threshold", "0.5", "--num", "300", "--candidates", "int8-dynamic",
                 "--profile-runs", "30", "--out", str(out), "--quiet"]) == 0
    record = _record(out)
    assert record["calibration"]["kind"] == "recordings"
    assert record["calibration"]["source"]["chunk"] == 256
    (target,) = record["targets"].values()
    (dynamic,) = [c for c in target["candidates"] if c["name"] == "int8-dynamic"]
    assert dynamic["accuracy"]["metric"] == "frame_agreement_with_fp32"
    assert dynamic["accuracy"]["value"] >= 0.99 and dynamic["accuracy"]["items"] == 7
    assert dynamic["accuracy"]["state_end_cosine"] > 0.999


def test_calibrate_quantize_compile_and_verify_from_the_cli(
        vad_model: Path, vad_streams: Path, tmp_path: Path, capsys: pytest.CaptureFixture
        ) -> None:
    from frugalml.targets import detect

    assert main(["calibrate", str(vad_streams), "--model", str(vad_model), "--state",
                 "state=stateN", "--constant", f"sr={RATE}", "--num", "400", "--out",
                 str(tmp_path / "data")]) == 0
    assert main(["quantize", str(vad_model), "--data", str(tmp_path / "data"), "--recipe",
                 "int8-dynamic", "--out", str(tmp_path / "q"), "--max-size-ratio", "1.5"]) == 0
    record = json.loads((tmp_path / "q" / "quantize.json").read_text())
    assert record["accuracy"]["task"] == "streaming"
    assert record["input_roles"]["states"] == {"state": "stateN"}
    assert main(["compile", str(tmp_path / "q"), "--target", detect().name, "--data",
                 str(tmp_path / "data"), "--fp32", str(vad_model), "--out",
                 str(tmp_path / "bundles"), "--samples", "4"]) == 0
    bundles = sorted(p for p in (tmp_path / "bundles").iterdir() if p.is_dir())
    assert len(bundles) == 2
    capsys.readouterr()
    for bundle in bundles:
        manifest = json.loads((bundle / "manifest.json").read_text())
        assert manifest["roles"]["constants"] == {"sr": RATE}
        assert main(["verify", str(bundle)]) == 0
    assert "verified" in capsys.readouterr().out


def test_an_arm64_bundle_of_the_detector_verifies_its_stream_under_qemu(
        vad_model: Path, vad_streams: Path, tmp_path: Path) -> None:
    from tests.targets.test_emulation import _emulation_or_skip

    _emulation_or_skip()
    assert main(["calibrate", str(vad_streams), "--model", str(vad_model), *ROLE_FLAGS,
                 "--num", "400", "--out", str(tmp_path / "data")]) == 0
    assert main(["compile", str(vad_model), "--target", "arm64", "--data",
                 str(tmp_path / "data"), "--out", str(tmp_path / "bundles"), "--samples",
                 "4"]) == 0
    record = json.loads((tmp_path / "bundles" / "compile.json").read_text())
    (bundle,) = record["bundles"].values()
    assert Path(bundle).name == f"{vad_model.parent.name}-arm64-fp32"
    manifest = json.loads((Path(bundle) / "manifest.json").read_text())
    check = manifest["metrics"]["verification"]
    assert check["status"] == "verified" and "QEMU" in check["how"]
    assert check["min_cosine"] > 0.9999 and manifest["roles"]["constants"] == {"sr": RATE}
