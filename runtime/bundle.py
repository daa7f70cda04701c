"""Open a bundle directory and prove it is intact and runnable here before anything runs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from frugalml.core.records import file_sha256
from frugalml.errors import BundleError, TargetError
from frugalml.runtime.host import Host
from frugalml.runtime.manifest import MANIFEST_NAME, Manifest

MAX_MANIFEST_BYTES = 16 << 20


def read_manifest(bundle_dir: Path, expected_digest: str | None = None) -> Manifest:
    """Read and parse ``manifest.json``, optionally pinned to a sha256 the user trusts.

    The manifest lists the sha256 of every other file, so pinning its digest pins the whole
    bundle (see :func:`verify_files`).

    Raises:
        BundleError: the directory or manifest is missing, unreadable, malformed, too large,
            or its sha256 differs from ``expected_digest``.
    """
    bundle_dir = Path(bundle_dir)
    if not bundle_dir.is_dir():
        raise BundleError(
            f"No bundle at {bundle_dir}: the directory does not exist. "
            "Pass the directory that `frugal deploy` or `frugal demo` printed."
        )
    path = bundle_dir / MANIFEST_NAME
    if not path.is_file():
        raise BundleError(f"{bundle_dir} is not a bundle: it has no {MANIFEST_NAME}.")
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise BundleError(f"{path} is {path.stat().st_size} bytes; manifests are under "
                          f"{MAX_MANIFEST_BYTES} bytes. It is not a frugalml manifest.")
    raw = path.read_bytes()
    if expected_digest is not None:
        actual = hashlib.sha256(raw).hexdigest()
        if actual != expected_digest.strip().lower():
            raise BundleError(
                f"{path} has sha256 {actual}, not the expected {expected_digest}. The bundle "
                "is not the one you pinned: it was rebuilt or modified. Do not run it; get the "
                "bundle whose digest you trust, or pin the new digest if you rebuilt it."
            )
    try:
        return Manifest.from_dict(json.loads(raw))
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        raise BundleError(f"{path} is corrupt or from an unsupported version: "
                          f"{str(e).rstrip('.')}. Rebuild the bundle with `frugal deploy`.") from e


def manifest_digest(bundle_dir: Path) -> str:
    """sha256 of a bundle's ``manifest.json``: the one value that pins the whole bundle."""
    return hashlib.sha256((Path(bundle_dir) / MANIFEST_NAME).read_bytes()).hexdigest()


def verify_files(bundle_dir: Path, manifest: Manifest) -> None:
    """Check every file against its recorded sha256 and refuse unlisted files.

    Raises:
        BundleError: a file is missing, changed, or not listed in the manifest.
    """
    problems = []
    for rel, expected in sorted(manifest.files.items()):
        path = (bundle_dir / rel).resolve()
        if not path.is_relative_to(bundle_dir.resolve()):
            problems.append(f"{rel}: path points outside the bundle")
        elif not path.is_file():
            problems.append(f"{rel}: missing")
        elif file_sha256(path) != expected:
            problems.append(f"{rel}: sha256 differs from the manifest (corrupt or modified)")
    listed = set(manifest.files) | {MANIFEST_NAME}
    for path in sorted(bundle_dir.rglob("*")):
        rel = path.relative_to(bundle_dir).as_posix()
        if path.is_file() and rel not in listed:
            problems.append(f"{rel}: not listed in the manifest")
    if problems:
        raise BundleError(
            f"Bundle {bundle_dir} failed verification:\n  - " + "\n  - ".join(problems)
            + "\nRebuild it with `frugal deploy`; do not edit bundles by hand."
        )


def check_host(manifest: Manifest, host: Host) -> None:
    """Refuse to run a bundle on a host without the architecture, ISA features or float
    arithmetic it was built and validated for.

    Raises:
        TargetError: the architecture differs, required CPU features are absent, or the
            bundle computes in a float precision (bf16, fp16) this CPU has no native
            arithmetic for.
    """
    target = manifest.target
    if host.machine != target.machine:
        raise TargetError(
            f"Bundle {manifest.name!r} targets {target.name} ({target.machine}); this host is "
            f"{host.machine}. Build a bundle for this host with `frugal deploy --target auto`."
        )
    missing = sorted(set(target.required_features) - set(host.flags))
    if missing:
        raise TargetError(
            f"Bundle {manifest.name!r} targets {target.name}, which needs CPU features "
            f"{', '.join(missing)}; this host ({host.cpu_model}) lacks them. "
            "Build for a target this host supports (see `frugal targets`)."
        )
    computes = manifest.compute_precision
    why = host.capabilities.missing_for(computes) if target.device == "CPU" else ""
    if why:
        raise TargetError(
            f"Bundle {manifest.name!r} was validated at {computes} and must run at it, but "
            f"{why}. Use this model's fp32 or INT8 bundle on this host, or deploy again here "
            "(`frugal deploy --targets auto`).")
