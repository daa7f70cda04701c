"""SmolLM2-135M decoding, frugalml's bundles beside the peers, in one run on this host.

Routes (each timed in its own process, same prompt, same threads; a route that fails to
install or run becomes an error row):
  frugal-fp32        the KV-cache export (dynamo + ort_fusions) as an FP32 bundle
  frugal-w4a8        W4A8 from the FP32 weights (MatMulNBits g128, accuracy level 4; re-rounded)
  frugal-w4a8-awq    W4A8 with NNCF's AWQ + scale estimation on calibration text (re-rounded)
  frugal-w4a8-gguf   the GGUF's own Q4_1/Q8_0 blocks (backend gguf; not re-rounded)
  llama.cpp          llama-cpp-python on the original Q4_1 GGUF
  genai-fp32/int4    onnxruntime-genai's model builder from the same weights, og.Generator
  openvino-genai     OpenVINO GenAI's LLMPipeline on optimum-intel's INT4 IR of the same weights
                     (perplexity: the same IR's logits through OpenVINO, state reset per window)
Columns: size, time to first token (128-token prompt), decode tokens/s (128 greedy tokens),
perplexity on 128-token tiny-shakespeare windows (the same token ids for every route).

Usage: python bench/llm_decode.py [--out bench-llm] [--threads 1] [--windows 20]
       [--routes frugal-fp32,frugal-w4a8,...] [--json PATH]  (the bench-llm extra: the peers)
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _report import add_json_option, emit

ROUTES = ("frugal-fp32", "frugal-w4a8", "frugal-w4a8-awq", "frugal-w4a8-gguf", "llama.cpp",
          "genai-fp32", "genai-int4", "openvino-genai")
# frugalml's quantized routes: (backend, recipe options)
_QUANTIZED = {"frugal-w4a8": ("onnxruntime", {}),
              "frugal-w4a8-awq": ("nncf", {"weight_methods": ("awq", "scale_estimation")}),
              "frugal-w4a8-gguf": ("gguf", {})}


def _windows(tokenizer_json: Path, count: int, length: int = 128) -> np.ndarray:
    """Windows encoded as the runtime encodes a prompt and as deploy scores: the tokenizer's
    special prefix (if any), then ``length`` minus that many tokens of running text."""
    from _data import tiny_shakespeare
    from tokenizers import Tokenizer

    from frugalml.runtime.prompt import special_prefix, tokenizers_encode

    encode = tokenizers_encode(Tokenizer.from_file(str(tokenizer_json)))
    prefix = list(special_prefix(encode))
    body = length - len(prefix)
    ids = encode(tiny_shakespeare().read_text(encoding="utf-8")[:200_000], False)
    return np.asarray([prefix + list(ids[i * body:(i + 1) * body]) for i in range(count)],
                      np.int64)


def _perplexity(logits_of, windows: np.ndarray) -> float:  # type: ignore[no-untyped-def]
    """exp(mean NLL of each next token) over every window; ``logits_of(ids) -> [T, V]``."""
    nll, count = 0.0, 0
    for w in windows:
        logits = np.asarray(logits_of(w), np.float64)
        if logits.shape[0] != len(w):
            raise ValueError(f"logits for {logits.shape[0]} of {len(w)} positions")
        logits = logits[:-1]
        logits -= logits.max(-1, keepdims=True)
        logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        nll -= float(logp[np.arange(len(w) - 1), w[1:]].sum())
        count += len(w) - 1
    return float(np.exp(nll / count))


def _timed(step_first, step_next, new: int) -> dict:  # type: ignore[no-untyped-def]
    """Time ``step_first()`` (the prefill) then ``new - 1`` calls of ``step_next()``."""
    started = time.perf_counter()
    step_first()
    ttft = time.perf_counter() - started
    steps = []
    for _ in range(new - 1):
        t = time.perf_counter()
        step_next()
        steps.append(time.perf_counter() - t)
    return {"ttft_ms": 1e3 * ttft, "tokens_per_s": len(steps) / sum(steps)}


def _frugal(bundle: Path, a: argparse.Namespace) -> dict:
    import frugalml.runtime as rt
    from frugalml.runtime.decode_profile import profile_decoding
    from frugalml.runtime.generate import prefill_feeds

    prof = profile_decoding(bundle, prompt_tokens=a.prompt_tokens, new_tokens=a.new_tokens,
                            threads=a.threads, runs=3)
    with rt.load(bundle, threads=a.threads) as model:
        layout = model.decoder_layout()
        ppl = _perplexity(lambda w: model.run(prefill_feeds(layout, w[None]))["logits"][0],
                          _windows(bundle / "tokenizer.json", a.windows))
    return {"size_mb": prof["model_bytes"] / 1e6, "ttft_ms": prof["first_token_ms"]["p50"],
            "tokens_per_s": prof["decode_tokens_per_s"], "perplexity": ppl}


def _llama_cpp(a: argparse.Namespace) -> dict:
    from _data import smollm2_gguf
    from llama_cpp import Llama

    llm = Llama(str(smollm2_gguf()), n_ctx=512, n_threads=a.threads, n_batch=512,
                logits_all=True, verbose=False)
    windows = _windows(a.export / "tokenizer.json", a.windows)
    prompt = [int(t) for t in windows[0][: a.prompt_tokens]]

    def first() -> None:
        llm.reset()
        llm.eval(prompt)

    def following() -> None:
        llm.eval([int(np.argmax(llm.scores[llm.n_tokens - 1]))])

    speed = _timed(first, following, a.new_tokens)

    def logits_of(w: np.ndarray) -> np.ndarray:
        llm.reset()
        llm.eval([int(t) for t in w])
        return np.asarray(llm.scores[: len(w)])

    return {"size_mb": smollm2_gguf().stat().st_size / 1e6, **speed,
            "perplexity": _perplexity(logits_of, windows)}


def _genai(precision: str, a: argparse.Namespace) -> dict:
    import onnxruntime_genai as og
    from _data import smollm2_gguf

    from frugalml.export.gguf import gguf_model_dir

    out = a.out / f"genai-{precision}"
    if not (out / "genai_config.json").is_file():
        done = subprocess.run(
            [sys.executable, str(Path(__file__).with_name("_genai_build.py")), "-i",
             str(_builder_source(gguf_model_dir(smollm2_gguf()), a.out / "genai-src")),
             "-o", str(out), "-p", precision, "-e", "cpu", "-c", str(a.out / "genai-cache")],
            capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"the model builder failed: {done.stderr.strip()[-300:]}")
    settings = json.loads((out / "genai_config.json").read_text())  # the same threads
    options = settings["model"]["decoder"].setdefault("session_options", {})
    options.update(intra_op_num_threads=a.threads, inter_op_num_threads=1)
    (out / "genai_config.json").write_text(json.dumps(settings, indent=2))
    config = og.Config(str(out))
    config.clear_providers()
    model = og.Model(config)
    windows = _windows(a.export / "tokenizer.json", a.windows)
    prompt = [int(t) for t in windows[0][: a.prompt_tokens]]
    state: dict = {}

    def first() -> None:
        params = og.GeneratorParams(model)
        params.set_search_options(max_length=a.prompt_tokens + a.new_tokens + 8,
                                  do_sample=False)
        state["g"] = og.Generator(model, params)
        state["g"].append_tokens(prompt)
        state["g"].generate_next_token()

    speed = _timed(first, lambda: state["g"].generate_next_token(), a.new_tokens)
    size = sum(p.stat().st_size for p in out.glob("*.onnx*"))
    return {"size_mb": size / 1e6, **speed,
            "perplexity": _perplexity(_builder_logits(out / "model.onnx", a.threads), windows)}


def _builder_logits(model: Path, threads: int):  # type: ignore[no-untyped-def]
    """``ids -> [T, V]`` through the builder's graph in plain ONNX Runtime, past length 0:
    og.Generator hands back only the last position's logits."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    dtypes = {"tensor(float)": np.float32, "tensor(float16)": np.float16}

    def logits_of(w: np.ndarray) -> np.ndarray:
        feeds = {}
        for i in session.get_inputs():
            if i.name == "input_ids":
                feeds[i.name] = w[None].astype(np.int64)
            elif i.name == "attention_mask":
                feeds[i.name] = np.ones((1, len(w)), np.int64)
            elif i.name == "position_ids":
                feeds[i.name] = np.arange(len(w), dtype=np.int64)[None]
            else:  # past_key_values.N.key/value: [batch, kv heads, past, head size]
                feeds[i.name] = np.zeros((1, i.shape[1], 0, i.shape[3]), dtypes[i.type])
        return session.run(["logits"], feeds)[0][0]

    return logits_of


def _openvino_genai(a: argparse.Namespace) -> dict:
    import openvino as ov
    import openvino_genai as ovg
    from _data import smollm2_gguf

    from frugalml.export.gguf import gguf_model_dir

    out = a.out / "openvino-int4"
    if not (out / "openvino_model.xml").is_file():
        done = subprocess.run(
            [str(Path(sys.executable).with_name("optimum-cli")), "export", "openvino", "--model",
             str(gguf_model_dir(smollm2_gguf())), "--task", "text-generation-with-past",
             "--weight-format", "int4", str(out)], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"optimum-intel's export failed: {done.stderr.strip()[-300:]}")
    pipe = ovg.LLMPipeline(str(out), "CPU", INFERENCE_NUM_THREADS=a.threads)
    prompt = _windows(a.export / "tokenizer.json", 1)[:, : a.prompt_tokens]
    config = ovg.GenerationConfig()
    config.max_new_tokens = config.min_new_tokens = a.new_tokens  # exactly, EOS or not
    inputs = ovg.TokenizedInputs(ov.Tensor(prompt), ov.Tensor(np.ones_like(prompt)))
    pipe.generate(inputs, config)  # warm-up
    metrics = pipe.generate(inputs, config).perf_metrics
    del pipe
    request = ov.Core().compile_model(str(out / "openvino_model.xml"), "CPU", {
        "INFERENCE_NUM_THREADS": a.threads}).create_infer_request()

    def logits_of(w: np.ndarray) -> np.ndarray:
        request.reset_state()  # the IR is stateful: its KV cache lives in the request
        request.infer({"input_ids": w[None], "attention_mask": np.ones((1, len(w)), np.int64),
                       "position_ids": np.arange(len(w), dtype=np.int64)[None],
                       "beam_idx": np.zeros(1, np.int32)})
        return request.get_tensor("logits").data[0]

    return {"size_mb": (out / "openvino_model.bin").stat().st_size / 1e6,
            "ttft_ms": metrics.get_ttft().mean, "tokens_per_s": 1e3 / metrics.get_tpot().mean,
            "perplexity": _perplexity(logits_of, _windows(a.export / "tokenizer.json",
                                                          a.windows))}


def _builder_source(model_dir: Path, dest: Path) -> Path:
    """The model directory with ``rope_scaling`` spelled out: the 0.18 builder iterates over
    it and SmolLM2's config has none (null)."""
    import shutil

    if not dest.is_dir():
        shutil.copytree(model_dir, dest)
        config = json.loads((dest / "config.json").read_text())
        config["rope_scaling"] = config.get("rope_scaling") or {"rope_type": "default"}
        (dest / "config.json").write_text(json.dumps(config, indent=2))
    return dest


def _route(name: str, a: argparse.Namespace) -> dict:
    if name.startswith("frugal-"):
        return _frugal(a.out / name, a)
    if name == "llama.cpp":
        return _llama_cpp(a)
    if name == "openvino-genai":
        return _openvino_genai(a)
    return _genai(name.split("-")[1], a)


def _build(a: argparse.Namespace, routes: list[str]) -> None:
    """The export and frugalml's bundles, once (later runs reuse them)."""
    from _data import smollm2_gguf, tiny_shakespeare

    from frugalml.calibration.dataset import make_set
    from frugalml.calibration.windows import TokenWindows
    from frugalml.export import export
    from frugalml.export.gguf import gguf_model_dir
    from frugalml.quantize.api import quantize
    from frugalml.quantize.recipe import get_recipe
    from frugalml.targets import detect
    from frugalml.targets.compile import build_bundle

    source = gguf_model_dir(smollm2_gguf())
    if not (a.export / "model.onnx").is_file():
        export(smollm2_gguf(), a.export, task="text-generation-with-past")
    window = _windows(a.export / "tokenizer.json", 1)[:, :32]
    samples = {"input_ids": window, "attention_mask": np.ones_like(window)}  # see bundle_samples
    data = make_set(TokenWindows(tiny_shakespeare(), source, window=128), calibration_size=32)
    for name in [r for r in routes if r.startswith("frugal-")]:
        if (a.out / name / "manifest.json").is_file():
            continue
        model = a.export
        if name != "frugal-fp32":
            model = a.out / f"{name}-model"
            backend, options = _QUANTIZED[name]
            quantize(a.export, data, model, recipe=get_recipe("w4a8", **options),
                     eval_items=a.windows, backend=backend, allow_over_budget=True)
        build_bundle(model, a.out / name, target=detect(), samples=samples)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("bench-llm"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--windows", type=int, default=20)
    p.add_argument("--prompt-tokens", type=int, default=128)
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--routes", default=",".join(ROUTES))
    p.add_argument("--route", help=argparse.SUPPRESS)  # one route, in this process
    add_json_option(p)
    a = p.parse_args()
    a.out = a.out.resolve()
    a.export = a.out / "export"
    if a.route:
        print(json.dumps(_route(a.route, a)))
        return
    routes = [r.strip() for r in a.routes.split(",") if r.strip()]
    _build(a, routes)
    rows = {}
    for name in routes:
        done = subprocess.run([sys.executable, __file__, "--route", name, "--out", str(a.out),
                               "--threads", str(a.threads), "--windows", str(a.windows),
                               "--prompt-tokens", str(a.prompt_tokens),
                               "--new-tokens", str(a.new_tokens)],
                              capture_output=True, text=True)
        rows[name] = (json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0
                      else {"error": _failure(done)})
        print(name, rows[name], flush=True)
    _print(rows, a)


def _failure(done: subprocess.CompletedProcess) -> str:
    """Why a route's process failed: its last line of stderr, or the signal that killed it
    (a llama.cpp built for another CPU dies of SIGILL without a word)."""
    last = (done.stderr.strip().splitlines() or [""])[-1][:200]
    if done.returncode < 0:
        return f"killed by {signal.Signals(-done.returncode).name} {last}".strip()
    return last or f"exit code {done.returncode}"


def _print(rows: dict, a: argparse.Namespace) -> None:
    """The table naming the host, also written to ``--json`` (default OUT/llm_decode.json)."""
    fp32 = rows.get("frugal-fp32", {}).get("tokens_per_s")
    table = []
    for name, r in rows.items():
        if "error" in r:
            table.append({"route": name, "perplexity": f"error: {r['error']}", **r})
            continue
        table.append({"route": name, "size MB": round(r["size_mb"]),
                      "first token ms": round(r["ttft_ms"]),
                      "decode tokens/s": round(r["tokens_per_s"], 1),
                      "x frugal FP32": f"{r['tokens_per_s'] / fp32:.2f}x" if fp32 else None,
                      **{k: v for k, v in r.items() if k not in ("size_mb", "ttft_ms")}})
    emit(f"SmolLM2-135M decoding: {a.prompt_tokens}-token prompt, {a.new_tokens} greedy "
         f"tokens; perplexity on {a.windows} x 128 tiny-shakespeare tokens",
         ("route", "size MB", "first token ms", "decode tokens/s", "x frugal FP32",
          "perplexity"), table, json_path=a.json or a.out / "llm_decode.json",
         threads=a.threads)


if __name__ == "__main__":
    main()
