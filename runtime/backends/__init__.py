"""Inference backends behind one small protocol, chosen by name from one registry."""

from __future__ import annotations

from frugalml.runtime.backends._protocol import Backend, Session
from frugalml.runtime.backends._registry import get_backend, names

__all__ = ["Backend", "Session", "get_backend", "names"]
