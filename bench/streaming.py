"""`frugal deploy` of the tests' streaming voice-activity detector (a GRU carrying state,
bench/_streaming.py), every candidate that applies, on its synthetic streams and on spoken
recordings (espeak-ng, scripts/setup-speech.sh): per candidate the frame and segment agreement
with FP32 over whole streams, the end-of-stream state cosine, size and speed; then steps/s and
the real-time factor of FP32 and the shipped bundle. Prints Markdown with the host.

Usage: python bench/streaming.py [--out bench-streaming] [--candidates all] [--threads 1]
       [--json PATH]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _report import add_json_option, emit, markdown

COLUMNS = ("data", "candidate", "size KB", "frame agreement", "segment agreement",
           "state cosine", "speed vs FP32", "budget")


def _rows(label: str, record: dict) -> list[dict]:
    """One table row per candidate of a deploy.json."""
    from frugalml.runtime.speed import describe

    (target,) = record["targets"].values()
    rows = []
    for c in target["candidates"]:
        acc = c.get("accuracy") or {}
        rows.append({"data": label, "candidate": c["name"],
                     "size KB": round(c.get("size_bytes", 0) / 1024),
                     "frame agreement": acc.get("value"),
                     "segment agreement": acc.get("segment_agreement_with_fp32", 1.0),
                     "state cosine": f"{acc.get('state_end_cosine', 1.0):.6f}",
                     "speed vs FP32": "baseline" if c["name"] == "fp32" else describe(
                         c.get("speed") or {}, short=True),
                     "budget": "met" if acc.get("budget_met") else "missed"})
    return rows


def main() -> None:
    """Train and export the detector, deploy it on both data sets, print the tables."""
    from _streaming import ROLE_FLAGS, spoken_recordings, streams_file, tiny_vad

    from frugalml.cli import main as frugal

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench-streaming"))
    parser.add_argument("--candidates", default="all")
    parser.add_argument("--threads", type=int, default=1)
    add_json_option(parser)
    args = parser.parse_args()
    model = tiny_vad(args.out / "model")
    data = {"synthetic": (streams_file(args.out / "model"), ("--num", "480")),
            "spoken": (spoken_recordings(args.out / "speech"),
                       ("--num", "300", "--chunk", "256", "--sample-rate", "16000"))}
    rows, shipped = [], {}
    for label, (path, flags) in data.items():
        out = args.out / label
        code = frugal(["deploy", str(model), str(path), *ROLE_FLAGS, *flags, "--candidates",
                       args.candidates, "--threads", str(args.threads), "--out", str(out),
                       "--quiet"])
        if code:
            raise SystemExit(code)
        record = json.loads((out / "deploy.json").read_text())
        rows += _rows(label, record)
        (target,) = record["targets"].values()
        shipped[label] = target
    streams = [{"data": label, "bundle": name, "ships": target["shipped"],
                "steps/s p50": round((profile.get("stream") or {}).get("steps_per_s", 0)),
                "real-time factor": (profile.get("stream") or {}).get("real_time_factor")}
               for label, target in shipped.items()
               for name, profile in target.get("profiles", {}).items()]
    print(markdown(COLUMNS, rows))
    emit("streaming detector: steps/s and real-time factor", tuple(streams[0]) if streams
         else ("data",), streams, json_path=args.json, threads=args.threads, candidates=rows,
         why={label: t["why"] for label, t in shipped.items()})


if __name__ == "__main__":
    main()
