"""Run onnxruntime-genai 0.18's model builder under transformers 4.57 (bench/llm_decode.py).

The builder imports model classes this transformers does not have (Qwen3_5..., added later);
SmolLM2 (Llama) uses none of them, so each name its modules import from transformers that is
missing gets an empty stand-in class first. Arguments: the builder's own.
"""

from __future__ import annotations

import ast
import importlib.util
import runpy
import sys
from pathlib import Path

import transformers  # noqa: F401  (loaded before the lookups)

root = Path(importlib.util.find_spec("onnxruntime_genai").origin).parent / "models"
missing = set()
for source in root.rglob("*.py"):
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "transformers":
            for alias in node.names:
                try:  # exactly what the builder's import will do
                    exec(f"from transformers import {alias.name}", {})
                except ImportError:
                    missing.add(alias.name)
for name in missing:  # on the module as it is now: a lookup can replace it in sys.modules
    setattr(sys.modules["transformers"], name, type(name, (), {}))
sys.argv[0] = "builder"
runpy.run_module("onnxruntime_genai.models.builder", run_name="__main__")
