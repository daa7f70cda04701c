"""`frugal generate`: text from a decoder bundle, printed as it is produced (thin over
``Model.stream``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def cmd_generate(args: argparse.Namespace) -> None:
    import frugalml.runtime as rt
    from frugalml.runtime.generate import Generation, Sampling

    sampling = Sampling(max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                        top_k=args.top_k, top_p=args.top_p, seed=args.seed)
    with rt.load(args.bundle, threads=args.threads) as model:
        prompt_tokens = len(model.tokenizer().encode(args.prompt).ids)
        tokens = []
        for token in model.stream(args.prompt, sampling):
            tokens.append(token)
            if not args.json:
                sys.stdout.write(token.text)
                sys.stdout.flush()
        limit = min(sampling.max_new_tokens,
                    model.decoder_layout().max_positions - prompt_tokens)
        result = Generation(
            text=model.tokenizer().decode([t.id for t in tokens], skip_special_tokens=True),
            token_ids=tuple(t.id for t in tokens), prompt_tokens=prompt_tokens,
            finish="length" if len(tokens) >= limit else "stop",
            step_seconds=tuple(t.seconds for t in tokens))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return
    speed = result.decode_tokens_per_s
    print(f"\n[{len(tokens)} tokens ({result.finish}); first token "
          f"{1e3 * (result.first_token_s or 0):.0f} ms"
          + (f", then {speed:.1f} tokens/s" if speed else "") + "]", file=sys.stderr)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `frugal generate`."""
    p.add_argument("bundle", type=Path)
    p.add_argument("--prompt", required=True, help="the text to continue")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.0, help="0 (default): greedy")
    p.add_argument("--top-k", type=int, default=0, help="sample from the K best (0: all)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass")
    p.add_argument("--seed", type=int, help="makes sampling reproducible")
    p.add_argument("--threads", type=int, default=0, help="intra-op threads (0: auto)")
