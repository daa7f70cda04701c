"""Plug-ins by name: each entry a ``"module:ATTRIBUTE"`` string, imported on first use, so a
registry line costs nothing until the plug-in is asked for and a plug-in outside frugalml is
one :meth:`Registry.register` call."""

from __future__ import annotations

import importlib
from typing import Any

from frugalml.errors import FrugalError


class Registry:
    """Named plug-ins of one kind (``what`` names it in errors)."""

    def __init__(self, what: str, entries: dict[str, str],
                 error: type[FrugalError] = FrugalError) -> None:
        self.what, self.entries, self.error = what, dict(entries), error

    def names(self) -> tuple[str, ...]:
        """Known names, in registration order."""
        return tuple(self.entries)

    def register(self, name: str, where: str) -> None:
        """Add the plug-in at ``where`` (``"module:ATTRIBUTE"``) as ``name``.

        Raises:
            FrugalError (the registry's error type): the name is taken by another plug-in.
        """
        if name in self.entries and self.entries[name] != where:
            raise self.error(f"{self.what} {name!r} is already {self.entries[name]}.")
        self.entries[name] = where

    def load(self, name: str) -> Any:
        """The attribute registered as ``name``.

        Raises:
            FrugalError (the registry's error type): the name is unknown (the message lists
                the known ones).
        """
        if name not in self.entries:
            raise self.error(f"Unknown {self.what.lower()} {name!r}; known: "
                             f"{', '.join(self.entries)}.")
        module, attribute = self.entries[name].split(":")
        return getattr(importlib.import_module(module), attribute)
