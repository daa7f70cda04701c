"""Target kinds are plug-ins: every registered kind meets the contract, and a new kind is one
module and one registry line. The toy kind below (a box that takes plain ONNX and that this
host cannot run) is the whole of such a module: with it registered, a target file naming it
loads, `frugal targets`-style status, the candidate list and `compile` all follow it, and no
other file changed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from frugalml.deploy.candidates import CNN, candidates_for
from frugalml.errors import TargetError
from frugalml.runtime.backends import names as backend_names
from frugalml.runtime.host import read_host
from frugalml.targets import get_target
from frugalml.targets import kinds as registry
from frugalml.targets.bundle import MODEL_NAME
from frugalml.targets.compile import compile_model
from frugalml.targets.detect import status
from frugalml.targets.kinds._protocol import TargetKind
from frugalml.targets.profiles import Target
from frugalml.targets.support import Probes, Runs, Support
from tests.quantize.test_contract import mlp_onnx


class ToyBoxKind:
    """A box that runs plain ONNX files through its own firmware: never runnable here."""

    name = "toy-box"
    backend = "onnxruntime"

    def build(self, onnx_file: Path, target: Target, precision: str, work: Path
              ) -> tuple[dict[str, Path], dict[str, str]]:
        return {MODEL_NAME: onnx_file}, {"TOY_FIRMWARE": "2"}

    def runs(self, target: Target, missing: tuple[str, ...], probes: Probes) -> Support:
        return Support(Runs.NO, (*missing, "a toy box on the network"))

    def carries(self, output_format: str) -> bool:
        return output_format == "onnx"


@pytest.mark.parametrize("name", registry.names())
def test_every_kind_meets_the_contract(name: str) -> None:
    kind = registry.get_kind(name)
    assert isinstance(kind, TargetKind) and kind.name == name
    assert kind.backend in backend_names() and kind.carries("onnx")


def test_unknown_and_taken_kind_names_are_refused() -> None:
    with pytest.raises(TargetError, match="Unknown target kind.*known: onnx, ort, openvino-ir"):
        registry.get_kind("fpga")
    with pytest.raises(TargetError, match="already"):
        registry.register("onnx", "tests.targets.test_kinds:ToyBoxKind")


def test_a_new_kind_is_one_module_and_one_registry_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry.KINDS, "entries", dict(registry.KINDS.entries))  # undone after
    registry.register("toy-box", "tests.targets.test_kinds:ToyBoxKind")  # the registry line
    spec = {"name": "toy-box-x86", "machine": "x86_64", "required_features": ["avx2"],
            "backend": "onnxruntime", "int8_format": "u8s8-reduce-range",
            "description": "a toy box", "artifact": "toy-box"}
    (tmp_path / "toy.json").write_text(json.dumps(spec))
    toy = get_target(str(tmp_path / "toy.json"))
    assert status(toy, read_host(), Probes.read()).runs is Runs.NO
    assert "a toy box on the network" in status(toy, read_host(), Probes.read()).missing
    assert [c.name for c in candidates_for(CNN, toy, ("all",))] == ["int8-static", "int8-nncf"]
    x = np.random.default_rng(0).normal(0, 1, (4, 64)).astype(np.float32)
    result = compile_model(mlp_onnx(tmp_path / "m.onnx"), tmp_path / "out", target=toy,
                           samples={"x": x})
    (bundle,) = result.bundles.values()
    manifest = json.loads((Path(bundle) / "manifest.json").read_text())
    assert manifest["runtime_hints"] == {"TOY_FIRMWARE": "2"}
    assert result.verification["fp32"]["status"] == "not verified here"
    assert "a toy box on the network" in result.verification["fp32"]["why"]
