"""Load, verify, run and profile a bundle with numpy and one backend (never torch, onnx or nncf)."""

from __future__ import annotations

from pathlib import Path

from frugalml.errors import BundleError, FrugalError, InputError, TargetError
from frugalml.runtime.backends import get_backend
from frugalml.runtime.bundle import check_host, read_manifest, verify_files
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
    "read_host",
]


def load(bundle_dir: str | Path, *, threads: int = 0, host: Host | None = None) -> Model:
    """Verify a bundle (hashes, listed files, target vs host), then open it with its backend.

    Args:
        bundle_dir: directory written by ``frugal deploy``.
        threads: intra-op threads; 0 lets the backend choose.
        host: the host to check against; read from /proc/cpuinfo when omitted.

    Raises:
        BundleError: missing, corrupt or tampered bundle.
        TargetError: this host cannot run the bundle's target.
    """
    path = Path(bundle_dir)
    manifest = read_manifest(path)
    verify_files(path, manifest)
    check_host(manifest, host or read_host())
    session = get_backend(manifest.target.backend).open(path / manifest.model_file, threads=threads)
    return Model(path, manifest, session)
