"""Ctrl-C exits 130 even when it lands inside ``exec`` of a string (CPython 3.11 then kills a
``python -m`` process with SIGINT after a clean ``return 130``; see frugalml.core.interrupt)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

_MODULE = '''
import sys
from frugalml.core.interrupt import exit_process, install

def main():
    install()
    try:
        exec("print('ready', flush=True)\\nimport time\\nwhile True: time.sleep(0.01)")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130

if __name__ == "__main__":
    {exit}(main())
'''


def _interrupt_inside_exec(tmp_path: Path, exit_call: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "cli_like.py").write_text(_MODULE.replace("{exit}", exit_call))
    proc = subprocess.Popen([sys.executable, "-m", "cli_like"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_plain_exit_after_a_ctrl_c_inside_exec_dies_by_sigint(tmp_path: Path) -> None:
    """The CPython behaviour the fix exists for: handled, yet the exit status is -SIGINT."""
    done = _interrupt_inside_exec(tmp_path, "raise SystemExit")
    if done.returncode == 130:
        pytest.fail(f"Python {sys.version.split()[0]} no longer re-raises a handled Ctrl-C "
                    "that passed through exec(str): exit_process's workaround can go")
    assert done.returncode == -signal.SIGINT and "interrupted" in done.stderr


def test_exit_process_keeps_130_after_a_ctrl_c_inside_exec(tmp_path: Path) -> None:
    done = _interrupt_inside_exec(tmp_path, "exit_process")
    assert done.returncode == 130, done.stderr
    assert done.stderr.count("interrupted") == 1 and "Traceback" not in done.stderr


def test_exit_process_runs_atexit_handlers_and_flushes(tmp_path: Path) -> None:
    code = ("import atexit, sys\nfrom frugalml.core.interrupt import exit_process\n"
            "atexit.register(lambda: print('cleaned up'))\nsys.stdout.write('unflushed ')\n"
            "exit_process(130)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 130 and done.stdout == "unflushed cleaned up\n", done


def test_exit_process_takes_the_normal_path_for_other_codes() -> None:
    from frugalml.core.interrupt import exit_process

    with pytest.raises(SystemExit) as e:
        exit_process(2)
    assert e.value.code == 2


def test_nothing_is_committed_after_a_ctrl_c_a_library_swallowed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A library that catches KeyboardInterrupt (a bare except) lets the step finish; the
    atomic write then refuses to commit it (a Ctrl-C test once found an export entry at its
    final path after exit 130)."""
    import threading

    from frugalml.core import interrupt
    from frugalml.core.atomic import staged

    monkeypatch.setattr(interrupt, "_requested", threading.Event())
    with staged(tmp_path / "kept") as stage:
        (stage / "a").write_text("done")
    assert (tmp_path / "kept" / "a").read_text() == "done"
    interrupt._requested.set()  # what the CLI's SIGINT handler records
    with pytest.raises(KeyboardInterrupt), staged(tmp_path / "entry") as stage:
        (stage / "a").write_text("finished after Ctrl-C")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]
