"""The speed protocol: is a candidate faster than its baseline on this machine, yes, no, or
cannot tell? One function answers it for the speed gate, deploy, bench and compare.

Two fixed-count rounds cannot estimate noise, so verdicts flipped between runs. Here both
models run in one process on the same inputs with the same threads, in rounds whose order
flips each time (neither always runs on the warmer cache). Each round yields one paired ratio,
baseline p50 / candidate p50; rounds go on until the bootstrap 95 % interval of the median
ratio lies wholly above ``1 + f`` (faster), wholly below ``1 / (1 + f)`` (slower), or wholly
inside that band (no difference worth having), or until the time cap (inconclusive). Rounds in
which other processes used more than ``load_limit`` of a core are measured again (a bounded
number of times) and counted, so a busy machine shows in the verdict instead of deciding it.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.runtime.cpuload import LoadMeter
from frugalml.runtime.workload import Workload, workload_feeds

THRESHOLD = 0.03  # a speed-up under 3 % is within what one model varies by between rounds
FASTER, SLOWER, INCONCLUSIVE, NOT_MEASURED = "faster", "slower", "inconclusive", "not measured"
_BOOTSTRAP = 2000


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """How long the protocol may run and what counts as decided or disturbed."""

    threshold: float = THRESHOLD
    min_rounds: int = 6
    max_rounds: int = 60
    time_cap_s: float = 60.0
    round_s: float = 0.25        # target time per model per round (calls chosen to fill it)
    load_limit: float = 0.5      # other processes' cores during a round before it is redone
    max_repeats: int = 12

    def __post_init__(self) -> None:
        """Raises ValueError for a plan that cannot decide anything."""
        if not (0 < self.threshold < 1 and 2 <= self.min_rounds <= self.max_rounds
                and self.time_cap_s > 0 and self.round_s > 0 and self.max_repeats >= 0):
            raise ValueError(f"Speed protocol plan out of range: {self}.")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """The answer for one pair. ``ratio_p50`` > 1 means the candidate is faster."""

    schema_version: int = 1
    verdict: str
    ratio_p50: float | None
    ci95: tuple[float, float] | None
    threshold: float
    rounds: int
    repeated_rounds: int
    load: dict[str, float | None]
    seconds: float
    baseline_p50_ms: float | None
    candidate_p50_ms: float | None
    why: str
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def faster(self) -> bool:
        """True only when the candidate was shown faster beyond the threshold."""
        return self.verdict == FASTER

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form; ``faster`` is included for readers that only need the decision."""
        d = dataclasses.asdict(self)
        d["ci95"] = list(self.ci95) if self.ci95 else None
        d["faster"] = self.faster
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """Inverse of :meth:`to_dict`."""
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        if values.get("ci95") is not None:
            values["ci95"] = tuple(values["ci95"])
        return cls(**values)

    def describe(self, *, short: bool = False) -> str:
        """This verdict's text (see :func:`describe`)."""
        return describe(self.to_dict(), short=short)

    def busy_warning(self) -> str | None:
        """The line to show a user when the machine disturbed the measurement."""
        if not self.repeated_rounds:
            return None
        return (f"this machine was busy: {self.repeated_rounds} of "
                f"{self.rounds + self.repeated_rounds} rounds repeated (other processes used "
                f"up to {self.load.get('max_other_cores') or 0:.2f} cores)")


def describe(speed: Mapping[str, Any], *, short: bool = False) -> str:
    """The one text of a speed verdict, from a :class:`Verdict`'s dict or the part deploy.json
    keeps: ``2.10x FP32 (95 % CI 1.99-2.29, faster)``, or for a table cell ``short``
    ``2.10x [1.99-2.29] faster``; the verdict alone (``not measured``, ``baseline``) when no
    ratio was measured."""
    ratio = speed.get("ratio_p50")
    if ratio is None:
        return str(speed.get("verdict") or "not measured")
    low, high = speed.get("ci95") or (ratio, ratio)
    if short:
        return f"{ratio:.2f}x [{low:.2f}-{high:.2f}] {speed['verdict']}"
    return f"{ratio:.2f}x FP32 (95 % CI {low:.2f}-{high:.2f}, {speed['verdict']})"


def interval(ratios: list[float], level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the median of paired per-round ratios."""
    values = np.asarray(ratios, dtype=np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(_BOOTSTRAP, len(values)))
    medians = np.median(values[idx], axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(medians, [tail, 100 - tail])
    return float(low), float(high)


def classify(ci: tuple[float, float], threshold: float) -> str | None:
    """``faster``/``slower`` when the interval clears the band, ``inconclusive`` when it lies
    inside it (no difference worth shipping for), None while it still straddles an edge."""
    low, high = ci
    if low > 1 + threshold:
        return FASTER
    if high < 1 / (1 + threshold):
        return SLOWER
    if low >= 1 / (1 + threshold) and high <= 1 + threshold:
        return INCONCLUSIVE
    return None


def compare(time_baseline: Callable[[], float], time_candidate: Callable[[], float], *,
            plan: Plan = Plan(), meter: LoadMeter | None = None,
            clock: Callable[[], float] = time.monotonic,
            settings: Mapping[str, Any] | None = None) -> Verdict:
    """Run rounds of (baseline, candidate), order flipped each round, until decided.

    ``time_baseline``/``time_candidate`` time one round of their model and return its p50 in
    ms (see :func:`round_timer`); scripted callables make the protocol testable.
    """
    meter = meter if meter is not None else LoadMeter(clock=clock)
    start = clock()
    pairs: list[tuple[float, float]] = []
    loads: list[float] = []
    repeated = 0
    decided: str | None = None
    while len(pairs) < plan.max_rounds and clock() - start < plan.time_cap_s:
        before = meter.sample()
        if len(pairs) % 2 == 0:
            base, cand = time_baseline(), time_candidate()
        else:
            cand, base = time_candidate(), time_baseline()
        others = meter.others(before, meter.sample())
        if others is not None:
            loads.append(others)
        if others is not None and others > plan.load_limit and repeated < plan.max_repeats:
            repeated += 1
            continue
        pairs.append((base, cand))
        if len(pairs) >= plan.min_rounds:
            decided = classify(interval([b / c for b, c in pairs]), plan.threshold)
            if decided is not None:
                break
    return _verdict(pairs, decided, repeated, loads, clock() - start, plan, dict(settings or {}))


def from_rounds(baseline_ms: list[float], candidate_ms: list[float], *,
                threshold: float = THRESHOLD) -> Verdict:
    """Judge rounds measured elsewhere (already interleaved, one pair per round) by the same
    rule; fewer than ``Plan().min_rounds`` rounds can still decide if the interval is clear.

    Raises:
        ValueError: rounds of different counts, or non-positive latencies.
    """
    pairs = list(zip(map(float, baseline_ms), map(float, candidate_ms), strict=True))
    if any(b <= 0 or c <= 0 for b, c in pairs):
        raise ValueError("Round latencies must be positive.")
    decided = (classify(interval([b / c for b, c in pairs]), threshold)
               if len(pairs) >= 2 else None)
    plan = Plan(threshold=threshold, min_rounds=2, max_rounds=max(2, len(pairs)))
    return _verdict(pairs, decided, 0, [], 0.0, plan, {"rounds_given": len(pairs)})


def _verdict(pairs: list[tuple[float, float]], decided: str | None, repeated: int,
             loads: list[float], seconds: float, plan: Plan, settings: dict[str, Any]
             ) -> Verdict:
    load = {"mean_other_cores": round(statistics.fmean(loads), 3) if loads else None,
            "max_other_cores": round(max(loads), 3) if loads else None,
            "limit_other_cores": plan.load_limit}
    if len(pairs) < 2:
        return Verdict(verdict=INCONCLUSIVE, ratio_p50=None, ci95=None, threshold=plan.threshold,
                       rounds=len(pairs), repeated_rounds=repeated, load=load, seconds=seconds,
                       baseline_p50_ms=None, candidate_p50_ms=None, settings=settings,
                       why=f"only {len(pairs)} undisturbed rounds fit in {plan.time_cap_s:g} s")
    ratios = [b / c for b, c in pairs]
    ratio, ci = statistics.median(ratios), interval(ratios)
    verdict = decided or INCONCLUSIVE
    band = f"±{plan.threshold:.0%}"
    said = {FASTER: f"faster beyond {band}", SLOWER: f"slower beyond {band}",
            INCONCLUSIVE: (f"within {band} of the baseline" if decided else
                           f"not decided within {plan.time_cap_s:g} s / {plan.max_rounds} "
                           "rounds")}[verdict]
    why = (f"{ratio:.2f}x the baseline's speed (95 % CI {ci[0]:.2f}-{ci[1]:.2f}, {len(pairs)} "
           f"interleaved rounds, {seconds:.1f} s): {said}")
    return Verdict(verdict=verdict, ratio_p50=ratio, ci95=ci, threshold=plan.threshold,
                   rounds=len(pairs), repeated_rounds=repeated, load=load, seconds=seconds,
                   baseline_p50_ms=statistics.median(b for b, _ in pairs),
                   candidate_p50_ms=statistics.median(c for _, c in pairs), why=why,
                   settings=settings)


def round_timer(run: Callable[[], object], calls: int) -> Callable[[], float]:
    """A callable that times ``calls`` runs and returns their median in ms."""
    def one_round() -> float:
        times = []
        for _ in range(calls):
            begin = time.perf_counter()
            run()
            times.append(time.perf_counter() - begin)
        return 1000.0 * statistics.median(times)
    return one_round


def calls_per_round(run: Callable[[], object], round_s: float, warmup: int = 3) -> int:
    """Warm ``run`` up (first runs allocate and pick kernels), then size a round to ``round_s``."""
    for _ in range(warmup):
        run()
    begin = time.perf_counter()
    run()
    once = max(time.perf_counter() - begin, 1e-6)
    return max(5, min(500, math.ceil(round_s / once)))


def measure_files(baseline: Path, candidate: Path, feeds: Mapping[str, np.ndarray], *,
                  backend: str = "onnxruntime", threads: int = 1, spin: bool = False,
                  plan: Plan = Plan(), hints: Mapping[str, str] | None = None) -> Verdict:
    """Open both model files with ``backend`` in this process and :func:`compare` them.

    ONNX Runtime's intra-op threads spin between runs unless ``spin`` is False (the default):
    on a shared machine spinning makes every multi-thread timing depend on the neighbours.
    """
    from frugalml.runtime.backends import get_backend
    from frugalml.runtime.backends.onnxruntime import SPINNING_HINT

    opener = get_backend(backend)
    opened = {**(hints or {}), SPINNING_HINT: "1" if spin else "0"}
    sessions = [opener.open(Path(p), threads=threads, hints=opened) for p in (baseline, candidate)]
    try:
        runs = [lambda s=s: s.run(feeds) for s in sessions]
        calls = max(calls_per_round(r, plan.round_s) for r in runs)
        timers = [round_timer(r, calls) for r in runs]
        return compare(*timers, plan=plan, settings={
            "backend": backend, "threads": threads, "spinning": spin, "calls_per_round": calls,
            "input_shapes": {k: list(v.shape) for k, v in feeds.items()},
            "time_cap_s": plan.time_cap_s, "load_limit_cores": plan.load_limit})
    finally:
        for session in sessions:
            session.close()


def measure_bundles(baseline: Path, candidate: Path, *, backend: str | None = None,
                    threads: int = 1, spin: bool = False, plan: Plan = Plan(),
                    workload: Workload | None = None) -> Verdict:
    """Verify and open both bundles, then :func:`compare` them on the candidate's samples at
    ``workload`` (default: its first sample, batch 1).

    Raises:
        BundleError: a bundle fails verification; InputError: their inputs differ.
    """
    from frugalml.errors import InputError
    from frugalml.runtime import load
    from frugalml.runtime.backends.onnxruntime import SPINNING_HINT
    from frugalml.runtime.bench_inputs import bench_feeds, sample_arrays

    hints = {SPINNING_HINT: "1" if spin else "0"}
    with load(baseline, backend=backend, threads=threads, hints=hints) as base, \
            load(candidate, backend=backend, threads=threads, hints=hints) as cand:
        names = ({i.name for i in base.manifest.inputs}, {i.name for i in cand.manifest.inputs})
        if names[0] != names[1]:
            raise InputError(f"{candidate} takes inputs {sorted(names[1])} and {baseline} "
                             f"{sorted(names[0])}: only bundles of one model can be compared.")
        feeds = bench_feeds(cand, "samples", batch=1)[0]
        if workload is not None and not workload.is_default:
            feeds = workload_feeds(sample_arrays(cand), cand.manifest.inputs, workload,
                                   cand.roles)
        runs = [lambda m=m: m.run(feeds) for m in (base, cand)]
        calls = max(calls_per_round(r, plan.round_s) for r in runs)
        return compare(*(round_timer(r, calls) for r in runs), plan=plan, settings={
            "backend": cand.backend, "threads": threads, "spinning": spin,
            "calls_per_round": calls, "baseline": str(baseline), "candidate": str(candidate),
            "input_shapes": {k: list(v.shape) for k, v in feeds.items()},
            "workload": (workload or Workload()).to_dict(),
            "time_cap_s": plan.time_cap_s, "load_limit_cores": plan.load_limit})


def measure_decoding(baseline: Path, candidate: Path, *, threads: int = 1,
                     plan: Plan = Plan(), prompt_tokens: int = 32, new_tokens: int = 16
                     ) -> Verdict:
    """:func:`compare` two decoder bundles by what a user waits for: the time of
    ``new_tokens`` cached decode steps after a ``prompt_tokens`` prompt (greedy, stop tokens
    off, the prefill not counted), in interleaved rounds.

    Raises:
        BundleError: a bundle fails verification or is no decoder.
    """
    from frugalml.runtime import load
    from frugalml.runtime.backends.onnxruntime import SPINNING_HINT
    from frugalml.runtime.decode_profile import prompt_ids

    hints = {SPINNING_HINT: "0"}
    with load(baseline, threads=threads, hints=hints) as base, \
            load(candidate, threads=threads, hints=hints) as cand:
        prompt = prompt_ids(cand, prompt_tokens)

        def timer(model: Any) -> Callable[[], float]:
            def one_round() -> float:
                steps = model.generate(prompt, max_new_tokens=new_tokens + 1,
                                       stop_token_ids=()).step_seconds
                return 1e3 * sum(steps[1:])
            return one_round

        return compare(timer(base), timer(cand), plan=plan, settings={
            "backend": cand.backend, "threads": threads, "spinning": False,
            "measures": f"{new_tokens} decode steps after a {prompt_tokens}-token prompt",
            "baseline": str(baseline), "candidate": str(candidate),
            "time_cap_s": plan.time_cap_s, "load_limit_cores": plan.load_limit})
