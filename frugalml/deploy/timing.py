"""Measurements a deploy makes on targets this host runs: every in-budget candidate against
FP32 by the speed protocol (the only thing that decides "faster"), and a fresh-process profile
of the shipped and FP32 bundles for the report (latency, cold start, RSS, per-op time; for a
decoder also its generation: time to first token, decode tokens/s, KV cache)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from frugalml.deploy.result import CandidateResult, Speed
from frugalml.errors import FrugalError
from frugalml.runtime.bundle import read_manifest
from frugalml.runtime.host import describe_host, read_host
from frugalml.runtime.profile import profile_in_fresh_process
from frugalml.runtime.speed import Plan, measure_bundles, measure_decoding
from frugalml.targets.detect import status
from frugalml.targets.support import Probes, Runs


def native_here(target: Any) -> bool:
    """True when this host runs ``target`` natively (so its speed can be measured here)."""
    return status(target, read_host(), Probes.read()).runs is Runs.NATIVE


def measured_on(host: Any = None) -> str:
    """Where the verdicts were measured, and what the CPU's INT8 support implies: the same
    model's INT8 speed-up depends on the microarchitecture, not only the ISA."""
    host = host or read_host()
    text = f"measured on {describe_host(host.to_dict())}"
    if not {"avx512_vnni", "avx_vnni"} & set(host.flags) and host.machine == "x86_64":
        text += (", which has no VNNI: its INT8 dot product (vpmaddubsw + vpmaddwd) is at best "
                 "about 1.33x the FP32 FMA peak, and whether quantizing activations leaves any "
                 "of it depends on the microarchitecture (measured: 0.9x on Zen 2, 1.5x on "
                 "Zen 3 for the same model; MiniLM's static INT8 0.74x on a Zen 1)")
    return text


def time_candidates(run: Any, fp32: CandidateResult, entries: list[CandidateResult]) -> None:
    """Fill each in-budget candidate's ``speed`` with its verdict against FP32.

    Candidates run interleaved with FP32 in this process at the deploy's threads, spinning
    off, until the 95 % interval decides or ``speed_cap_s``. When the time budget is gone the
    rest are left "not measured" (and so cannot ship), with the reason.
    """
    if fp32.bundle is None:
        return
    for entry in entries:
        if not entry.in_budget:
            continue
        if run.time_left() <= 0:
            entry.speed = Speed.not_measured("not timed: the time budget ran out")
            continue
        with run.steps.step(f"{entry.name}: time against FP32 (speed protocol)"):
            try:
                verdict = against_fp32(Path(fp32.bundle), Path(str(entry.bundle)),
                                       threads=run.options.threads,
                                       time_cap_s=run.options.speed_cap_s,
                                       workload=run.options.workload)
            except FrugalError as e:
                entry.speed = Speed.not_measured(f"not timed: {type(e).__name__}: {e}")
                continue
        entry.speed = Speed.of(verdict)
        run.steps.note(f"  {entry.name}: {verdict.why}"
                       + (f" ({verdict.busy_warning()})" if verdict.busy_warning() else ""))
        if not run.options.workload.is_default:
            entry.speed_at_batch_1 = _at_batch_1(run, fp32, entry)


def _at_batch_1(run: Any, fp32: CandidateResult, entry: CandidateResult) -> Speed:
    """The same candidate timed at batch 1 on the data's shapes, for the report's ranking by
    workload (the choice is made at the user's workload; this only says whether batch 1
    would have ranked the candidates otherwise)."""
    with run.steps.step(f"{entry.name}: time at batch 1 too (ranking by workload)"):
        try:
            return Speed.of(against_fp32(
                Path(str(fp32.bundle)), Path(str(entry.bundle)), threads=run.options.threads,
                time_cap_s=run.options.speed_cap_s))
        except FrugalError as e:
            return Speed.not_measured(f"not timed: {type(e).__name__}: {e}")


def workload_ranking(entries: list[CandidateResult], workload: Any) -> dict[str, Any] | None:
    """The fastest candidate at the user's workload and at batch 1, when both were timed:
    on an AMX Xeon MiniLM's fastest was int8-dynamic-fused at batch 1 (2.5x) and
    bf16-openvino at 8 x 128 (4.3x), so a ranking measured at one shape is not another's."""
    timed = [(e.name, e.speed.ratio_p50, e.speed_at_batch_1.ratio_p50) for e in entries
             if e.speed.ratio_p50 and e.speed_at_batch_1 and e.speed_at_batch_1.ratio_p50]
    if not timed:
        return None
    here = max(timed, key=lambda t: t[1])
    one = max(timed, key=lambda t: t[2])
    return {"workload": workload.describe(), "fastest": here[0], "ratio_p50": here[1],
            "fastest_at_batch_1": one[0], "ratio_p50_at_batch_1": one[2],
            "differs": here[0] != one[0]}


def against_fp32(fp32: Path, bundle: Path, *, threads: int, time_cap_s: float,
                 workload: Any = None) -> Any:
    """The speed protocol's Verdict for ``bundle`` against its FP32 sibling: both in this
    process, interleaved, spinning off, until the 95 % interval decides or ``time_cap_s``, at
    the user's ``workload`` (a :class:`~frugalml.runtime.workload.Workload`; default batch 1);
    decoders by the time of their cached decode steps. Deploy and the sweep's device nodes
    both judge "faster" by this call."""
    plan = Plan(time_cap_s=time_cap_s)
    if read_manifest(bundle).generation is not None:  # a decoder: judged by decode speed
        return measure_decoding(fp32, bundle, threads=threads or 1, plan=plan)
    return measure_bundles(fp32, bundle, threads=threads, plan=plan, workload=workload)


def fresh_profile(bundle: Path, *, runs: int, threads: int, warmup: int | None = None
                  ) -> dict[str, Any]:
    """A Profile of ``bundle`` measured in a fresh process (cold start and RSS are its own)."""
    extra = [] if warmup is None else ["--warmup", str(warmup)]
    return profile_in_fresh_process(bundle, ["--runs", str(runs), "--threads", str(threads),
                                             *extra])


def decode_options(max_positions: int) -> list[str]:
    """A decoder's generation profile in a deploy: the prompt and length `frugal bench
    --generate` defaults to (128 + 128 tokens), two timed generations after a warm-up; a model
    with fewer positions gets half of them as prompt and the rest as new tokens (a 128-position
    model failed its profile with 128 + 128)."""
    prompt = min(128, max_positions // 2)
    new = min(128, max_positions - prompt)
    return ["--prompt-tokens", str(prompt), "--new-tokens", str(new), "--generations", "2"]


def profile_pair(run: Any, fp32: CandidateResult, chosen: CandidateResult, *,
                 decoding: bool = False) -> dict[str, Any]:
    """Profiles of FP32 and the shipped bundle, each in a fresh process, for the report;
    with ``decoding``, their generation profiles instead (a decoder's prefill latency says
    little of how fast it serves tokens)."""
    profiles = {}
    for entry in {e.name: e for e in (fp32, chosen)}.values():
        if entry.bundle is None:
            continue
        what = "generation" if decoding else "profile"
        if run.time_left() <= 0:
            run.steps.note(f"  {what} of {entry.name}: not measured, the time budget ran out")
            continue
        with run.steps.step(f"{entry.name}: {what} in a fresh process"):
            try:
                profiles[entry.name] = profile_in_fresh_process(
                    Path(entry.bundle), [*decode_options(run.model.decoder["max_positions"]),
                                         "--threads", str(run.options.threads or 1)],
                    module="frugalml.runtime.decode_profile") if decoding else fresh_profile(
                    Path(entry.bundle), runs=run.options.profile_runs,
                    threads=run.options.threads)
            except FrugalError as e:
                run.steps.note(f"  {what} of {entry.name} failed: {e}")
    return profiles
