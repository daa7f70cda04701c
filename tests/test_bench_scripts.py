"""Every bench script runs and follows one convention: `--help` answers with its usage and
exits 0, in a process of its own, without starting the measurement (bench/int8_vs_fp32.py
imported a module removed long ago, and nothing noticed); every script takes `--json PATH`
and prints through bench/_report.py (a Markdown table under the host's line); none reaches
into tests/ or edits sys.path (real data comes from bench/_data.py). Helpers are `_*.py` and
are not scripts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_"))


def test_there_are_scripts() -> None:
    assert len(SCRIPTS) >= 10, SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_bench_script_answers_help(script: Path) -> None:
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True,
                          text=True, timeout=60, cwd=BENCH.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("usage:"), done.stdout[:300]
    assert "--json PATH" in done.stdout, f"{script.name} has no --json PATH option"


@pytest.mark.parametrize("source", sorted(BENCH.glob("*.py")), ids=lambda p: p.name)
def test_bench_code_reads_data_from_bench_not_tests(source: Path) -> None:
    text = source.read_text()
    assert "sys.path" not in text, f"{source.name} edits sys.path"
    assert "from tests" not in text and "import tests" not in text, source.name


def test_a_report_names_the_host_and_writes_its_rows(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from bench._report import emit
    from frugalml.runtime.host import read_host

    rows = [{"model": "a|b", "x FP32": 2.345678}, {"model": "c"}]
    emit("title", ("model", "x FP32"), rows, json_path=tmp_path / "out.json", threads=1,
         extra={"k": 1})
    printed = capsys.readouterr().out
    host = read_host()
    assert f"Host: {host.cpu_model}" in printed and "1 thread(s)" in printed
    assert "| a/b | 2.346 |" in printed and "| c | - |" in printed
    written = json.loads((tmp_path / "out.json").read_text())
    assert written["host"]["flags"] == list(host.flags)
    assert written["rows"][0]["x FP32"] == 2.345678 and written["extra"] == {"k": 1}
