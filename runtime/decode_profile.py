"""`frugal bench BUNDLE --generate`: how fast a decoder bundle serves tokens on this host.

A short warm-up generation (the prefill and the first steps), then ``runs`` greedy
generations of exactly ``new_tokens`` tokens after a ``prompt_tokens``-token prompt (stop
tokens off, so every run does the same work).
Reported: time to first token (the prefill), decode tokens/s (the cached steps), per-token
p50/p99, peak RSS and the KV cache's bytes at the end. Decoding reads every weight once per
token, so on a CPU its speed is bounded by memory bandwidth: the weight bytes read per token
are reported beside it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.runtime.backends import names
from frugalml.runtime.prompt import special_prefix, tokenizers_encode

SCHEMA_VERSION = 1
# New tokens of the warm-up: its prefill and first cached steps touch every kernel the timed
# generations run; a full-length warm-up added a third to a deploy's generation profiles.
WARMUP_TOKENS = 8
# Running English for the prompt (repeated to length): real tokens, not random ids.
PROMPT_TEXT = ("It was the best of times, it was the worst of times, it was the age of wisdom, "
               "it was the age of foolishness, it was the epoch of belief, it was the epoch of "
               "incredulity, it was the season of Light, it was the season of Darkness. ")


def prompt_ids(model: Any, count: int) -> list[int]:
    """``count`` token ids of running English through the bundle's tokenizer."""
    encode = tokenizers_encode(model.tokenizer())
    prefix, body = list(special_prefix(encode)), list(encode(PROMPT_TEXT, False))
    return (prefix + body * (count // len(body) + 1))[:count]


def profile_decoding(bundle: Path, *, prompt_tokens: int = 128, new_tokens: int = 128,
                     threads: int = 1, runs: int = 3, backend: str | None = None
                     ) -> dict[str, Any]:
    """Measure ``bundle``'s generation speed here (see the module docstring).

    Raises:
        BundleError: the bundle is not a decoder; InputError: prompt and new tokens exceed
            the model's position limit.
    """
    from frugalml.errors import InputError
    from frugalml.runtime import load
    from frugalml.runtime.host import read_host
    from frugalml.runtime.profile import peak_rss_mib

    if runs < 1 or prompt_tokens < 1 or new_tokens < 2:
        raise InputError("--runs and --prompt-tokens must be >= 1 and --new-tokens >= 2.")
    with load(bundle, threads=threads, backend=backend) as model:
        layout = model.decoder_layout()
        if prompt_tokens + new_tokens > layout.max_positions:
            raise InputError(f"{prompt_tokens} prompt + {new_tokens} new tokens exceed the "
                             f"model's {layout.max_positions} positions; ask for fewer.")
        prompt = prompt_ids(model, prompt_tokens)
        model.generate(prompt, max_new_tokens=min(new_tokens, WARMUP_TOKENS), stop_token_ids=())
        firsts, steps = [], []
        for _ in range(runs):
            result = model.generate(prompt, max_new_tokens=new_tokens, stop_token_ids=())
            firsts.append(result.step_seconds[0])
            steps.extend(result.step_seconds[1:])
        weights = sum(p.stat().st_size for p in model.bundle_dir.iterdir()
                      if p.name == model.manifest.model_file)
    decode = np.asarray(steps)
    return {"schema_version": SCHEMA_VERSION, "kind": "decode", "bundle": str(bundle),
            "precision": model.manifest.precision, "host": read_host().to_dict(),
            "settings": {"threads": threads, "prompt_tokens": prompt_tokens,
                         "new_tokens": new_tokens, "runs": runs, "backend": model.backend,
                         "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
            "first_token_ms": {"p50": 1e3 * float(np.median(firsts)),
                               "max": 1e3 * float(np.max(firsts))},
            "decode_tokens_per_s": float(len(decode) / decode.sum()),
            "token_ms": {"p50": 1e3 * float(np.percentile(decode, 50)),
                         "p99": 1e3 * float(np.percentile(decode, 99))},
            "peak_rss_mib": peak_rss_mib(),
            "kv_cache_bytes": layout.bytes_per_token() * (prompt_tokens + new_tokens),
            "model_bytes": weights}


def main(argv: list[str] | None = None) -> int:
    """Profile a decoder bundle's generation in this process and print the record as JSON
    (what a deploy runs in a fresh process, so peak RSS is the bundle's own)."""
    import argparse
    import json
    import sys

    from frugalml.errors import FrugalError

    parser = argparse.ArgumentParser(prog="python -m frugalml.runtime.decode_profile")
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--backend", choices=names())
    args = parser.parse_args(argv)
    try:
        result = profile_decoding(args.bundle, prompt_tokens=args.prompt_tokens,
                                  new_tokens=args.new_tokens, threads=args.threads,
                                  runs=args.generations, backend=args.backend)
    except FrugalError as e:
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
