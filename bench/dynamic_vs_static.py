"""all-MiniLM-L6-v2: static INT8 (QDQ, calibrated) vs int8-dynamic (activations quantized per
call) vs FP32, each scored on 600 Rotten Tomatoes reviews and timed by the speed protocol in
this process (interleaved rounds, 1 thread, one real review per call), three repeats.

Usage: python bench/dynamic_vs_static.py [--target x86-avx512] [--repeats 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _report import add_json_option, emit, markdown


def main() -> None:
    """Quantize both ways, print their scores, then three protocol verdicts per pair."""
    from frugalml.calibration import build_text_set, rotten_tomatoes_file
    from frugalml.demo import default_model_dir
    from frugalml.export.huggingface import INPUT_NAMES, export_sentence_encoder
    from frugalml.quantize.api import quantize
    from frugalml.runtime.speed import measure_files

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", default="x86-avx512")
    parser.add_argument("--repeats", type=int, default=3)
    add_json_option(parser)
    args = parser.parse_args()
    data = build_text_set(rotten_tomatoes_file(), default_model_dir(),
                          input_names=INPUT_NAMES, calibration_size=300)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32" / "model.onnx"
        fp32.parent.mkdir()
        export_sentence_encoder(default_model_dir(), fp32,
                                [i.text for i in data.items("calibration", limit=8)])
        files, scores = {}, []
        for recipe in ("int8", "int8-dynamic"):
            record = quantize(fp32, data, Path(tmp) / recipe, recipe=recipe, target=args.target,
                              eval_items=600, allow_over_budget=True)
            files[recipe] = record.path
            cand = record.accuracy["candidate"]
            scores.append({"recipe": recipe, "mean cosine": cand["mean_cosine_to_fp32"],
                           "probe drop points": cand["probe_drop_points"],
                           "activations": record.activations})
        feeds = next(data.batches("evaluation", batch_size=1))[0]
        pairs = {"int8 / FP32": (fp32, files["int8"]),
                 "int8-dynamic / FP32": (fp32, files["int8-dynamic"]),
                 "int8-dynamic / int8": (files["int8"], files["int8-dynamic"])}
        rows = []
        for repeat in range(args.repeats):
            for label, (base, cand_file) in pairs.items():
                v = measure_files(base, cand_file, feeds, threads=1)
                rows.append({"repeat": repeat, "pair": label, "speed": v.describe(short=True),
                             "verdict": v.to_dict()})
    print(markdown(("recipe", "mean cosine", "probe drop points", "activations"), scores))
    emit(f"MiniLM static vs dynamic INT8 (input_ids {list(feeds['input_ids'].shape)})",
         ("repeat", "pair", "speed"), rows, json_path=args.json, threads=1, scores=scores)


if __name__ == "__main__":
    main()
