"""Write a reproduction of a failed export: the export call, its inputs and the weights.

A user who hits an exporter bug needs something to attach to an upstream report or to bisect
with; this writes exactly the call frugalml made, runnable without frugalml.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

SCRIPT = "repro_export.py"
_TEMPLATE = '''"""Reproduce frugalml's failed ONNX export of {qualname}.

Run from this directory: python {script}
"""
import numpy as np
import torch

{construct}
model.eval()
inputs = np.load("inputs.npz", allow_pickle=False)
args = tuple(torch.from_numpy(inputs[name]) for name in {input_names!r})
torch.onnx.export(
    model, args, "repro.onnx", input_names={input_names!r}, output_names={output_names!r},
    opset_version={opset}, dynamo=True, external_data=False,
)
print("exported repro.onnx")
'''

_LOAD_WEIGHTS = 'model.load_state_dict(torch.load("weights.pt", weights_only=True))'


def default_construct(module: Any) -> str:
    """Code that rebuilds ``module``'s class, or says plainly why it cannot."""
    cls = type(module)
    if "<locals>" in cls.__qualname__ or cls.__module__ == "__main__":
        return (f"# {cls.__qualname__} is defined in {inspect.getsourcefile(cls)} and is not "
                "importable:\n# paste its definition here, then build it as you did.\n"
                f"model = {cls.__qualname__.split('.')[-1]}()\n{_LOAD_WEIGHTS}")
    head = cls.__qualname__.split(".")[0]
    required = [p.name for p in inspect.signature(cls.__init__).parameters.values()
                if p.name != "self" and p.default is p.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    call = f"{cls.__qualname__}()" if not required else (
        f"{cls.__qualname__}({', '.join(f'{n}=...' for n in required)})  # the arguments you "
        "built it with")
    return f"from {cls.__module__} import {head}\n\nmodel = {call}\n{_LOAD_WEIGHTS}"


def write_repro(repro_dir: Path, module: Any, example: Mapping[str, np.ndarray],
                input_names: tuple[str, ...], output_names: tuple[str, ...], opset: int,
                construct: str | None = None) -> Path:
    """Write script, inputs and (unless ``construct`` loads them itself) weights to
    ``repro_dir``; returns the script's path.
    """
    import torch

    repro_dir.mkdir(parents=True, exist_ok=True)
    np.savez(repro_dir / "inputs.npz", **{n: np.asarray(example[n]) for n in input_names})
    if construct is None:
        torch.save(module.state_dict(), repro_dir / "weights.pt")
    script = repro_dir / SCRIPT
    script.write_text(_TEMPLATE.format(
        qualname=type(module).__qualname__, script=SCRIPT,
        construct=construct or default_construct(module), input_names=list(input_names),
        output_names=list(output_names), opset=opset))
    return script
