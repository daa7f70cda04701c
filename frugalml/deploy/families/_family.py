"""The record every model family module fills in, and what a family is decided from."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping

from frugalml.export.model_info import structure_of

# Items every candidate is scored on unless the user says otherwise.
DEFAULT_EVAL_ITEMS = 2000


@dataclasses.dataclass(frozen=True, slots=True)
class GraphFacts:
    """What a family is decided from: the task scoring found and the exported graph's
    operators, counted (ONNX operator names)."""

    task: str
    ops: Counter[str]

    @property
    def structure(self) -> str:
        """``convolutional``, ``attention`` or ``plain``: the one rule the quantizers follow
        too (:func:`frugalml.export.model_info.structure_of`)."""
        return structure_of(self.ops)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Family:
    """One kind of model, as a deploy treats it."""

    name: str
    about: str
    claims: Callable[[GraphFacts], bool]
    # Deploy's candidates (by name) that suit it; tried in the candidates' own order.
    candidates: frozenset[str]
    # Limits every candidate meets (the user's budget flags win), and those that replace
    # them for a model that came in a given format (``gguf``, ``onnx``, ``openvino``).
    budgets: Mapping[str, float] = dataclasses.field(default_factory=dict)
    source_budgets: Mapping[str, Mapping[str, float]] = dataclasses.field(default_factory=dict)
    eval_items: int = DEFAULT_EVAL_ITEMS
    # Profile token generation (first token, decode steps) beside the latency profile.
    generates: bool = False

    def budgets_for(self, source_format: str) -> dict[str, float]:
        """The family's limits for a model that came as ``source_format``."""
        return {**self.budgets, **self.source_budgets.get(source_format, {})}

    def suits(self, candidate: str) -> bool:
        """True when deploy tries ``candidate`` for this family (where the target allows)."""
        return candidate in self.candidates
