"""Selection, candidate choice and option parsing: pure functions, checked on made-up numbers."""

from __future__ import annotations

import dataclasses

import pytest

from frugalml.deploy.candidates import CNN, DECODER, TRANSFORMER, candidates_for, parse_choice
from frugalml.deploy.result import CandidateResult, Scores, Search
from frugalml.deploy.select import select_elsewhere, select_native
from frugalml.errors import FrugalError
from frugalml.runtime.speed import from_rounds
from frugalml.targets import get_target


def _entry(name: str, *, met: bool = True, ratio_rounds: tuple | None = None,
           size: int = 100, status: str = "scored") -> CandidateResult:
    speed = {"ratio_p50": None, "ci95": None, "verdict": "not measured"}
    if ratio_rounds is not None:
        speed = from_rounds(*ratio_rounds).to_dict()
    return CandidateResult.from_dict({
        "name": name, "recipe": "int8", "backend": "onnxruntime", "format": "onnx",
        "status": status, "size_bytes": size, "bundle": f"/b/{name}",
        "precision": "fp32" if name.startswith("fp32") else "int8",
        "error": "QuantizationError: boom", "verified": "verified: natively",
        "accuracy": {"metric": "probe_accuracy", "fp32": 0.8, "value": 0.79, "task": "embedding",
                     "items": 100, "budget_met": met, "failures": [] if met else
                     ["probe accuracy drop (points) 2.1000 (limit 1.0)"]},
        "speed": speed})


FASTER = ([10.0, 10.1, 10.2, 10.0, 10.1, 10.0], [5.0, 5.1, 5.0, 5.05, 5.0, 5.1])
FASTEST = ([10.0, 10.1, 10.2, 10.0, 10.1, 10.0], [4.0, 4.1, 4.0, 4.05, 4.0, 4.1])
SAME = ([10.0, 11.0, 10.5, 10.2, 10.3, 10.4], [9.9, 11.1, 10.4, 10.3, 10.5, 10.2])


def test_the_fastest_significantly_faster_in_budget_candidate_ships() -> None:
    entries = [_entry("int8-static", ratio_rounds=FASTER),
               _entry("int8-dynamic", ratio_rounds=FASTEST),
               _entry("int8-nncf", met=False, ratio_rounds=None)]
    name, why = select_native(entries)
    assert name == "int8-dynamic" and "2.48x FP32" in why and "int8-static 1.99x" in why
    assert "int8-nncf missed its budget (probe accuracy drop" in why


def test_fp32_ships_when_nothing_in_budget_is_measured_faster() -> None:
    entries = [_entry("int8-static", ratio_rounds=SAME),
               _entry("int8-dynamic", met=False, ratio_rounds=FASTEST),
               _entry("w4a8", status="failed"), _entry("int8-nncf", status="skipped")]
    name, why = select_native(entries)
    assert name == "fp32" and "no candidate was both within its budget and measured faster" in why
    assert "int8-static 1.00x FP32" in why and "inconclusive" in why
    assert "int8-dynamic missed its budget" in why and "w4a8 failed: QuantizationError" in why
    missed = _entry("int8-static", met=False)
    repaired = dataclasses.replace(missed, search=Search(before=missed.accuracy, curve={},
                                                         float_nodes=["a", "b"]))
    assert ("int8-static missed its budget even after the mixed-precision search kept 2 nodes "
            "in float (probe accuracy drop") in select_native([repaired])[1]
    assert select_native([]) == ("fp32", "FP32: no quantized candidate applies to this model "
                                         "and target")


def test_elsewhere_the_smallest_in_budget_candidate_ships_unmeasured() -> None:
    entries = [_entry("int8-static", size=300), _entry("w4a8", size=200, met=False),
               _entry("int8-dynamic", size=250)]
    name, why = select_elsewhere(entries, "not verified here: missing avx512_vnni")
    assert name == "int8-dynamic" and "not measured here" in why and "avx512_vnni" in why
    name, why = select_elsewhere([_entry("w4a8", met=False)], "")
    assert name == "fp32" and "w4a8 missed its budget" in why
    assert select_elsewhere([_entry("fp32-fused", size=90)], "")[0] == "fp32"  # not smaller


def test_the_speed_reason_names_the_microarchitecture_and_vnni() -> None:
    from frugalml.deploy.timing import measured_on
    from frugalml.runtime.host import read_host

    zen2 = dataclasses.replace(read_host(), flags=("avx2", "fma"), family=23, model=49,
                               machine="x86_64", vendor="AuthenticAMD")
    text = measured_on(zen2)
    assert "Zen 2" in text and "no VNNI" in text
    vnni = dataclasses.replace(zen2, flags=("avx2", "avx512f", "avx512_vnni"), family=25,
                               model=17)
    assert "no VNNI" not in measured_on(vnni) and "AVX512-VNNI" in measured_on(vnni)


def test_candidates_follow_the_family_and_the_target() -> None:
    x86, phone = get_target("x86-avx2"), get_target("android-arm64")

    def names(family: str, target, choice=("default",)) -> list[str]:
        return [c.name for c in candidates_for(family, target, parse_choice(",".join(choice)))]

    assert names(CNN, x86) == ["int8-static"]
    assert names(TRANSFORMER, x86) == ["fp32-fused", "int8-static", "int8-dynamic",
                                       "int8-dynamic-fused"]
    # A decoder's KV export is fused already; INT8 activations cost it +60 % perplexity.
    assert names(DECODER, x86) == ["w4a8", "w4a8-awq"]
    from_gguf = [c.name for c in candidates_for(DECODER, x86, ("default",),
                                                source_format="gguf")]
    assert from_gguf == ["w4a8-gguf", "w4a8", "w4a8-awq"]  # the file's own blocks, first
    assert names(CNN, x86, ("all",)) == ["int8-static", "int8-nncf", "int8-openvino",
                                         "fp32-openvino"]  # no bf16-openvino: no native bf16
    amx = get_target("x86-amx")
    assert names(CNN, amx) == ["int8-static", "int8-openvino", "bf16-openvino"]
    assert "bf16-openvino" not in names(DECODER, amx, ("all",))  # KV graphs are ORT's
    assert "int8-openvino" not in names(CNN, phone, ("all",))  # phones run .ort only
    assert names(CNN, x86, ("int8-nncf", "w4a8")) == ["int8-nncf"]  # w4a8: decoders only
    assert "w4a8-openvino" in names(DECODER, x86, ("all",))
    assert "w4a8-openvino" not in names(DECODER, phone, ("all",))  # an IR: not for phones
    with pytest.raises(FrugalError, match="Unknown candidate int3"):
        parse_choice("int8-static,int3")


def test_time_budget_durations() -> None:
    from frugalml.cli.deploy import parse_duration

    assert [parse_duration(t) for t in ("20m", "90s", "1h", "45", "1.5m")] == [
        1200, 90, 3600, 45, 90]
    with pytest.raises(FrugalError, match="not a duration"):
        parse_duration("soon")


def test_every_accuracy_miss_of_static_int8_gets_the_search_and_a_size_miss_does_not() -> None:
    from frugalml.deploy.candidates import CANDIDATES
    from frugalml.deploy.search import searchable

    def entry(*checks: tuple[str, float, float, bool]) -> CandidateResult:
        return CandidateResult(name="int8-static", recipe="int8", backend="onnxruntime",
                               format="onnx", accuracy=Scores(
                                   metric="mean_cosine_to_fp32", fp32=1.0, value=0.9,
                                   budget_met=False, failures=[], task="embedding", items=10,
                                   checks=[{"name": n, "value": v, "limit": lim, "passed": ok}
                                           for n, v, lim, ok in checks]))

    far = entry(("mean cosine to FP32", 0.90, 0.995, False))  # far below: searched too now
    static, dynamic = CANDIDATES["int8-static"], CANDIDATES["int8-dynamic"]
    assert searchable(static, far, time_left=60)
    assert not searchable(static, far, time_left=0)  # no time left
    assert not searchable(dynamic, far, time_left=60)  # no calibrated nodes to rank
    size = entry(("size vs FP32", 0.4, 0.3, False), ("mean cosine to FP32", 0.9, 0.99, False))
    assert not searchable(static, size, time_left=60)  # float nodes only add size


def test_a_decoder_is_scored_on_64_windows_unless_told_otherwise() -> None:
    """2,000 windows of 128 tokens took 16 minutes for one SmolLM2 candidate on 2 cores."""
    import dataclasses as dc
    from pathlib import Path

    from frugalml.deploy.candidates import CNN, DECODER
    from frugalml.deploy.engine import _Run
    from frugalml.deploy.plan import DeployOptions
    from frugalml.export.model_info import ModelInfo

    def model(family: str, task: str) -> ModelInfo:
        return ModelInfo(path=Path("model.onnx"), format="onnx", files=(), inputs=(),
                         outputs=(), ops={}, structure="plain", task=task, family=family,
                         origin="onnx")

    run = _Run(options=DeployOptions(), steps=None, out=Path("."), name="m", data=None,
               exported=None, model=model(DECODER, "language-model"), samples={}, started=0.0)
    assert run.eval_items == 64
    assert dc.replace(run, model=model(CNN, "classification")).eval_items == 2000
    assert dc.replace(run, options=DeployOptions(eval_items=300)).eval_items == 300
    with pytest.raises(FrugalError, match="eval_items"):
        DeployOptions(eval_items=0)


@pytest.mark.parametrize(("positions", "prompt", "new"),
                         [(8192, 128, 128), (256, 128, 128), (128, 64, 64), (129, 64, 65)])
def test_the_decode_profile_fits_the_models_positions(positions: int, prompt: int,
                                                      new: int) -> None:
    """128 + 128 tokens as `frugal bench --generate`; a 128-position decoder's profile failed
    with them ("exceed the model's 128 positions"), so a short context is split in two."""
    from frugalml.deploy.timing import decode_options

    options = decode_options(positions)
    assert options[:4] == ["--prompt-tokens", str(prompt), "--new-tokens", str(new)]
    assert prompt + new <= positions
