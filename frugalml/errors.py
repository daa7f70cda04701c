"""The one error hierarchy of frugalml (standard library only, so the runtime can re-export it)."""

from __future__ import annotations

import importlib.util

__all__ = [
    "BundleError",
    "CalibrationError",
    "ExportError",
    "FrugalError",
    "InputError",
    "QuantizationError",
    "SweepError",
    "TargetError",
    "one_line",
    "require",
]


class FrugalError(Exception):
    """Base of every error frugalml raises on purpose; the CLI prints these without a traceback."""


class ExportError(FrugalError):
    """A model could not be exported, or the export does not match its source."""


class CalibrationError(FrugalError):
    """A calibration or evaluation set is missing, empty, malformed or inconsistent."""


class QuantizationError(FrugalError):
    """Quantization failed or produced a model outside its accuracy budget."""


class TargetError(FrugalError):
    """A target is unknown, or this host or device cannot run it."""


class BundleError(FrugalError):
    """A bundle is missing, corrupt, tampered with, or incompatible with this runtime."""


class SweepError(FrugalError):
    """A sweep spec is malformed, or the cluster cannot run what it asks for."""


class InputError(FrugalError):
    """Inputs given to a model have the wrong names, shapes or dtypes."""


def one_line(text: object, limit: int = 400) -> str:
    """A library's (often multi-line) error text as one line without a final period, for
    quoting inside frugalml's own message."""
    return " ".join(str(text).split())[:limit].rstrip(".")


def require(module: str, *, extra: str) -> None:
    """Fail early with the install command when an optional dependency is missing.

    Raises:
        FrugalError: ``module`` cannot be imported in this environment.
    """
    if importlib.util.find_spec(module) is None:
        raise FrugalError(
            f"This step needs the Python package '{module}', which is not installed. "
            f"Install it with: pip install -c constraints.txt 'frugalml[{extra}]'"
        )
