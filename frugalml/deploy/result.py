"""A candidate's result, typed from its build to deploy.json: which candidate it is, how it
scored against FP32, the mixed-precision search behind it, its bundle and how that was
verified, and its speed verdict.

Deploy passed these around as dicts whose keys six modules re-read by name; now the engine,
selection, timing and the progress lines share one record, and deploy.json holds
:meth:`CandidateResult.to_dict` with the keys it always had (schema 1, so today's readers and
reports read it unchanged). :meth:`CandidateResult.from_dict` reads an entry back, so a test or
a tool judges a deploy.json from disk exactly as the deploy that wrote it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from frugalml.runtime.speed import NOT_MEASURED, Verdict, describe

SCORED, FAILED, SKIPPED = "scored", "failed", "skipped"
BASELINE = "baseline"


@dataclasses.dataclass(slots=True, kw_only=True)
class Speed:
    """A speed verdict against FP32 as deploy.json keeps it (a subset of
    :class:`~frugalml.runtime.speed.Verdict`), or why none was measured."""

    verdict: str = NOT_MEASURED
    ratio_p50: float | None = None
    ci95: tuple[float, float] | None = None
    why: str | None = None
    rounds: int | None = None
    repeated_rounds: int | None = None
    baseline_p50_ms: float | None = None
    candidate_p50_ms: float | None = None
    settings: dict[str, Any] | None = None

    @classmethod
    def of(cls, verdict: Verdict) -> Speed:
        """What deploy.json keeps of a measured verdict."""
        return cls(verdict=verdict.verdict, ratio_p50=verdict.ratio_p50,
                   ci95=tuple(verdict.ci95) if verdict.ci95 else None, why=verdict.why,
                   rounds=verdict.rounds, repeated_rounds=verdict.repeated_rounds,
                   baseline_p50_ms=verdict.baseline_p50_ms,
                   candidate_p50_ms=verdict.candidate_p50_ms, settings=dict(verdict.settings))

    @classmethod
    def not_measured(cls, why: str) -> Speed:
        return cls(why=why)

    @property
    def faster(self) -> bool:
        return self.verdict == "faster"

    def describe(self, *, short: bool = False) -> str:
        """``2.10x FP32 (95 % CI 1.99-2.29, faster)`` (see :func:`runtime.speed.describe`)."""
        return describe(self.to_dict(), short=short)

    def to_dict(self) -> dict[str, Any]:
        always = {"ratio_p50": self.ratio_p50,
                  "ci95": list(self.ci95) if self.ci95 else None, "verdict": self.verdict}
        rest = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in always and getattr(self, f.name) is not None}
        return always | rest

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Speed:
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        if known.get("ci95"):
            known["ci95"] = tuple(known["ci95"])
        return cls(**known)


BASELINE_SPEED = Speed(verdict=BASELINE, ratio_p50=1.0, ci95=(1.0, 1.0))


@dataclasses.dataclass(slots=True, kw_only=True)
class Scores:
    """The candidate's accuracy against FP32 by the task's headline metric, and its budget.

    ``extra`` holds what only some tasks or runs have: a decoder's perplexity-rise interval
    and the reference's unigram perplexity, a streaming model's segment and state scores, the
    items scored before a time budget stopped it."""

    metric: str
    fp32: float | None
    value: float
    budget_met: bool
    failures: list[str]
    task: str
    items: int
    checks: list[dict[str, Any]] | None = None   # every check (the FP32 baseline has none)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def delta(self) -> float | None:
        return None if self.fp32 is None else self.value - self.fp32

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "fp32": self.fp32, "value": self.value,
                "delta": self.delta, "budget_met": self.budget_met,
                "failures": list(self.failures), "task": self.task, "items": self.items,
                **({"checks": self.checks} if self.checks is not None else {}), **self.extra}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scores:
        named = ("metric", "fp32", "value", "budget_met", "failures", "task", "items", "checks")
        return cls(**{k: data[k] for k in named if k in data},
                   extra={k: v for k, v in data.items() if k not in (*named, "delta")})


@dataclasses.dataclass(slots=True, kw_only=True)
class Search:
    """The mixed-precision search that repaired a candidate: its scores before, the nodes it
    kept in float, and every point it tried (see :func:`frugalml.deploy.search.curve`)."""

    before: Scores
    float_nodes: list[str]
    curve: dict[str, Any]


@dataclasses.dataclass(slots=True, kw_only=True)
class CandidateResult:
    """One candidate on one target, from its build to deploy.json (see the module doc)."""

    name: str
    recipe: str
    backend: str
    format: str
    options: dict[str, Any] | None = None
    status: str = SCORED
    error: str | None = None               # why it failed or was skipped
    precision: str | None = None
    size_bytes: int | None = None
    cached: bool | None = None
    model: str | None = None               # the quantized (or FP32) model file
    accuracy: Scores | None = None
    speed: Speed = dataclasses.field(default_factory=Speed)
    speed_at_batch_1: Speed | None = None  # when the user's workload is not batch 1
    search: Search | None = None
    verified: str | None = None            # how its bundle was verified here, or why not
    bundle: str | None = None
    kernels_ran: dict[str, Any] | None = None
    # FP32's accuracy record this candidate was scored against; read by the engine, not kept.
    reference: dict[str, Any] | None = None

    @property
    def in_budget(self) -> bool:
        """Scored, within every accuracy and size limit, and its bundle built and kept."""
        return (self.status == SCORED and self.accuracy is not None
                and self.accuracy.budget_met and self.bundle is not None)

    def why_not(self) -> str:
        """One clause saying why this candidate did not ship."""
        if self.status in (FAILED, SKIPPED):
            return f"{self.name} {self.status}: {self.error}"
        assert self.accuracy is not None
        if not self.accuracy.budget_met:
            repair = (f" even after the mixed-precision search kept {len(self.search.float_nodes)}"
                      " nodes in float" if self.search else "")
            return (f"{self.name} missed its budget{repair} "
                    f"({'; '.join(self.accuracy.failures)})")
        if self.bundle is None:
            return f"{self.name} did not build a bundle: {self.verified}"
        return f"{self.name} {self.speed.describe()}"

    def summary(self) -> str:
        """``probe_accuracy 0.7731 (FP32 0.7750), 22.9 MB, within budget`` for progress."""
        acc = self.accuracy
        assert acc is not None and self.size_bytes is not None
        fp32 = "" if acc.fp32 is None else f" (FP32 {acc.fp32:.4f})"
        verdict = ("within budget" if acc.budget_met else
                   "over budget: " + "; ".join(acc.failures))
        rise = acc.extra.get("increase_pct_ci95")
        if rise:
            fp32 += f", rise 95 % CI {rise[0]:+.2f} % .. {rise[1]:+.2f} %"
        stopped = acc.extra.get("stopped_after_items")
        cut = (f", scored on the first {stopped} evaluation items (the time budget ran out)"
               if stopped else "")
        return (f"{acc.metric} {acc.value:.4f}{fp32}, {self.size_bytes / 1e6:.1f} MB, "
                f"{verdict}{cut}")

    def to_dict(self) -> dict[str, Any]:
        """deploy.json's entry: the keys schema 1 always had."""
        entry: dict[str, Any] = {
            "name": self.name, "recipe": self.recipe, "backend": self.backend,
            "format": self.format, "status": self.status, "precision": self.precision,
            "size_bytes": self.size_bytes,
            "accuracy": self.accuracy.to_dict() if self.accuracy else None,
            "speed": self.speed.to_dict(), "verified": self.verified, "bundle": self.bundle}
        optional = {"options": self.options, "error": self.error, "cached": self.cached,
                    "model": self.model, "kernels_ran": self.kernels_ran,
                    "speed_at_batch_1": self.speed_at_batch_1.to_dict()
                    if self.speed_at_batch_1 else None}
        entry |= {k: v for k, v in optional.items() if v is not None}
        if self.search is not None:
            entry |= {"repaired": True, "before_repair": self.search.before.to_dict(),
                      "float_nodes": list(self.search.float_nodes), "search": self.search.curve}
        return entry

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CandidateResult:
        """An entry of deploy.json's ``candidates`` read back."""
        search = None
        if data.get("repaired"):
            search = Search(before=Scores.from_dict(data["before_repair"]),
                            float_nodes=list(data.get("float_nodes", ())),
                            curve=dict(data.get("search") or {}))
        at_1 = data.get("speed_at_batch_1")
        return cls(name=data["name"], recipe=data["recipe"], backend=data["backend"],
                   format=data["format"], options=data.get("options"),
                   status=data["status"], error=data.get("error"),
                   precision=data.get("precision"), size_bytes=data.get("size_bytes"),
                   cached=data.get("cached"), model=data.get("model"),
                   accuracy=Scores.from_dict(data["accuracy"]) if data.get("accuracy")
                   else None,
                   speed=Speed.from_dict(data.get("speed") or {}),
                   speed_at_batch_1=Speed.from_dict(at_1) if at_1 else None, search=search,
                   verified=data.get("verified"), bundle=data.get("bundle"),
                   kernels_ran=data.get("kernels_ran"))
