"""frugalml: take a trained model to an edge device, measured on its target.

This module stays standard-library only (PEP 562 lazy attributes) because it runs before any
subpackage, including the numpy-only runtime.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load": "frugalml.runtime:load",
    "deploy": "frugalml.deploy:deploy",
    "DeployOptions": "frugalml.deploy:DeployOptions",
    "demo": "frugalml.demo:run_demo",
    "FrugalError": "frugalml.errors:FrugalError",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    """Import public names on first use so `import frugalml` stays cheap."""
    if name not in _LAZY:
        raise AttributeError(f"module 'frugalml' has no attribute {name!r}")
    module, attr = _LAZY[name].split(":")
    return getattr(importlib.import_module(module), attr)
