"""The deploy engine: plan, candidates, select, engine (see engine.py for the stages).

``frugalml.deploy(model, data, ...)`` is the engine's entry point, and ``frugalml.deploy`` is
also this package: the import system puts a subpackage on its parent under its own name, so
the package itself is made callable (a ModuleType subclass) and calls :func:`deploy`.
"""

import sys
import types
from typing import Any

from frugalml.deploy.engine import DeployResult, deploy
from frugalml.deploy.plan import DeployOptions

__all__ = ["DeployOptions", "DeployResult", "deploy"]


class _CallablePackage(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> DeployResult:
        return deploy(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
