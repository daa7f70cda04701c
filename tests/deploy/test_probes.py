"""One read of the source per deploy (issue 33): the model file is hashed once and opened by
ONNX Runtime once, however many stages ask about it (input names, the data check, the export
key); a GGUF, whose digest several stages need, is read once (tests/deploy/test_decoder.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.deploy.test_families import _scorer
from tests.helpers import count_probes


def test_a_deploy_reads_its_onnx_source_once(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from frugalml.core.records import file_sha256
    from frugalml.deploy import DeployOptions, deploy

    model = _scorer(tmp_path / "scorer.onnx")
    np.save(tmp_path / "x.npy", np.random.default_rng(1).normal(size=(96, 16)).astype(
        np.float32))
    probes = count_probes(monkeypatch)
    result = deploy(model, tmp_path / "x.npy", tmp_path / "out", DeployOptions(
        candidates="int8-static", calibration_items=32, profile_runs=5), quiet=True)
    source = str(model.resolve())
    assert probes.hashes[source] == 1 and probes.sessions[source] == 1, probes
    exported = [p for p in probes.sessions if p.endswith("/export/model.onnx")]
    assert exported, "the export was never run: nothing was counted"
    # One ModelInfo: the export described once (its files hashed once), and what deploy.json
    # says of the model is that record's
    info = result.record["model_info"]
    assert probes.hashes[str(Path(info["path"]).resolve())] == 1, probes.hashes
    assert (info["task"], info["family"], info["structure"]) == (
        result.record["task"], result.record["family"], "plain")
    assert info["origin"] == "onnx" and info["origin_digest"] == file_sha256(model)
    assert [t["name"] for t in info["inputs"]] == ["x"]
