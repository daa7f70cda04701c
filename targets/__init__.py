"""Targets stage: CPU-class profiles, host detection, and atomic bundle writing."""

from __future__ import annotations

from frugalml.targets.detect import detect, missing_for, support
from frugalml.targets.profiles import TARGETS, QuantFormat, Target, get_target

__all__ = ["TARGETS", "QuantFormat", "Target", "detect", "get_target", "missing_for", "support"]
