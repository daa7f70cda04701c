"""Verify an arm64 bundle on an x86 host under QEMU user-mode emulation.

The bundle's own self-check (its sample inputs against the outputs recorded at build time)
runs inside the aarch64 root through frugalml's runtime alone, copied in as plain sources: the
same numpy-plus-one-backend code a device runs, on aarch64 builds of ONNX Runtime or
OpenVINO, on an emulated CPU that has the target's required features. Bundles for a target
that is not native here record ONNX Runtime's unfused reference as their expected outputs
(never x86 INT8 output), against which ARM INT8 kernels are exact (TARGETS.md).
Emulated time says nothing about device speed: nothing here is timed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from frugalml.core.progress import Steps
from frugalml.errors import BundleError, TargetError
from frugalml.targets.arm64_root import EMULATED_CPUS, PYTHON, QEMU, arm64_root, cpu_view
from frugalml.targets.profiles import Target

_RESULT = "FRUGAL-EMULATED-RESULT "
# Runs inside the emulated python: the bundle's self-check, the result as one JSON line.
_CHECK = f"""
import json, sys
from frugalml import runtime
from frugalml.errors import FrugalError
from frugalml.runtime.host import read_host
try:
    with runtime.load(sys.argv[1], backend=sys.argv[2], threads=1) as model:
        out = {{"ok": True, **model.self_check()}}
    host = read_host()
    out["emulated_host"] = {{"machine": host.machine, "flags": list(host.flags)}}
except FrugalError as e:
    out = {{"ok": False, "error": type(e).__name__, "message": str(e)}}
print({_RESULT!r} + json.dumps(out), flush=True)
"""
CHECK_TIMEOUT_S = 900


def pick_cpu(root: Path, target: Target) -> str:
    """The least capable emulated CPU with every feature ``target`` requires.

    Raises:
        TargetError: no emulated CPU has them (the message lists what each offers).
    """
    offered = {}
    for cpu in EMULATED_CPUS:
        text = (cpu_view(root, cpu) / "proc" / "cpuinfo").read_text()
        offered[cpu] = set(text.split("Features\t: ", 1)[1].splitlines()[0].split())
        if set(target.required_features) <= offered[cpu]:
            return cpu
    raise TargetError(f"No emulated CPU has {target.name}'s features "
                      f"{sorted(target.required_features)}: "
                      + "; ".join(f"{c} offers {' '.join(sorted(f))}" for c, f in offered.items()))


def verify_emulated(bundle: Path, target: Target, *, backend: str | None = None,
                    cache: Path | None = None, steps: Steps | None = None) -> dict[str, Any]:
    """Run ``bundle``'s self-check on an emulated aarch64 CPU with ``backend`` (default: the
    target's) and return how it was checked plus the worst cosine and max abs error.

    Raises:
        TargetError: emulation tools are missing, the root cannot be built, or the emulated
            process crashed or timed out.
        BundleError: the bundle's outputs under emulation drift beyond its tolerance, or the
            emulated runtime refused the bundle.
    """
    backend = backend or target.backend
    root = arm64_root(cache, steps)
    cpu = pick_cpu(root, target)
    view = cpu_view(root, cpu)
    with tempfile.TemporaryDirectory(prefix="frugal-emulated-") as work:
        payload = _runtime_sources(Path(work) / "src")
        # A copy under the work dir: a host path below /usr or /etc would resolve into the root.
        copy = shutil.copytree(bundle, Path(work) / "bundle")
        env = {"QEMU_CPU": cpu, "PYTHONPATH": str(payload), "PYTHONNOUSERSITE": "1",
               "PYTHONDONTWRITEBYTECODE": "1", "HOME": work, "LANG": "C.UTF-8",
               "PATH": "/usr/local/bin:/usr/bin:/bin"}
        command = [QEMU, "-L", str(view), str(root / PYTHON), "-c", _CHECK,
                   str(copy), backend]
        with (steps or Steps(quiet=True)).step(f"self-check {Path(bundle).name} with "
                                               f"{backend} on an emulated {cpu}"):
            try:
                done = subprocess.run(command, env=env, cwd=work, capture_output=True, text=True,
                                      timeout=CHECK_TIMEOUT_S, check=False)
            except subprocess.TimeoutExpired as e:
                raise TargetError(f"The emulated self-check did not finish in "
                                  f"{CHECK_TIMEOUT_S} s; emulation runs 25-350x slower than "
                                  "native: bundle a smaller model or fewer samples.") from e
    return _result(done, cpu, backend)


def _result(done: subprocess.CompletedProcess[str], cpu: str, backend: str) -> dict[str, Any]:
    """Parse the emulated process's JSON line into a verification record, or raise."""
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(_RESULT)]
    if not lines:
        tail = " | ".join(done.stderr.strip().splitlines()[-4:])
        raise TargetError(f"The emulated {backend} process on {cpu} exited with "
                          f"{done.returncode} before reporting: {tail[:500] or 'no output'}")
    out = json.loads(lines[-1][len(_RESULT):])
    if not out.pop("ok"):
        error = BundleError if out["error"] == "BundleError" else TargetError
        raise error(f"Under emulation ({cpu}, {backend}): {out['message']}")
    return {"status": "verified", "how": f"under QEMU user-mode emulation ({cpu}) with "
            f"{backend} for aarch64; outputs vs the recorded unfused reference", **out}


def _runtime_sources(dest: Path) -> Path:
    """A copy of frugalml's runtime (and the standard-library modules it imports: errors and
    the kernel's records) as a source tree the emulated python can import; nothing else of
    frugalml goes in."""
    import frugalml
    import frugalml.runtime

    package = dest / "frugalml"
    (package / "core").mkdir(parents=True)
    for name in ("__init__.py", "errors.py", "core/__init__.py", "core/records.py"):
        shutil.copy2(Path(frugalml.__file__).parent / name, package / name)
    shutil.copytree(Path(frugalml.runtime.__file__).parent, package / "runtime",
                    ignore=shutil.ignore_patterns("__pycache__", "*.toml"))
    return dest
