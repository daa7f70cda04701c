"""Benchmark runs as reports see them: a Profile, plus the bundle's manifest when known.

Inputs are Profile JSON files (from ``frugal bench --json``, ``frugal bench --generate
--json`` for decoders, or a deploy) and, optionally, bundle directories, whose manifests add
size, recipe, target and accuracy to the profiles of the same bundle.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from frugalml.errors import FrugalError

PROFILE_SCHEMA = 2
DECODE_SCHEMA = 1  # frugalml.runtime.decode_profile.SCHEMA_VERSION


@dataclasses.dataclass(frozen=True, slots=True)
class Run:
    """One profiled artifact on one host and backend."""

    profile: dict[str, Any]
    manifest: dict[str, Any] | None = None
    origin: str = ""

    @property
    def decoding(self) -> bool:
        """A decode profile (time to first token, tokens/s), not a latency one."""
        return self.profile.get("kind") == "decode"

    @property
    def key(self) -> str:
        """What lines runs up across files: the bundle and the backend."""
        backend = self.profile.get("backend") or self.profile["settings"]["backend"]
        return f"{self.profile['bundle']} @ {backend}"

    @property
    def label(self) -> str:
        """Key plus the host, for tables where several hosts appear."""
        return f"{self.key} ({self.profile['host']['cpu_model']})"

    @property
    def size_mb(self) -> float | None:
        """Model file size from the manifest's metrics, in MB."""
        size = (self.manifest or {}).get("metrics", {}).get("size_bytes")
        return size / 1e6 if size else None

    @property
    def accuracy(self) -> float | None:
        """The task accuracy recorded at build time (probe or top-1), if any.

        Only for runs on the backend the bundle was built and measured with: another backend
        computes int8 differently, so the build-time number does not describe it.
        """
        built_for = (self.manifest or {}).get("target", {}).get("backend")
        if self.decoding or built_for != self.profile["backend"]:
            return None
        metrics = (self.manifest or {}).get("metrics", {})
        # Deploy bundles record the task metric itself; compiled ones, their quantize scores.
        scored = {**((metrics.get("accuracy") or {}).get("candidate") or {}), **metrics}
        value = scored.get("probe_accuracy", scored.get("top1_accuracy"))
        return float(value) if value is not None else None


def load_runs(paths: Sequence[Path]) -> list[Run]:
    """Read Profile JSONs and attach manifests from any bundle directories given.

    Raises:
        FrugalError: a path is missing, not JSON, not a Profile, or from a newer schema.
    """
    manifests: dict[str, dict[str, Any]] = {}
    profiles: list[tuple[dict[str, Any], str]] = []
    for path in map(Path, paths):
        if path.is_dir() and (path / "manifest.json").is_file():
            manifest = _read_json(path / "manifest.json")
            manifests[manifest["name"]] = manifest
            continue
        data = _read_json(path)
        for profile in data if isinstance(data, list) else [data]:
            _check_profile(profile, path)
            profiles.append((profile, str(path)))
    if not profiles:
        raise FrugalError("No Profile JSON among the inputs: run `frugal bench BUNDLE --json "
                          "> run.json` first, then pass run.json.")
    return [Run(p, manifests.get(p["bundle"]), origin) for p, origin in profiles]


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise FrugalError(f"{path} does not exist.")
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise FrugalError(f"{path} is not JSON ({e}); pass Profile JSONs from frugal bench "
                          "--json or bundle directories.") from e


def _check_profile(data: Any, path: Path) -> None:
    decode = isinstance(data, dict) and data.get("kind") == "decode"
    needed = ("bundle", "host", "settings", "first_token_ms", "decode_tokens_per_s") if decode \
        else ("bundle", "backend", "host", "latency_ms", "cold_start_ms")
    if not isinstance(data, dict) or any(k not in data for k in needed):
        raise FrugalError(f"{path} is not a frugalml Profile (needs {', '.join(needed)}).")
    version, newest = data.get("schema_version"), DECODE_SCHEMA if decode else PROFILE_SCHEMA
    if not isinstance(version, int) or version > newest:
        raise FrugalError(f"{path} has {'decode ' if decode else ''}Profile schema {version!r}; "
                          f"this frugalml reads up to {newest}. Upgrade frugalml.")
