"""The rough edges a new user hit on three real models (issue 22), each pinned by a test that
failed before its fix: records that name staging paths, messages that state a check that did
not happen, advice that makes things worse, and reports with holes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from frugalml.cli import main
from tests.quantize.test_contract import mlp_onnx


def _frugal(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "frugalml.cli", *args], capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fp32/model.onnx (the MLP), a labelled calibration set, int8/ from `frugal quantize`."""
    root = tmp_path_factory.mktemp("edges")
    (root / "fp32").mkdir()
    mlp_onnx(root / "fp32" / "model.onnx")
    rng = np.random.default_rng(3)
    np.savez(root / "data.npz", x=rng.normal(0, 1, (120, 64)).astype(np.float32),
             labels=np.arange(120) % 10)
    assert main(["calibrate", str(root / "data.npz"), "--model", str(root / "fp32"), "--out",
                 str(root / "cal"), "--num", "40"]) == 0
    assert main(["quantize", str(root / "fp32"), "--data", str(root / "cal"), "--out",
                 str(root / "int8"), "--max-size-ratio", "1", "--budget", "100"]) == 0
    return root


def test_export_json_records_the_final_path_not_the_staging_one(tmp_path: Path) -> None:
    from frugalml.export import export

    mlp_onnx(tmp_path / "m.onnx")
    record = export(tmp_path / "m.onnx", tmp_path / "out")
    written = json.loads((tmp_path / "out" / "export.json").read_text())
    assert written["path"] == str(tmp_path.resolve() / "out" / "model.onnx") == str(record.path)


def test_export_of_an_onnx_file_without_inputs_says_what_was_not_checked(tmp_path: Path
                                                                         ) -> None:
    mlp_onnx(tmp_path / "m.onnx")
    done = _frugal("export", str(tmp_path / "m.onnx"), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert "nan" not in done.stdout and "checked on 0" not in done.stdout
    assert "its own reference" in done.stdout and "--inputs" in done.stdout


def test_compile_on_a_missing_folder_says_it_does_not_exist(built: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    assert main(["compile", str(tmp_path / "nope"), "--target", "x86-avx2", "--data",
                 str(built / "cal"), "--out", str(tmp_path / "b")]) == 2
    assert "nope does not exist" in capsys.readouterr().err


def test_a_size_miss_is_not_sent_to_diagnose(built: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    assert main(["quantize", str(built / "fp32"), "--data", str(built / "cal"), "--out",
                 str(tmp_path / "q"), "--budget", "100", "--max-size-ratio", "0.01"]) == 2
    err = capsys.readouterr().err
    assert "size vs FP32" in err and "--max-size-ratio" in err
    assert "Run `frugal diagnose`" not in err and "larger, not smaller" in err


def test_diagnose_writes_the_size_budget_quantize_uses(built: Path, tmp_path: Path) -> None:
    from frugalml.calibration.descriptor import open_descriptor
    from frugalml.quantize.diagnose import diagnose
    from frugalml.quantize.recipe import Budget, get_recipe

    diagnose(built / "fp32", open_descriptor(built / "cal"), tmp_path / "d", eval_items=60,
             recipe=get_recipe("int8", budget=Budget(max_accuracy_drop_points=100)))
    record = json.loads((tmp_path / "d" / "quantize.json").read_text())
    size = next(c for c in record["accuracy"]["checks"] if c["name"] == "size vs FP32")
    assert size["limit"] == Budget().max_size_ratio == record["recipe"]["budget"][
        "max_size_ratio"]
    assert record["accuracy"]["within_budget"] is (size["value"] <= size["limit"])


def test_a_limit_that_cannot_fail_is_not_printed_as_a_check(built: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    quantized = json.loads((built / "int8" / "quantize.json").read_text())["accuracy"]
    assert "top-1 agreement with FP32" not in [c["name"] for c in quantized["checks"]]
    assert "top1_agreement_with_fp32" in quantized["candidate"]  # still measured and shown
    assert main(["quantize", str(built / "fp32"), "--data", str(built / "cal"), "--out",
                 str(tmp_path / "q"), "--budget", "100", "--max-size-ratio", "1",
                 "--min-agreement", "0.5"]) == 0
    assert re.search(r"top-1 agreement with FP32: [\d.]+ \(limit 0\.5\)", capsys.readouterr().out)


def test_quantize_records_the_calibration_items_it_used(built: Path) -> None:
    record = json.loads((built / "int8" / "quantize.json").read_text())
    assert record["recipe"]["calibration_items"] == 300  # asked for
    assert record["calibration_items_used"] == 40  # what the calibration part holds


def test_compiled_bundles_are_named_after_their_own_models_and_reported_whole(
        built: Path, tmp_path: Path) -> None:
    assert main(["compile", str(built / "int8"), "--fp32", str(built / "fp32"), "--target",
                 "x86-avx2", "--data", str(built / "cal"), "--out", str(tmp_path / "b")]) == 0
    bundles = sorted(p.name for p in (tmp_path / "b").iterdir() if p.is_dir())
    assert bundles == ["fp32-x86-avx2-fp32", "int8-x86-avx2-int8"]
    runs = []
    for name in bundles:
        done = _frugal("bench", str(tmp_path / "b" / name), "--json", "--duration", "0.3",
                       "--streams", "2")
        assert done.returncode == 0, done.stderr
        (tmp_path / f"{name}.json").write_text(done.stdout)
        runs.append(json.loads(done.stdout))
        settings = runs[-1]["settings"]
        assert runs[-1]["throughput_per_s"] == runs[-1]["streams_per_s"]["1"]
        assert settings["throughput_unit"] == "items per second (1 per call)"
    assert main(["report", *(str(tmp_path / f"{n}.json") for n in bundles),
                 *(str(tmp_path / "b" / n) for n in bundles), "--out", str(tmp_path / "r"),
                 "--format", "json"]) == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    fp32_top1 = json.loads((built / "int8" / "quantize.json").read_text())["accuracy"][
        "reference"]["top1_accuracy"]
    by_bundle = {r["bundle"]: r for r in report["runs"]}
    assert by_bundle["fp32-x86-avx2-fp32"]["accuracy"] == pytest.approx(fp32_top1)
    assert all(r["size_mb"] and r["size_mb"] > 0 for r in report["runs"])


def test_progress_lines_stay_whole_in_a_log() -> None:
    code = ("from frugalml.core.progress import Steps\n"
            "Steps().note('range safety: ' + 'node_x ' * 30 + 'kept in float')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith("kept in float"), done.stderr


def test_the_readme_runtime_example_runs_as_written(int8_bundle: Path) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    example = readme.split("### The runtime")[1].split("```python")[1].split("```")[0]
    assert "np.array" in example  # it says the inputs are numpy arrays
    namespace: dict[str, object] = {}
    exec(example.replace('"frugal-out/bundles/all-MiniLM-L6-v2-x86-avx512-int8-static"',
                         repr(str(int8_bundle))), namespace)
