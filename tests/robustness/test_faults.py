"""Fault injection: `frugal deploy` is killed (SIGKILL, no chance to clean up) or interrupted
(Ctrl-C) at several points while it writes cache entries and bundles. No partial bundle or
cache entry may ever be visible at a final path, and the next run must recover."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from frugalml import runtime
from frugalml.calibration import rotten_tomatoes_file
from frugalml.core.atomic import recover, staged
from frugalml.core.cache import cached_stage
from frugalml.demo import default_model_dir
from frugalml.deploy import DeployResult
from tests.conftest import SMALL_FLAGS

# The session deploy's options, so its cache entries are reused, with 5 profile runs (the last
# --profile-runs given counts): the run count is in no cache key, and no speed is asserted here.
ARGS = [*SMALL_FLAGS, "--profile-runs", "5"]


def _command(out: Path) -> list[str]:
    return [sys.executable, "-m", "frugalml.cli", "deploy", str(default_model_dir()),
            str(rotten_tomatoes_file()), "--out", str(out), *ARGS]


def _start(out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(_command(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _run_until(out: Path, seen: Callable[[], bool], sig: int = signal.SIGKILL,
               delay: float = 0.0, timeout: float = 300.0) -> subprocess.Popen[str]:
    """Start a deploy, wait until ``seen()``, then send ``sig`` to its whole process group."""
    proc = _start(out)
    deadline = time.monotonic() + timeout
    while not seen():
        assert proc.poll() is None, f"deploy ended before the fault point: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "fault point never reached"
        time.sleep(0.02)
    time.sleep(delay)
    os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        pytest.fail(f"deploy still running 120 s after signal {sig}; its stderr:\n{err[-3000:]}")
    return proc


def _staging(folder: Path, pattern: str) -> Callable[[], bool]:
    return lambda: any(folder.glob(pattern))


def _final_entries(cache: Path, stage: str) -> list[Path]:
    return [p for p in cache.glob(f"{stage}-*") if p.is_dir()]


def _assert_complete_or_absent(out: Path) -> None:
    """Every bundle visible at a final path verifies whole; nothing else is there."""
    for bundle in (out / "bundles").glob("[!.]*"):
        model = runtime.load(bundle)
        model.self_check()
        model.close()


@pytest.fixture(scope="module")
def warm_cache(deployed: DeployResult) -> Path:
    """The session deploy's cache (export, quantize) to start later phases from."""
    return deployed.out_dir / "cache"


def test_sigkill_at_each_stage_never_leaves_partial_output(tmp_path: Path, warm_cache: Path,
                                                            deployed: DeployResult) -> None:
    out = tmp_path / "out"
    cache = out / "cache"
    # 1. killed while exporting: no export entry appears
    _run_until(out, _staging(cache, ".export-*.staging-*"))
    assert _final_entries(cache, "export") == [] and not (out / "bundles").exists()
    # 2. killed while quantizing (the export is taken from a finished run)
    for entry in _final_entries(warm_cache, "export"):
        shutil.copytree(entry, cache / entry.name)
    _run_until(out, _staging(cache, ".quantize-*.staging-*"))
    assert _final_entries(cache, "quantize") == []
    # 3. killed right after the bundles' manifests are written, and 4. during profiling
    for entry in _final_entries(warm_cache, "quantize"):
        shutil.copytree(entry, cache / entry.name)
    bundles = out / "bundles"
    _run_until(out, _staging(bundles, ".*.staging-*/manifest.json"))
    assert list(bundles.glob("[!.]*")) == []
    _run_until(out, _staging(bundles, ".*.staging-*/manifest.json"), delay=4.0)
    assert list(bundles.glob("[!.]*")) == []
    # the next run recovers: cached stages are reused, stale staging dirs are removed
    done = subprocess.run(_command(out), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "cached; " in done.stderr or "cached; " in done.stdout
    shipped = len([c for c in next(iter(deployed.record["targets"].values()))["candidates"]
                   if c["bundle"]])
    assert len(list(bundles.glob("[!.]*"))) == shipped >= 2  # FP32 and each in-budget one
    assert not list(bundles.glob(".*")) and not list(cache.glob(".*staging*"))
    _assert_complete_or_absent(out)
    # 5. killed while new bundles are built over the old ones: what is visible is whole (the
    #    instant between the two renames of the swap is covered by the recover test below)
    before = {b.name: json.loads((b / "manifest.json").read_text()) for b in bundles.iterdir()}
    _run_until(out, _staging(bundles, ".*.staging-*/manifest.json"), delay=2.0)
    _assert_complete_or_absent(out)
    for name in before:
        recover(bundles / name)
    assert sorted(b.name for b in bundles.iterdir()) == sorted(before)
    _assert_complete_or_absent(out)


def _group_members(pgid: int) -> list[str]:
    """Command lines of the live (not zombie) processes in process group ``pgid``."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(cmdline.strip())
    return members


def _profiling(pgid: int) -> Callable[[], bool]:
    return lambda: any("frugalml.runtime.profile" in c for c in _group_members(pgid))


def _seed(cache: Path, warm_cache: Path, stages: tuple[str, ...]) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    for stage in stages:
        for entry in _final_entries(warm_cache, stage):
            shutil.copytree(entry, cache / entry.name)


@pytest.mark.parametrize("during", ["export", "quantize", "profile"])
def test_ctrl_c_during_each_long_step_exits_130_and_leaves_nothing_behind(
        tmp_path: Path, warm_cache: Path, during: str) -> None:
    out = tmp_path / "out"
    seeded = {"export": (), "quantize": ("export",), "profile": ("export", "quantize")}
    _seed(out / "cache", warm_cache, seeded[during])
    proc = _start(out)
    seen = (_profiling(proc.pid) if during == "profile"
            else _staging(out / "cache", f".{during}-*.staging-*"))
    deadline = time.monotonic() + 300
    while not seen():
        assert proc.poll() is None, f"deploy ended before {during}: {proc.stderr.read()}"
        assert time.monotonic() < deadline, f"{during} never started"
        time.sleep(0.02)
    time.sleep(1.0 if during != "profile" else 0.3)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.count("interrupted:") == 1 and "Traceback" not in err, err
    assert not list(out.rglob(".*staging*")), "a staging directory was left behind"
    if during == "profile":  # bundles finished (verified) before profiling; no decision yet
        _assert_complete_or_absent(out)
        assert not (out / "deploy.json").exists() and not (out / "report.md").exists()
    else:
        assert not list((out / "bundles").glob("[!.]*")), "a bundle appeared at its final path"
    assert _final_entries(out / "cache", during) == []
    deadline = time.monotonic() + 10  # children are reaped by init once the CLI is gone
    while (alive := _group_members(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive, f"processes of the interrupted command still run: {alive}"


def test_a_corrupt_cache_entry_is_detected_and_rebuilt(tmp_path: Path) -> None:
    class Rec:
        def __init__(self, path: Path) -> None:
            self.path = path

        def to_dict(self) -> dict:
            return {"path": str(self.path)}

    builds = []

    def build(tmp: Path) -> Rec:
        builds.append(tmp)
        (tmp / "model.onnx").write_bytes(b"weights" * 100)
        return Rec(tmp / "model.onnx")

    def load(d: dict) -> Rec:
        return Rec(Path(d["path"]))

    record, hit = cached_stage(tmp_path, "export", "k" * 24, build, load)
    assert not hit and record.path.read_bytes() == b"weights" * 100
    assert cached_stage(tmp_path, "export", "k" * 24, build, load)[1]
    record.path.write_bytes(b"weights" * 99 + b"w3ights")  # bit rot after it was written
    record, hit = cached_stage(tmp_path, "export", "k" * 24, build, load)
    assert not hit and len(builds) == 2 and record.path.read_bytes() == b"weights" * 100


def test_recover_removes_dead_writers_staging_and_restores_the_old_version(
        tmp_path: Path) -> None:
    dest = tmp_path / "bundle"
    with staged(dest) as stage:
        (stage / "v").write_text("1")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    leftover = tmp_path / f".bundle.staging-{dead}-abc"
    leftover.mkdir()
    dest.rename(tmp_path / ".bundle.old")  # killed between the two renames
    recover(dest)
    assert (dest / "v").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_ctrl_c_during_frugal_export_exits_130_and_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "exp"
    proc = subprocess.Popen([sys.executable, "-m", "frugalml.cli", "export",
                             str(default_model_dir()), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while not list(tmp_path.glob(".exp.staging-*")):
        assert proc.poll() is None, f"export ended before it was interrupted: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "the export never started writing"
        time.sleep(0.02)
    time.sleep(1.0)  # inside the exporter's imports and tracing
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.count("interrupted:") == 1 and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "output or staging left behind"
    assert _group_members(proc.pid) == []
