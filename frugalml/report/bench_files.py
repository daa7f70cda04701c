"""Write a bench report's files (JSON, Markdown, HTML): the one module that knows both the
Markdown (:mod:`.bench`) and the HTML (:mod:`.bench_html`) renderings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from frugalml.core.records import write_json_atomic, write_text_atomic
from frugalml.report.bench import render_bench_markdown
from frugalml.report.bench_html import render_bench_html

FORMATS = ("json", "md", "html")


def write_bench_report(report: dict[str, Any], out_dir: Path,
                       formats: Sequence[str] = FORMATS) -> dict[str, Path]:
    """Write the chosen formats into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    if "json" in formats:
        write_json_atomic(out_dir / "report.json", report)
        written["json"] = out_dir / "report.json"
    if "md" in formats:
        write_text_atomic(out_dir / "report.md", render_bench_markdown(report))
        written["md"] = out_dir / "report.md"
    if "html" in formats:
        write_text_atomic(out_dir / "report.html", render_bench_html(report))
        written["html"] = out_dir / "report.html"
    return written
