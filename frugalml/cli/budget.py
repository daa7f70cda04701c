"""One set of budget flags for `quantize`, `diagnose`, `deploy` and `demo`: the limits a
quantized model must meet against FP32. Older spellings (`--budget`, `--max-ppl-increase`)
still work and say their new name."""

from __future__ import annotations

import argparse
import sys
from typing import Any

# flag dest -> the Budget fields it sets (--min-agreement: top-1, per-position, detection and
# a streaming detector's frame agreement)
FIELDS = {"max_drop": ("max_accuracy_drop_points",),
          "min_cosine": ("min_mean_cosine",),
          "min_agreement": ("min_top1_agreement", "min_detection_agreement",
                            "min_frame_agreement"),
          "max_ppl_rise": ("max_perplexity_increase_pct",),
          "max_size_ratio": ("max_size_ratio",)}
ALIASES = {"--budget": "--max-drop", "--max-ppl-increase": "--max-ppl-rise"}


class _Renamed(argparse.Action):
    """Store into the new flag's place and say the new name on stderr."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print(f"note: {option_string} is now {ALIASES[str(option_string)]}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_budget_arguments(p: argparse.ArgumentParser) -> None:
    """The budget flags (defaults: each recipe's own budget)."""
    p.add_argument("--max-drop", type=float, help="budget: most drop of the task metric, in "
                   "points (default 1.0; 1.5 for w4a8)")
    p.add_argument("--min-cosine", type=float, help="budget: least mean cosine to FP32 of "
                   "every output and output part (default 0.99; classifiers: unset)")
    p.add_argument("--min-agreement", type=float, help="budget: least top-1, per-position "
                   "argmax, detection or streaming frame agreement with FP32 (default: unset / "
                   "0.95 / 0.99 frames)")
    p.add_argument("--max-ppl-rise", type=float, help="budget: most perplexity rise, %%")
    p.add_argument("--max-size-ratio", type=float, help="budget: most size vs FP32")
    for old, new in ALIASES.items():
        p.add_argument(old, dest=new.removeprefix("--").replace("-", "_"), type=float,
                       action=_Renamed, help=f"old spelling of {new}")


def budget_from(args: argparse.Namespace) -> dict[str, float]:
    """Budget fields the user set (the rest keep the recipe's)."""
    return {field: getattr(args, flag) for flag, fields in FIELDS.items() for field in fields
            if getattr(args, flag, None) is not None}
