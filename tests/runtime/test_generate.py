"""Decoders with a KV cache, end to end on a tiny random Llama (grouped-query attention, rotary
positions, a BPE tokenizer trained on tiny-shakespeare): export checked against torch token by
token, a bundle carrying its tokenizer, and `Model.generate` in the runtime."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from frugalml.errors import BundleError, InputError

PROMPT = "First Citizen:\nBefore we proceed any further, hear me speak."


@pytest.fixture(scope="module")
def decoder(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tiny model's directory, its KV-cache export, and an FP32 bundle of it."""
    from frugalml.export.api import read_export
    from frugalml.export.decoder import export_decoder
    from frugalml.runtime.generate import DecoderLayout
    from frugalml.targets import detect
    from frugalml.targets.compile import build_bundle
    from tests.decoders import tiny_llama

    root = tmp_path_factory.mktemp("decoder")
    source = tiny_llama(root / "hf")
    exported = export_decoder(source, root / "export")
    layout = DecoderLayout.from_dict(exported.decoder)
    assert read_export(root / "export").decoder == exported.decoder  # in the export record
    window = {"input_ids": np.array([[5, 6, 7, 8, 9, 10, 11, 12]], dtype=np.int64),
              "attention_mask": np.ones((1, 8), dtype=np.int64)}  # as token windows come
    build_bundle(root / "export", root / "bundle", target=detect(), samples=window)
    return {"source": source, "exported": exported, "bundle": root / "bundle",
            "layout": layout}


def _torch_model(source: Path):  # type: ignore[no-untyped-def]
    from frugalml.export.huggingface import load_model

    return load_model(source, "text-generation")


def test_the_export_is_fused_and_matches_torch_over_prefill_and_decode(decoder: dict) -> None:
    exported = decoder["exported"]
    assert "ort_fusions" in exported.exporter and not exported.attempts
    assert any(f.startswith("gqa") for f in exported.fusions), exported.fusions
    (logits,) = exported.checks
    assert logits.passed and logits.min_cosine > 0.99999 and logits.max_abs_error < 1e-3
    assert exported.input_names[:3] == ("input_ids", "attention_mask", "position_ids")
    assert len(decoder["layout"].past_inputs) == 4  # 2 layers x key, value


def test_when_fusion_fails_the_plain_graph_is_checked_against_torch_and_kept(
        decoder: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The export checks only the graph it keeps: the fused one (above), or the plain one."""
    from frugalml.errors import ExportError
    from frugalml.export import decoder as decoder_export

    checked: list[str] = []
    check = decoder_export.check_greedy

    def counting(model, path, *args, **kwargs):  # type: ignore[no-untyped-def]
        checked.append(Path(path).name)
        return check(model, path, *args, **kwargs)

    def refuse(*_args: object) -> tuple[str, ...]:
        raise ExportError("ort_fusions fused no attention (forced by the test)")

    monkeypatch.setattr(decoder_export, "check_greedy", counting)
    monkeypatch.setattr(decoder_export, "_fuse", refuse)
    record = decoder_export.export_decoder(decoder["source"], tmp_path / "out")
    assert checked == ["unfused.onnx"] and record.fusions == ()
    assert "ort_fusions" not in record.exporter and "forced by the test" in record.attempts[0]
    (logits,) = record.checks
    assert logits.passed and logits.min_cosine > 0.99999
    assert record.path == tmp_path / "out" / "model.onnx" and record.path.is_file()
    assert not (tmp_path / "out" / "unfused.onnx").exists()


def test_a_decoder_bundle_is_verified_on_a_window_continued_after_a_cache(decoder: dict
                                                                          ) -> None:
    """Token windows become a sample with a past (6 of 8 tokens cached): the bundle's
    expected logits are the whole window's last 2 positions, so verification covers the path
    a decode step takes."""
    import frugalml.runtime as rt
    from frugalml.runtime.generate import prefill_feeds
    from frugalml.targets.samples import bundle_samples

    kept = np.load(decoder["bundle"] / "samples.npz")
    assert kept["input.input_ids"].tolist() == [[11, 12]]
    assert kept["input.position_ids"].tolist() == [[6, 7]]
    assert kept["input.attention_mask"].shape == (1, 8)
    assert all(kept[f"input.{p}"].shape[2] == 6 for p in decoder["layout"].past_inputs)
    with rt.load(decoder["bundle"]) as model:
        whole = model.run(prefill_feeds(decoder["layout"], np.arange(5, 13)[None]))["logits"]
        assert model.self_check()["min_cosine"] > 0.99999
    np.testing.assert_allclose(kept["output.logits"][0], whole[0, 6:], atol=1e-4, rtol=1e-4)
    with pytest.raises(InputError, match="at least 2"):
        bundle_samples(decoder["exported"].path, {"input_ids": np.array([[5, 6]]),
                                                  "attention_mask": np.array([[1, 0]])})


def test_greedy_tokens_equal_torch_for_16_steps(decoder: dict) -> None:
    import frugalml.runtime as rt
    from frugalml.export.decoder import torch_greedy

    with rt.load(decoder["bundle"]) as model:
        prompt = model.tokenizer().encode(PROMPT).ids
        got = model.generate(prompt, max_new_tokens=16, stop_token_ids=())
    want, _ = torch_greedy(_torch_model(decoder["source"]), prompt, 16)
    assert list(got.token_ids) == want and len(set(want)) > 3  # not one token repeated
    assert got.finish == "length" and got.prompt_tokens == len(prompt)


def test_cached_steps_give_the_uncached_logits_and_perplexity(decoder: dict) -> None:
    """Each cached step's logits equal the uncached graph's (one prefill over the whole
    sequence) and torch's full forward; perplexity through the cached graph equals torch's
    within 1e-3 relative."""
    import torch

    import frugalml.runtime as rt
    from frugalml.calibration.metrics import perplexity
    from frugalml.runtime.generate import prefill_feeds

    layout = decoder["layout"]
    with rt.load(decoder["bundle"]) as model:
        ids = model.tokenizer().encode(PROMPT).ids[:24]
        whole = model.run(prefill_feeds(layout, np.array([ids])))["logits"][0]
        steps, feeds, cache = [], prefill_feeds(layout, np.array([ids[:1]])), None
        for position in range(1, len(ids) + 1):
            out = model.run(feeds)
            steps.append(out["logits"][0, -1])
            cache = {p: out[q] for p, q in zip(layout.past_inputs, layout.present_outputs,
                                               strict=True)}
            feeds = {"input_ids": np.array([[ids[min(position, len(ids) - 1)]]]),
                     "attention_mask": np.ones((1, position + 1), np.int64),
                     "position_ids": np.array([[position]]), **cache}
    with torch.no_grad():
        reference = _torch_model(decoder["source"])(torch.tensor([ids])).logits[0].numpy()
    np.testing.assert_allclose(np.array(steps), whole, atol=1e-4)
    np.testing.assert_allclose(whole, reference, atol=1e-3)
    mask = np.ones((1, len(ids)), np.int64)
    cached = perplexity(whole[None], np.array([ids]), mask).value
    uncached = perplexity(reference[None], np.array([ids]), mask).value
    assert cached == pytest.approx(uncached, rel=1e-3)


def test_the_cache_kept_in_place_gives_the_copied_caches_logits(decoder: dict,
                                                               tmp_path: Path) -> None:
    """The fused graph's attention updates its cache in place, so the runtime keeps one
    buffer per layer (no copy per step): its logits equal the copying loop's at every step.
    A graph that does not (the unfused export) is never driven that way, and a layout that
    claims it wrongly fails loudly."""
    import onnxruntime as ort

    import frugalml.runtime as rt
    from frugalml.export.decoder import export_decoder
    from frugalml.runtime.backends.onnxruntime import OnnxRuntimeSession
    from frugalml.runtime.generate import CopiedCache, DecoderLayout

    layout = decoder["layout"]
    assert layout.shared_buffer
    with rt.load(decoder["bundle"]) as model:
        ids = model.tokenizer().encode(PROMPT).ids[:24]
        shared = model.session.shared_cache(layout, len(ids))
        copied = CopiedCache(model.session.run, layout)
        pairs = [(shared.prefill(ids[:1]), copied.prefill(ids[:1]))]
        pairs += [(shared.step(t), copied.step(t)) for t in ids[1:]]
    for step, (kept, fed_back) in enumerate(pairs):
        np.testing.assert_allclose(kept, fed_back, atol=1e-5, err_msg=f"step {step}")
    plain = export_decoder(decoder["source"], tmp_path / "plain", fuse=False)
    unfused = DecoderLayout.from_dict(plain.decoder)
    assert not unfused.shared_buffer and "ort_fusions" not in plain.exporter
    session = OnnxRuntimeSession(ort.InferenceSession(str(plain.path)), None)
    wrong = session.shared_cache(dataclasses.replace(unfused, shared_buffer=True), 8)
    with pytest.raises(BundleError, match="did not update its cache in place"):
        wrong.prefill(ids[:2])  # its present is past + new positions: not the buffer
        wrong.step(ids[2])


def test_seeded_sampling_is_reproducible_and_stop_tokens_stop(decoder: dict) -> None:
    import frugalml.runtime as rt

    with rt.load(decoder["bundle"]) as model:
        def sample(seed: int) -> tuple[int, ...]:
            return model.generate(PROMPT, max_new_tokens=24, temperature=1.0, top_k=40,
                                  top_p=0.95, seed=seed, stop_token_ids=()).token_ids

        assert sample(1) == sample(1) and sample(1) != sample(2)
        greedy = model.generate(PROMPT, max_new_tokens=24, stop_token_ids=()).token_ids
        cut = next(i for i, t in enumerate(greedy) if i >= 2 and t not in greedy[:i])
        stopped = model.generate(PROMPT, max_new_tokens=24, stop_token_ids=(greedy[cut],))
        assert stopped.token_ids == greedy[:cut] and stopped.finish == "stop"
        streamed = list(model.stream(PROMPT, max_new_tokens=24, stop_token_ids=()))
        assert tuple(t.id for t in streamed) == greedy
        whole = model.generate(PROMPT, max_new_tokens=24, stop_token_ids=()).text
        assert whole == model.tokenizer().decode(list(greedy), skip_special_tokens=True)
        # Streamed pieces add up to the text, but for a character the limit cut in half.
        assert "".join(t.text for t in streamed) == whole.removesuffix("\ufffd")


def test_bad_prompts_and_options_are_input_errors(decoder: dict) -> None:
    import frugalml.runtime as rt

    with rt.load(decoder["bundle"]) as model:
        limit = decoder["layout"].max_positions
        with pytest.raises(InputError, match=f"at most {limit} positions"):
            model.generate([5] * limit)
        with pytest.raises(InputError, match="empty"):
            model.generate([])
        with pytest.raises(InputError, match="temperature -1.*top_p 0"):
            model.generate(PROMPT, temperature=-1, top_p=0)
        near = model.generate([5] * (limit - 3), max_new_tokens=50, stop_token_ids=())
        assert len(near.token_ids) == 3 and near.finish == "length"  # the position limit


def test_four_threads_generate_what_one_thread_does(decoder: dict) -> None:
    import frugalml.runtime as rt

    with rt.load(decoder["bundle"], threads=1) as model:
        def job(i: int) -> tuple[int, ...]:
            return model.generate(PROMPT, max_new_tokens=12, temperature=0.8 if i % 2 else 0,
                                  seed=i, stop_token_ids=()).token_ids

        alone = [job(i) for i in range(50)]
        with ThreadPoolExecutor(4) as pool:
            together = list(pool.map(job, [i for _ in range(4) for i in range(50)]))
    assert together == alone * 4


def test_a_decoder_bundle_lets_its_threads_spin_unless_told_not_to(decoder: dict) -> None:
    """~800 small operators a decode step: at 2 threads spinning decoded SmolLM2 1.42x faster
    (targets.bundle.DECODER_HINTS). The bundle says so; a caller's hint wins."""
    import frugalml.runtime as rt

    def spinning(model: rt.Model) -> str:
        options = model.session._session.get_session_options()  # type: ignore[attr-defined]
        return options.get_session_config_entry("session.intra_op.allow_spinning")

    with rt.load(decoder["bundle"], threads=2) as model:
        assert model.manifest.runtime_hints["ALLOW_SPINNING"] == "1"
        assert spinning(model) == "1"
        spun = model.generate(PROMPT, max_new_tokens=8, stop_token_ids=()).token_ids
    with rt.load(decoder["bundle"], threads=2, hints={"ALLOW_SPINNING": "0"}) as model:
        assert spinning(model) == "0"
        assert model.generate(PROMPT, max_new_tokens=8, stop_token_ids=()).token_ids == spun


def test_an_altered_tokenizer_or_generation_section_is_refused(decoder: dict,
                                                               tmp_path: Path) -> None:
    import frugalml.runtime as rt

    changed = tmp_path / "tokenizer"
    shutil.copytree(decoder["bundle"], changed)
    with (changed / "tokenizer.json").open("a") as f:
        f.write(" ")
    with pytest.raises(BundleError, match="tokenizer.json: sha256 differs"):
        rt.load(changed)
    broken = tmp_path / "generation"
    shutil.copytree(decoder["bundle"], broken)
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest["generation"]["tokenizer_file"] = "other.json"
    (broken / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="tokenizer_file 'other.json' is not among"):
        rt.load(broken)


def test_generation_needs_only_numpy_onnxruntime_and_tokenizers(decoder: dict) -> None:
    script = ("import json, sys\nimport frugalml.runtime as rt\n"
              "m = rt.load(sys.argv[1])\n"
              "print(m.generate('ROMEO:', max_new_tokens=4).text, file=sys.stderr)\n"
              "print(json.dumps(sorted({n.split('.')[0] for n in sys.modules})))\n")
    done = subprocess.run([sys.executable, "-c", script, str(decoder["bundle"])],
                          capture_output=True, text=True, check=True)
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert {"onnxruntime", "numpy", "tokenizers"} <= loaded
    assert not loaded & {"torch", "transformers", "onnx", "optimum", "nncf"}


def test_frugal_generate_and_bench_generate(decoder: dict, capsys: pytest.CaptureFixture
                                            ) -> None:
    import frugalml.runtime as rt
    from frugalml.cli import main

    bundle = str(decoder["bundle"])
    assert main(["generate", bundle, "--prompt", "ROMEO:", "--max-new-tokens", "6",
                 "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    with rt.load(bundle) as model:
        want = model.generate("ROMEO:", max_new_tokens=6)
    assert printed["token_ids"] == list(want.token_ids) and printed["text"] == want.text
    assert main(["generate", bundle, "--prompt", "ROMEO:", "--max-new-tokens", "6"]) == 0
    streamed = capsys.readouterr()
    assert streamed.out.startswith(want.text.removesuffix("\ufffd"))
    assert "tokens/s" in streamed.err
    assert main(["bench", bundle, "--generate", "--prompt-tokens", "16", "--new-tokens", "8",
                 "--generations", "2", "--json"]) == 0
    prof = json.loads(capsys.readouterr().out)
    assert prof["kind"] == "decode" and prof["decode_tokens_per_s"] > 0
    assert prof["kv_cache_bytes"] == decoder["layout"].bytes_per_token() * 24
    assert prof["token_ms"]["p50"] <= prof["token_ms"]["p99"]
    assert main(["bench", bundle, "--against", bundle, "--threads", "1", "--time-cap", "3",
                 "--json"]) == 0  # a decoder pair: judged by decode steps, as deploy does
    verdict = json.loads(capsys.readouterr().out)
    assert "decode steps" in verdict["settings"]["measures"], verdict
    assert main(["bench", bundle, "--generate", "--prompt-tokens", "120", "--new-tokens",
                 "20"]) == 2
    assert "exceed the model's 128 positions" in capsys.readouterr().err


def test_the_decode_profile_warms_up_short_and_times_full_generations(
        decoder: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from frugalml.runtime.decode_profile import WARMUP_TOKENS, profile_decoding
    from frugalml.runtime.model import Model

    asked: list[int] = []
    generate = Model.generate

    def counted(self: Model, *args: object, **kwargs: object) -> object:
        asked.append(int(kwargs["max_new_tokens"]))
        return generate(self, *args, **kwargs)

    monkeypatch.setattr(Model, "generate", counted)
    prof = profile_decoding(decoder["bundle"], prompt_tokens=16, new_tokens=40, runs=2)
    assert asked == [WARMUP_TOKENS, 40, 40] and WARMUP_TOKENS < 40
    assert prof["settings"]["new_tokens"] == 40 and prof["decode_tokens_per_s"] > 0


@pytest.fixture(scope="module")
def tied(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """A tied tiny decoder's KV-cache export and 32-token windows of text for it."""
    from bench._data import tiny_shakespeare
    from frugalml.calibration.dataset import make_set
    from frugalml.calibration.windows import TokenWindows
    from frugalml.export.decoder import export_decoder
    from tests.decoders import tiny_llama

    root = tmp_path_factory.mktemp("tied")
    source = tiny_llama(root / "tied", tied=True)
    export = export_decoder(source, root / "export").path.parent
    text = root / "text.txt"
    text.write_text(tiny_shakespeare().read_text(encoding="utf-8")[:40_000])
    return export, make_set(TokenWindows(text, source, window=32), calibration_size=16)


def _nbits_of(path: Path) -> list[tuple[int, int]]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return [tuple(next(a.i for a in n.attribute if a.name == key)
                  for key in ("bits", "accuracy_level"))
            for n in model.graph.node if n.op_type == "MatMulNBits"]


def test_w4a8_keeps_the_cache_and_gives_the_tied_output_layer_8_bits(
        decoder: dict, tied: tuple[Path, object], tmp_path: Path) -> None:
    """W4A8 on the KV-cache graph: scored by perplexity through the cached graph, bundled
    with its tokenizer, generating. The tied output layer (a FusedMatMul after ort_fusions,
    which no weight quantizer takes) gets its own 8-bit weight instead of staying float."""
    import onnx

    import frugalml.runtime as rt
    from frugalml.quantize.api import quantize
    from frugalml.runtime.generate import prefill_feeds
    from frugalml.targets import detect
    from frugalml.targets.compile import build_bundle

    export, data = tied
    record = quantize(export, data, tmp_path / "w4a8", recipe="w4a8", eval_items=32,
                      allow_over_budget=True)
    assert record.accuracy["task"] == "language-model"
    assert record.accuracy["reference"]["perplexity"] > 1
    model = onnx.load(str(record.path), load_external_data=False)
    ops = [n.op_type for n in model.graph.node]
    assert "FusedMatMul" not in ops
    assert _nbits_of(record.path) == [(4, 4)] * 14  # 2 layers x 7 linears
    # The output layer: an int8 weight of its own (ONNX Runtime runs it as 8-bit MatMulNBits);
    # the embedding's Gather reads its int8 rows, never a dequantized whole table.
    (dq,) = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    assert [n.op_type for n in model.graph.node if dq.output[0] in n.input] == ["MatMul"]
    assert record.weight_only_layers and len(record.int4_weight_layers) == 14
    samples = prefill_feeds(decoder["layout"], np.array([[5, 6, 7, 8]], dtype=np.int64))
    build_bundle(record.path.parent, tmp_path / "bundle", target=detect(), samples=samples)
    with rt.load(tmp_path / "bundle") as bundle:
        assert bundle.manifest.precision == "w4a8" and bundle.generation is not None
        assert len(bundle.generate(PROMPT, max_new_tokens=8, stop_token_ids=()).token_ids) == 8


def test_nncf_awq_w4a8_on_the_kv_graph(tied: tuple[Path, object], tmp_path: Path) -> None:
    """NNCF's AWQ + scale estimation on the cached graph (its calibration windows run as a
    prefill with an empty cache): the same layer plan as rounding (14 4-bit MatMulNBits with
    int8 activations, the tied output layer at 8 bits), perplexity close to FP32's, and the
    tokenizer and cache layout carried to the output."""
    import onnx

    from frugalml.export.api import read_export
    from frugalml.quantize.api import quantize
    from frugalml.quantize.recipe import get_recipe

    export, data = tied
    recipe = get_recipe("w4a8", weight_methods=("awq", "scale_estimation"))
    record = quantize(export, data, tmp_path / "awq", recipe=recipe, backend="nncf",
                      eval_items=32, allow_over_budget=True)
    assert _nbits_of(record.path) == [(4, 4)] * 14
    assert record.activations == "dynamic int8 in MatMulNBits (accuracy_level 4)"
    model = onnx.load(str(record.path), load_external_data=False)
    assert "FusedMatMul" not in {n.op_type for n in model.graph.node}
    assert len(record.weight_only_layers) == 1  # the untied output layer, int8
    accuracy = record.accuracy
    assert accuracy["task"] == "language-model"
    assert abs(accuracy["candidate"]["perplexity"] / accuracy["reference"]["perplexity"] - 1) < 0.1
    assert {p.name for p in record.path.parent.iterdir()} >= {"tokenizer.json"}
    assert record.decoder == read_export(export).decoder  # the layout carried in the record


def test_frugal_report_shows_decode_profiles(decoder: dict, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    """Decode profiles (``frugal bench --generate --json``) have a section of their own in
    ``frugal report``, beside latency profiles or alone; a newer decode schema is refused."""
    from frugalml.cli import main

    bundle = str(decoder["bundle"])
    assert main(["bench", bundle, "--generate", "--prompt-tokens", "16", "--new-tokens", "8",
                 "--generations", "2", "--json"]) == 0
    (tmp_path / "decode.json").write_text(capsys.readouterr().out)
    assert main(["bench", bundle, "--runs", "5", "--warmup", "1", "--no-ops", "--json"]) == 0
    (tmp_path / "latency.json").write_text(capsys.readouterr().out)
    assert main(["report", str(tmp_path / "latency.json"), str(tmp_path / "decode.json"),
                 "--out", str(tmp_path / "both")]) == 0
    report = json.loads((tmp_path / "both" / "report.json").read_text())
    (latency,), (decode,) = report["runs"], report["decoding"]
    assert latency["latency_ms"]["p50"] > 0 and "decode_tokens_per_s" not in latency
    measured = json.loads((tmp_path / "decode.json").read_text())
    assert decode["decode_tokens_per_s"] == measured["decode_tokens_per_s"]
    assert decode["x_fp32"] == 1.0 and decode["precision"] == "fp32"  # its own FP32 baseline
    markdown = (tmp_path / "both" / "report.md").read_text()
    assert "## Latency (ms)" in markdown and "## Decoding" in markdown
    assert f"| {measured['decode_tokens_per_s']:.1f} | 1.00x |" in markdown
    assert 'id="plot-decoding"' in (tmp_path / "both" / "report.html").read_text()
    assert main(["report", str(tmp_path / "decode.json"), "--out", str(tmp_path / "alone")]) == 0
    alone = (tmp_path / "alone" / "report.md").read_text()
    assert "## Decoding" in alone and "## Latency" not in alone
    newer = {**measured, "schema_version": 99}
    (tmp_path / "newer.json").write_text(json.dumps(newer))
    assert main(["report", str(tmp_path / "newer.json"), "--out", str(tmp_path / "x")]) == 2
    assert "decode Profile schema 99" in capsys.readouterr().err
