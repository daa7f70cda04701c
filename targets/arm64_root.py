"""An aarch64 Debian root for checking arm64 bundles under QEMU user-mode emulation.

Built without emulating anything: debootstrap only downloads Debian's arm64 packages
(python3 and its libraries), they are unpacked on the host with ``dpkg-deb`` (debootstrap's
emulated second stage takes ~9 minutes here), and numpy plus the backends are installed from
PyPI's aarch64 wheels at the host's own versions, so the emulated runtime is the one under
test. The root is cached under ``$FRUGALML_CACHE/arm64-root/<key>`` and written atomically.

Each emulated CPU gets a *view*: a directory of symlinks into the root plus a generated
``proc/cpuinfo`` whose ``Features`` are the CPU's hwcaps. QEMU's ``-L`` prefix serves files
from the view first, so the emulated process reads that cpuinfo instead of the x86 host's:
with the host's, ``import onnxruntime`` segfaults and OpenVINO hangs (TARGETS.md).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from frugalml.core.atomic import staged
from frugalml.core.progress import Steps
from frugalml.errors import TargetError
from frugalml.export.gguf import default_cache_root

QEMU = "qemu-aarch64-static"
SUITE = "bookworm"  # Debian's python3 here is 3.11: the wheels below are cp311
PYTHON = "usr/bin/python3.11"
SITE = "usr/local/lib/python3.11/dist-packages"
WHEELS = ("numpy", "onnxruntime", "openvino")
# Listing only manylinux2014 silently resolves onnxruntime 1.16.3 (TARGETS.md).
_PLATFORMS = ("manylinux2014_aarch64",
              *(f"manylinux_2_{v}_aarch64" for v in (17, 24, 26, 27, 28, 31, 34, 35, 36)))
_TOOLS = {QEMU: "qemu-user-static", "debootstrap": "debootstrap", "dpkg-deb": "dpkg"}
# Linux arm64 AT_HWCAP and AT_HWCAP2 bits, in order, as /proc/cpuinfo names them.
_HWCAP = ("fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm "
          "jscvt fcma lrcpc dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc "
          "flagm ssbs sb paca pacg").split()
_HWCAP2 = ("dcpodp sve2 sveaes svepmull svebitperm svesha3 svesm4 flagm2 frint svei8mm "
           "svef32mm svef64mm svebf16 i8mm bf16 dgh rng bti mte").split()
_BUILD_TIMEOUT_S = 1200
# QEMU CPU models the views describe, least capable first: (variant, part, revision) of
# their MIDR_EL1, which /proc/cpuinfo and sysfs report and oneDNN reads.
_CORES = 2
# Only what the emulated python needs: a link for /tmp or /home would hide the host's own
# (realpath follows the link into the root and the bundle "disappears").
_VIEW_LINKS = ("bin", "etc", "lib", "sbin", "usr")
EMULATED_CPUS = {"cortex-a72": (0x0, 0xD08, 3), "neoverse-n1": (0x3, 0xD0C, 1)}


def require_tools() -> None:
    """Raise :class:`TargetError` naming the emulation tools this host lacks."""
    missing = [tool for tool in _TOOLS if shutil.which(tool) is None]
    if missing:
        packages = " ".join(sorted({_TOOLS[t] for t in missing}))
        raise TargetError(f"arm64 emulation needs {', '.join(missing)}, not found on PATH. "
                          f"Install them (Debian/Ubuntu, as root): apt-get install {packages}.")


def apt_mirror(sources_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror apt already uses (the only one reachable on a closed network)."""
    texts = [p.read_text(errors="replace") for p in sorted(sources_dir.glob("sources.list.d/*"))
             + [sources_dir / "sources.list"] if p.is_file()]
    for text in texts:
        for uri in re.findall(r"(?m)^(?:URIs:\s*|deb\s+(?:\[[^]]*\]\s+)?)(\S+)", text):
            if "security" not in uri:
                return uri
    return "http://deb.debian.org/debian"


def _versions() -> dict[str, str]:
    """The host's versions of the packages the emulated runtime needs."""
    try:
        return {name: metadata.version(name) for name in WHEELS}
    except metadata.PackageNotFoundError as e:
        raise TargetError(f"arm64 emulation installs the host's {e.name} for aarch64, but "
                          f"{e.name} is not installed here: pip install 'frugalml[all]'.") from e


def arm64_root(cache: Path | None = None, steps: Steps | None = None) -> Path:
    """The cached aarch64 root, built on first use (~1 minute with a warm network).

    Raises:
        TargetError: a tool is missing, or a download or install step failed (the message
            carries the step's own error output).
    """
    require_tools()
    steps = steps or Steps(quiet=True)
    mirror, versions = apt_mirror(), _versions()
    key = hashlib.sha256(repr((SUITE, mirror, sorted(versions.items()))).encode()).hexdigest()
    dest = (cache or default_cache_root().parent / "arm64-root") / key[:16]
    if (dest / PYTHON).is_file():
        return dest
    with staged(dest, error=TargetError) as stage:
        with steps.step(f"download Debian {SUITE} arm64 python3 packages from {mirror}"):
            _run(["debootstrap", "--arch=arm64", "--variant=minbase", "--include=python3",
                  "--download-only", SUITE, str(stage), mirror], "debootstrap")
        with steps.step("unpack the packages (no emulated install step)"):
            for deb in sorted((stage / "var/cache/apt/archives").glob("*.deb")):
                _unpack(deb, stage)
            shutil.rmtree(stage / "var/cache/apt/archives", ignore_errors=True)
        pins = [f"{name}=={version}" for name, version in versions.items()]
        with steps.step(f"install aarch64 wheels: {', '.join(pins)}"):
            _run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                  "--target", str(stage / SITE), "--only-binary=:all:", "--python-version",
                  "3.11", "--implementation", "cp",
                  *(a for p in _PLATFORMS for a in ("--platform", p)), *pins], "pip")
    return dest


def _unpack(deb: Path, root: Path) -> None:
    """Extract one .deb's files into ``root`` (maintainer scripts are not run)."""
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)],
                          stdout=subprocess.PIPE) as package:
        tar = subprocess.run(["tar", "-x", "--keep-directory-symlink", "-C", str(root)],
                             stdin=package.stdout, capture_output=True, check=False)
    if package.returncode or tar.returncode:
        raise TargetError(f"Cannot unpack {deb.name}: {tar.stderr.decode(errors='replace')[:300]}")


def _run(command: list[str], what: str) -> None:
    """Run a build step; its failure is a TargetError carrying the step's output."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False,
                              timeout=_BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise TargetError(f"{what} did not finish in {_BUILD_TIMEOUT_S} s while building the "
                          "arm64 root; check the network to the package mirrors.") from e
    if done.returncode:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise TargetError(f"{what} failed (exit {done.returncode}) while building the arm64 "
                          f"root: {' | '.join(tail)}")


def cpu_view(root: Path, qemu_cpu: str) -> Path:
    """A directory QEMU's ``-L`` can point at: the root's system directories as symlinks, and a
    ``proc/cpuinfo`` describing ``qemu_cpu`` (generated from its hwcaps, so it claims nothing
    the emulated CPU lacks: a claimed feature it lacks is "Illegal instruction")."""
    if qemu_cpu not in EMULATED_CPUS:
        raise TargetError(f"No arm64 view for QEMU CPU {qemu_cpu!r}; known: "
                          f"{', '.join(EMULATED_CPUS)}.")
    view = root.parent / f"{root.name}-view-{qemu_cpu}"
    if (view / "proc" / "cpuinfo").is_file():
        return view
    variant, part, revision = EMULATED_CPUS[qemu_cpu]
    midr = 0x41 << 24 | variant << 20 | 0xF << 16 | part << 4 | revision
    with staged(view, error=TargetError) as stage:
        for name in _VIEW_LINKS:
            (stage / name).symlink_to(root / name)
        (stage / "proc").mkdir()
        (stage / "proc" / "cpuinfo").write_text(
            _cpuinfo(_features(root, qemu_cpu), variant, part, revision))
        for core in range(_CORES):
            ident = stage / f"sys/devices/system/cpu/cpu{core}/regs/identification"
            ident.mkdir(parents=True)
            (ident / "midr_el1").write_text(f"0x{midr:016x}\n")
    return view


def _features(root: Path, qemu_cpu: str) -> list[str]:
    """The emulated CPU's feature names, read from the auxiliary vector QEMU gives a process."""
    done = subprocess.run([QEMU, "-cpu", qemu_cpu, "-L", str(root), str(root / "bin/true")],
                          env={**os.environ, "LD_SHOW_AUXV": "1"}, capture_output=True,
                          text=True, check=False, timeout=60)
    caps = dict(re.findall(r"(?m)^(AT_HWCAP2?):\s*(?:0x)?([0-9a-fA-F]+)", done.stdout))
    if done.returncode or "AT_HWCAP" not in caps:
        raise TargetError(f"QEMU cannot run the arm64 root as {qemu_cpu!r}: "
                          f"{done.stderr.strip()[:300] or 'no AT_HWCAP in its auxv'}")
    bits = [(int(caps["AT_HWCAP"], 16), _HWCAP), (int(caps.get("AT_HWCAP2", "0"), 16), _HWCAP2)]
    return [name for value, names in bits for i, name in enumerate(names) if value >> i & 1]


def _cpuinfo(features: list[str], variant: int, part: int, revision: int) -> str:
    """ARM /proc/cpuinfo text listing ``features`` for each core."""
    block = (f"BogoMIPS\t: 50.00\nFeatures\t: {' '.join(features)}\nCPU implementer\t: 0x41\n"
             f"CPU architecture: 8\nCPU variant\t: 0x{variant:x}\nCPU part\t: 0x{part:03x}\n"
             f"CPU revision\t: {revision}\n\n")
    return "".join(f"processor\t: {i}\n{block}" for i in range(_CORES))
