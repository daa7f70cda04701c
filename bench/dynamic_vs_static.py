"""all-MiniLM-L6-v2: static INT8 (QDQ, calibrated) vs int8-dynamic (activations quantized per
call) vs FP32, each scored on 600 Rotten Tomatoes reviews and timed by the speed protocol in
this process (interleaved rounds, 1 thread, one real review per call), three repeats.

Usage: python bench/dynamic_vs_static.py [--target x86-avx512] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def main() -> None:
    """Quantize both ways, print their scores, then three protocol verdicts per pair."""
    from frugalml.calibration import build_text_set, rotten_tomatoes_file
    from frugalml.demo import default_model_dir
    from frugalml.export.huggingface import INPUT_NAMES, export_sentence_encoder
    from frugalml.quantize.api import quantize
    from frugalml.runtime.host import describe_host, read_host
    from frugalml.runtime.speed import measure_files

    parser = argparse.ArgumentParser()
    parser.add_argument("--target", default="x86-avx512")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = build_text_set(rotten_tomatoes_file(), default_model_dir(),
                          input_names=INPUT_NAMES, calibration_size=300)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32" / "model.onnx"
        fp32.parent.mkdir()
        export_sentence_encoder(default_model_dir(), fp32,
                                [i.text for i in data.items("calibration", limit=8)])
        files = {}
        for recipe in ("int8", "int8-dynamic"):
            record = quantize(fp32, data, Path(tmp) / recipe, recipe=recipe, target=args.target,
                              eval_items=600, allow_over_budget=True)
            files[recipe] = record.path
            cand = record.accuracy["candidate"]
            print(f"{recipe}: mean cosine {cand['mean_cosine_to_fp32']:.4f}, probe drop "
                  f"{cand['probe_drop_points']:.2f} points, {record.activations}")
        feeds = next(data.batches("evaluation", batch_size=1))[0]
        print(f"host: {describe_host(read_host().to_dict())}; 1 thread; input_ids "
              f"{list(feeds['input_ids'].shape)}")
        pairs = {"int8 / FP32": (fp32, files["int8"]),
                 "int8-dynamic / FP32": (fp32, files["int8-dynamic"]),
                 "int8-dynamic / int8": (files["int8"], files["int8-dynamic"])}
        for repeat in range(args.repeats):
            for label, (base, cand_file) in pairs.items():
                v = measure_files(base, cand_file, feeds, threads=1)
                print(f"{repeat}  {label:<20} {v.ratio_p50:.2f}x [{v.ci95[0]:.2f}, "
                      f"{v.ci95[1]:.2f}] {v.verdict}")


if __name__ == "__main__":
    main()
