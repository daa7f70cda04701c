"""One output convention for every bench script: a Markdown table on stdout under a line that
names the host (CPU, family/model, what its flags prove, cores, threads), and with ``--json
PATH`` the same rows and the whole host record as JSON, written atomically.

A number quoted from bench/ is only as good as the machine it names: hosts differ between
sessions (AVX2-only EPYC, AVX-512 VNNI and AMX Xeons), so no table leaves without its host.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from frugalml.core.records import write_json_atomic
from frugalml.runtime.host import describe_host, read_host


def add_json_option(parser: argparse.ArgumentParser) -> None:
    """``--json PATH``: where the script writes its rows and host as JSON."""
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write the rows and the host record here as JSON")


def host_line(threads: int | None = None) -> str:
    """``Host: <CPU> (family/model; flags), N logical cores[, T thread(s)]``."""
    host = read_host()
    line = f"Host: {describe_host(host.to_dict())}, {host.logical_cores} logical cores"
    return line + (f", {threads} thread(s)" if threads is not None else "")


def markdown(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table of ``rows`` (dicts) under ``columns`` (their keys); floats at 4
    significant digits, missing cells as ``-``."""
    def cell(value: Any) -> str:
        if value is None:
            return "-"
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        return text.replace("|", "/")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def emit(title: str, columns: Sequence[str], rows: Sequence[Mapping[str, Any]], *,
         json_path: Path | None, threads: int | None = None, **extra: Any) -> None:
    """Print ``title``, the host line and the table; write them (and ``extra``) to
    ``json_path`` when given."""
    print(f"\n## {title}\n\n{host_line(threads)}\n\n{markdown(columns, rows)}\n", flush=True)
    if json_path is not None:
        write_json(json_path, {"title": title, "threads": threads, "rows": list(rows), **extra})


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    """``payload`` with the host record, written atomically to ``path``."""
    write_json_atomic(Path(path), {"host": read_host().to_dict(), **payload})


def accuracy_cells(acc: dict[str, Any]) -> str:
    """'metric FP32 -> quantized | delta | agreement or cosine' cells."""
    metric = next(iter(acc["reference"]))
    cand = acc["candidate"]
    cells = f"{metric} {acc['reference'][metric]:.4f} -> {cand[metric]:.4f}"
    if "perplexity_increase_pct" in cand:
        return (f"{cells} | {cand['perplexity_increase_pct']:+.1f} % | "
                f"token cos {cand['mean_token_cosine_to_fp32']:.4f}")
    drop = next(v for k, v in cand.items() if k.endswith("_drop_points"))
    second = cand.get("top1_agreement_with_fp32", cand.get("mean_cosine_to_fp32"))
    return f"{cells} | {-drop:+.2f} pt | {second:.4f}"
