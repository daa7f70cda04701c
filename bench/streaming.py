"""`frugal deploy` of the tests' streaming voice-activity detector (a GRU carrying state,
tests/streaming.py), every candidate that applies, on its synthetic streams and on spoken
recordings (espeak-ng, scripts/setup-speech.sh): per candidate the frame and segment agreement
with FP32 over whole streams, the end-of-stream state cosine, size and speed; then steps/s and
the real-time factor of FP32 and the shipped bundle. Prints Markdown with the host.

Usage: python bench/streaming.py [--out bench-streaming] [--candidates all] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HEADER = ("| data | candidate | size KB | frame agreement | segment agreement | state cosine "
          "| speed vs FP32 | budget |\n|---|---|---|---|---|---|---|---|")


def _rows(label: str, record: dict) -> list[str]:
    (target,) = record["targets"].values()
    rows = []
    for c in target["candidates"]:
        acc, speed = c.get("accuracy") or {}, c.get("speed") or {}
        ratio = speed.get("ratio_p50")
        ci = speed.get("ci95") or [None, None]
        timing = "baseline" if c["name"] == "fp32" else (
            f"{ratio:.2f}x [{ci[0]:.2f}, {ci[1]:.2f}] {speed.get('verdict')}" if ratio else
            str(speed.get("verdict")))
        rows.append(f"| {label} | {c['name']} | {c.get('size_bytes', 0) / 1024:.0f} | "
                    f"{acc.get('value', float('nan')):.4f} | "
                    f"{acc.get('segment_agreement_with_fp32', 1.0):.4f} | "
                    f"{acc.get('state_end_cosine', 1.0):.6f} | {timing} | "
                    f"{'met' if acc.get('budget_met') else 'missed'} |")
    return rows


def main() -> None:
    """Train and export the detector, deploy it on both data sets, print the tables."""
    from frugalml.cli import main as frugal
    from frugalml.runtime.host import describe_host, read_host
    from tests.streaming import ROLE_FLAGS, spoken_recordings, streams_file, tiny_vad

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("bench-streaming"))
    parser.add_argument("--candidates", default="all")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    model = tiny_vad(args.out / "model")
    data = {"synthetic": (streams_file(args.out / "model"), ("--num", "480")),
            "spoken": (spoken_recordings(args.out / "speech"),
                       ("--num", "300", "--chunk", "256", "--sample-rate", "16000"))}
    print(f"host: {describe_host(read_host().to_dict())}; threads {args.threads}\n\n{HEADER}")
    shipped = {}
    for label, (path, flags) in data.items():
        out = args.out / label
        code = frugal(["deploy", str(model), str(path), *ROLE_FLAGS, *flags, "--candidates",
                       args.candidates, "--threads", str(args.threads), "--out", str(out),
                       "--quiet"])
        if code:
            raise SystemExit(code)
        record = json.loads((out / "deploy.json").read_text())
        print("\n".join(_rows(label, record)))
        (target,) = record["targets"].values()
        shipped[label] = target
    for label, target in shipped.items():
        for name, profile in target.get("profiles", {}).items():
            stream = profile.get("stream") or {}
            print(f"\n{label}: {name} {stream.get('steps_per_s', 0):.0f} steps/s (p50), "
                  f"real-time factor {stream.get('real_time_factor') or 0:.0f}x; ships "
                  f"{target['shipped']}: {target['why'][:200]}")


if __name__ == "__main__":
    main()
