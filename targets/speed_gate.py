"""The speed gate: a quantized artifact becomes a target's default only when the speed protocol
(``frugalml.runtime.speed``) shows it faster than FP32 on that target beyond the threshold.

INT8 is often slower than FP32: unfused Q/DQ pairs around small layers, a CPU without VNNI,
dynamic quantization on a CNN. Peers ship it anyway. Whether it is faster depends on the
microarchitecture, not only the ISA (the same AVX2 INT8 model ran 0.9x FP32 on a Zen 2 and
1.5x on a Zen 3), so the explanation names the CPU it was measured on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from frugalml.errors import FrugalError, TargetError
from frugalml.runtime.host import NO_CPUFREQ, PERFORMANCE, Host, describe_host, read_host
from frugalml.runtime.speed import FASTER, Plan, Verdict, measure_files


def explain(verdict: Verdict, host: Host | None = None, *, quantized: str = "the quantized model"
            ) -> Verdict:
    """The verdict with a ``why`` a user reads: what ran, on which CPU, and what ships."""
    host = host or read_host()
    where = describe_host(host.to_dict())
    ships = ("it ships as the default" if verdict.verdict == FASTER else
             "FP32 stays the default")
    why = f"on {where}, {quantized} ran at {verdict.why}; {ships}"
    if verdict.busy_warning():
        why += f" ({verdict.busy_warning()})"
    if host.governor not in (PERFORMANCE, NO_CPUFREQ):
        why += (f"; the cpufreq governor is {host.governor!r}: set 'performance' for "
                "repeatable timings")
    return dataclasses.replace(verdict, why=why)


def measure_speed(fp32: Path, quantized: Path, feeds: Mapping[str, np.ndarray], *,
                  backend: str = "onnxruntime", threads: int = 1, plan: Plan | None = None,
                  spin: bool = False, host: Host | None = None) -> Verdict:
    """Time both model files with the speed protocol (FP32 is the baseline) and explain it.

    Raises:
        TargetError: the backend cannot open a model, or the feeds do not fit it.
    """
    try:
        verdict = measure_files(Path(fp32), Path(quantized), feeds, backend=backend,
                                threads=threads, spin=spin, plan=plan or Plan())
    except FrugalError:
        raise
    except Exception as e:  # backends raise their own untyped errors (ORT's InvalidArgument)
        raise TargetError(f"The speed gate could not time {fp32} against {quantized}: "
                          f"{str(e)[:300]}") from e
    return explain(verdict, host)
