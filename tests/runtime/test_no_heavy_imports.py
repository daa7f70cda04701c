"""The runtime must run with numpy and onnxruntime only: no toolchain module may be imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("torch", "onnx", "nncf", "optimum", "transformers", "sklearn", "rich")

SCRIPT = """
import json, sys
import numpy as np
import frugalml.runtime as rt
model = rt.load(sys.argv[1])
with np.load(model.bundle_dir / "samples.npz") as d:
    feeds = {n: d["input." + n] for n in model.input_names}
model.run(feeds)
model.self_check()
from frugalml.runtime.profile import Plan, profile_bundle
profile_bundle(sys.argv[1], plan=Plan(runs=3, warmup_runs=1, streams=(1, 2)))
from frugalml.cli import _parser
_parser()
print(json.dumps(sorted(m.split(".")[0] for m in sys.modules)))
"""


def test_runtime_imports_no_toolchain(int8_bundle: Path) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(int8_bundle)],
                          capture_output=True, text=True, check=True)
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "onnxruntime" in loaded and "numpy" in loaded
    assert not loaded & set(HEAVY), f"runtime pulled in {sorted(loaded & set(HEAVY))}"
