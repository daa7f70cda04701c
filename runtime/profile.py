"""Latency profiler: cold start, warm-up, timed runs on fresh inputs, streams, per-op view.

Run as ``python -m frugalml.runtime.profile BUNDLE`` so every profile starts in a fresh process
(cold start and peak RSS then mean what they say). Phases never mix: cold start (verify,
compile, first inference) is reported apart from steady state; per-op times come from a
separate profiled session so profiling overhead never touches the latency numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from frugalml.runtime.backends import names
from frugalml.runtime.backends.onnxruntime import SPINNING_HINT
from frugalml.runtime.host import read_host
from frugalml.runtime.stats import summarize

SCHEMA_VERSION = 2
OP_PROFILE_RUNS = 20


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """One bundle measured on one host with one backend; times in milliseconds.

    ``throughput_per_s`` and ``streams_per_s`` count items (calls x batch): the first is one
    stream's (``streams_per_s["1"]``, the same number), the second each stream count's. Alone,
    one stream's rate is the timed runs' (the same calls, back to back); threads calling at
    once are run only beside 2+ streams, so that every count in one profile is measured alike.
    """

    schema_version: int = SCHEMA_VERSION
    bundle: str
    backend: str
    host: dict[str, Any]
    settings: dict[str, Any]
    latency_ms: dict[str, Any]
    throughput_per_s: float
    streams_per_s: dict[str, float]
    cold_start_ms: dict[str, float]
    peak_rss_mib: float
    model_mib: float
    ops: dict[str, Any]
    # A model that carries state: steps/s of one stream and the real-time factor.
    stream: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: the profile was written by a newer frugalml.
        """
        if int(data.get("schema_version", 0)) > SCHEMA_VERSION:
            raise ValueError(f"Profile schema {data['schema_version']} is newer than "
                             f"{SCHEMA_VERSION}; upgrade frugalml.")
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)
                      if f.name in data or f.default is dataclasses.MISSING})


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    """How long to warm up and measure: by count, by duration, or both (whichever ends later
    for warm-up; whichever comes first for timed runs, with at least 2 runs)."""

    warmup_runs: int = 20
    warmup_s: float = 0.0
    runs: int | None = 200
    duration_s: float | None = None
    streams: tuple[int, ...] = (1,)
    inputs: str = "samples"
    batch: int = 1
    op_profile: bool = True
    # Seconds of audio one step of a streaming model takes in (None: read from a sample-rate
    # constant, see runtime.stream.chunk_seconds), for the real-time factor.
    chunk_seconds: float | None = None


def peak_rss_mib() -> float:
    """This process's peak resident memory.

    NOTE: /proc/self/status VmHWM belongs to the current address space; ``ru_maxrss`` would
    carry over the parent's peak across fork+exec and report a 1 GB toolchain as ours.
    """
    return _status_mib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _status_mib(key: str) -> float:
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def time_calls(call: Callable[[Any], object], feeds: Sequence[Any], *, runs: int | None,
               duration_s: float | None, clock: Callable[[], int] = time.perf_counter_ns
               ) -> list[int]:
    """Time ``call`` on the feeds in turn until ``runs`` calls or ``duration_s`` have passed."""
    if not runs and not duration_s:
        raise ValueError("Give a number of runs or a duration.")
    deadline = clock() + int(duration_s * 1e9) if duration_s else None
    times: list[int] = []
    while True:
        start = clock()
        call(feeds[len(times) % len(feeds)])
        end = clock()
        times.append(end - start)
        if runs and len(times) >= runs:
            return times
        if deadline is not None and end >= deadline and len(times) >= 2:
            return times


def warm_up(call: Callable[[Any], object], feeds: Sequence[Any], plan: Plan) -> int:
    """Run ``plan.warmup_runs`` calls and keep going until ``plan.warmup_s`` has passed."""
    done, deadline = 0, time.perf_counter() + plan.warmup_s
    while done < plan.warmup_runs or time.perf_counter() < deadline:
        call(feeds[done % len(feeds)])
        done += 1
    return done


def streams_throughput(call: Callable[[Any], object], feeds: Sequence[Any], streams: int,
                       seconds: float) -> float:
    """Inferences per second with ``streams`` threads calling at once, each on its own inputs."""
    counts = [0] * streams
    start = time.perf_counter()
    stop = start + seconds

    def worker(k: int) -> None:
        i = k
        while time.perf_counter() < stop:
            call(feeds[i % len(feeds)])
            i += streams
            counts[k] += 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - start)


def profile_bundle(bundle_dir: Path, *, plan: Plan = Plan(), backend: str | None = None,
                   threads: int = 0, spin: bool = False) -> Profile:
    """Measure cold start, steady-state latency, stream throughput and per-op time.

    ONNX Runtime's threads do not spin between runs unless ``spin`` (recorded either way).
    """
    from frugalml.runtime import load
    from frugalml.runtime.bench_inputs import bench_feeds
    from frugalml.runtime.opstats import summarize_ops

    rss_before = _status_mib("VmRSS")
    hints = {SPINNING_HINT: "1" if spin else "0"}
    model = load(bundle_dir, backend=backend, threads=threads, streams=max(plan.streams),
                 hints=hints)
    model_mib = _status_mib("VmRSS") - rss_before
    feeds = bench_feeds(model, plan.inputs, batch=plan.batch)
    first = time.perf_counter()
    model.run(feeds[0])
    stepping = model.roles.states
    cold = {**model.load_ms, "first_inference": (time.perf_counter() - first) * 1e3}
    cold["load"] = cold["verify"] + cold["compile"]
    warmed = warm_up(model.run, feeds, plan)
    latency = summarize(time_calls(model.run, feeds, runs=plan.runs, duration_s=plan.duration_s))
    stream = stream_rate(model, latency["p50"], plan.chunk_seconds) if stepping else None
    seconds = max(1.0, min(5.0, latency["mean"] * 200 / 1e3))
    # One stream alone is the timed runs' rate: a deploy's profiles took 1-5 s more each to
    # measure that rate again (5 s for a decoder's 47 ms prefill).
    streams = ({str(s): streams_throughput(model.run, feeds, s, seconds) for s in plan.streams}
               if max(plan.streams) > 1 else {"1": 1e3 / latency["mean"]})
    model.close()
    per_s = {k: v * plan.batch for k, v in streams.items()}  # items, not calls
    ops: dict[str, Any] = {}
    if plan.op_profile:
        with load(bundle_dir, backend=backend, threads=threads, profile=True,
                  hints=hints) as profiled:
            time_calls(profiled.run, feeds, runs=OP_PROFILE_RUNS, duration_s=None)
            ops = summarize_ops(profiled.session.op_events(), OP_PROFILE_RUNS)
    return Profile(
        bundle=model.manifest.name, backend=model.backend, host=read_host().to_dict(),
        settings={"threads": threads, "spinning": spin, "streams": list(plan.streams),
                  "warmup_runs": warmed,
                  "runs": int(latency["count"]), "duration_s": plan.duration_s,
                  "inputs": str(plan.inputs), "distinct_inputs": len(feeds), "batch": plan.batch,
                  "throughput_unit": f"items per second ({plan.batch} per call)",
                  "input_shapes": {n: list(v.shape) for n, v in feeds[0].items()}},
        latency_ms=latency, throughput_per_s=per_s.get("1", plan.batch * 1e3 / latency["mean"]),
        streams_per_s=per_s, cold_start_ms=cold,
        peak_rss_mib=peak_rss_mib(), model_mib=model_mib, ops=ops, stream=stream,
    )


def stream_rate(model: Any, step_ms: float, seconds: float | None) -> dict[str, Any]:
    """Steps per second of one stream at ``step_ms`` a step, and the real-time factor (audio
    seconds per compute second) when the chunk's duration is given or readable."""
    from frugalml.runtime.bench_inputs import sample_arrays
    from frugalml.runtime.stream import chunk_seconds

    signature = [(s.name, s.dtype, s.shape) for s in model.inputs]
    seconds = seconds or chunk_seconds(model.roles, signature, sample_arrays(model))
    return {"steps_per_s": 1e3 / step_ms, "chunk_seconds": seconds,
            "real_time_factor": None if seconds is None else seconds * 1e3 / step_ms}


def profile_in_fresh_process(bundle_dir: Path, options: Sequence[str] = (), *,
                             module: str = "frugalml.runtime.profile") -> dict[str, Any]:
    """Profile in a new interpreter (``options`` as for ``python -m frugalml.runtime.profile``,
    or ``module``'s, e.g. the decode profiler), so cold start and peak RSS are the bundle's
    own, not the caller's.

    Raises:
        FrugalError: the profiler's own typed error (e.g. TargetError for a host that cannot
            run the bundle); BundleError: the profiler failed otherwise (stderr in the message).
    """
    import subprocess

    from frugalml import errors

    cmd = [sys.executable, "-m", module, str(bundle_dir), *options]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        _, marker, said = done.stderr.partition("error: ")
        kind, _, message = said.partition(": ")
        error = getattr(errors, kind, None)
        if marker and isinstance(error, type) and issubclass(error, errors.FrugalError):
            raise error(message.strip())
        raise errors.BundleError(f"Profiling {bundle_dir} failed:\n"
                                 f"{done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main(argv: list[str] | None = None) -> int:
    """Profile a bundle in this process and print (or save) the Profile as JSON."""
    parser = argparse.ArgumentParser(prog="python -m frugalml.runtime.profile")
    add_arguments(parser)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    from frugalml.errors import FrugalError

    try:
        result = profile_bundle(args.bundle, plan=plan_from(args), backend=args.backend,
                                threads=args.threads, spin=args.spin)
    except FrugalError as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    text = json.dumps(result.to_dict(), indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    else:
        print(text)
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The profiler's options, shared by ``frugal bench`` and ``python -m``."""
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--backend", choices=names(),
                        help="default: the bundle's own")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0: auto)")
    parser.add_argument("--streams", type=int, default=1,
                        help="measure throughput for 1..N concurrent streams")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--duration", type=float, help="time runs for S seconds instead")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up runs")
    parser.add_argument("--warmup-seconds", type=float, default=0.0)
    parser.add_argument("--inputs", default="samples",
                        help="'samples' (bundle's), 'synthetic', or an .npz of real inputs")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--no-ops", action="store_true", help="skip the per-op profile")
    parser.add_argument("--spin", action="store_true",
                        help="let ONNX Runtime's threads spin between runs (off by default)")
    parser.add_argument("--chunk-seconds", type=float, help="streaming models: seconds of audio "
                        "one step takes in, for the real-time factor (default: read from a "
                        "sample-rate constant)")


def plan_from(args: argparse.Namespace) -> Plan:
    """Build a :class:`Plan` from parsed ``add_arguments`` options."""
    if args.streams < 1 or args.batch < 1 or args.runs < 2:
        raise SystemExit("--streams and --batch must be >= 1 and --runs >= 2")
    return Plan(warmup_runs=args.warmup, warmup_s=args.warmup_seconds,
                runs=None if args.duration else args.runs, duration_s=args.duration,
                streams=tuple(range(1, args.streams + 1)), inputs=args.inputs,
                batch=args.batch, op_profile=not args.no_ops,
                chunk_seconds=getattr(args, "chunk_seconds", None))


if __name__ == "__main__":
    raise SystemExit(main())
