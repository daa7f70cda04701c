"""Load, verify, run and profile a bundle with numpy and one backend (never torch, onnx or nncf).

An app embeds this package, so a module here imports the parts it needs only for optional
work (profiling, generation, streams, OpenVINO) inside the functions that do it: loading and
running a bundle pulls in numpy and the bundle's one backend, nothing more."""

from __future__ import annotations

import time
from pathlib import Path

from frugalml.errors import BundleError, FrugalError, InputError, TargetError
from frugalml.runtime.backends import get_backend
from frugalml.runtime.bundle import check_host, manifest_digest, read_manifest, verify_files
from frugalml.runtime.host import Host, read_host
from frugalml.runtime.manifest import Manifest, TensorSpec
from frugalml.runtime.model import Model

__all__ = [
    "BundleError",
    "FrugalError",
    "Host",
    "InputError",
    "Manifest",
    "Model",
    "TargetError",
    "TensorSpec",
    "load",
    "manifest_digest",
    "read_host",
]


def load(bundle_dir: str | Path, *, backend: str | None = None, threads: int | None = None,
         streams: int = 1, profile: bool = False, host: Host | None = None,
         expected_digest: str | None = None, hints: dict[str, str] | None = None) -> Model:
    """Verify a bundle (hashes, listed files, target vs host), then open it with a backend.

    Args:
        bundle_dir: directory written by ``frugal deploy``.
        backend: ``onnxruntime`` or ``openvino``; default: the one the bundle names.
        threads: intra-op threads; None or 0 lets the backend choose.
        streams: inferences that may run in parallel (OpenVINO streams).
        profile: record per-node times (for ``frugal bench``; slows every run a little).
        host: the host to check against; read from /proc/cpuinfo when omitted.
        expected_digest: sha256 of ``manifest.json`` you trust (printed by ``frugal deploy``
            and ``frugal verify``); pins every file of the bundle.
        hints: backend hints over the manifest's own (e.g. ``{"ALLOW_SPINNING": "1"}``).

    Raises:
        BundleError: missing, corrupt or tampered bundle, or the backend cannot load it.
        TargetError: this host cannot run the bundle's target, or the backend is unknown.
        FrugalError: the backend's library is not installed.
    """
    started = time.perf_counter()
    path = Path(bundle_dir)
    manifest = read_manifest(path, expected_digest)
    verify_files(path, manifest)
    check_host(manifest, host or read_host())
    name = backend or manifest.target.backend
    chosen = get_backend(name)
    verified = time.perf_counter()
    session = chosen.open(path / manifest.model_file, threads=threads or 0, streams=streams,
                          profile=profile, device=manifest.target.device,
                          hints={**manifest.runtime_hints, **(hints or {})})
    compiled = time.perf_counter()
    return Model(path, manifest, session, backend=name,
                 load_ms={"verify": (verified - started) * 1e3,
                          "compile": (compiled - verified) * 1e3})
