"""`frugal calibrate`: split and fingerprint real data for a model, with the preprocessing it
was trained with, and check one item against the model's inputs before anything long runs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from frugalml.runtime.formats import is_gguf, is_onnx

# Image preprocessing flags -> ImageFolder options (None: the preset's value).
_IMAGE_OPTIONS = {"preset": "preset", "layout": "layout", "color": "color", "mean": "mean",
                  "std": "std", "scale": "scale", "crop": "size", "resize": "resize",
                  "letterbox": "letterbox", "input_name": "input_name"}


def _options(args: argparse.Namespace, signature: list[tuple[str, str, tuple[Any, ...]]]
             ) -> dict[str, Any]:
    """The reader's options for this kind of data, as the descriptor will record them."""
    single_input = signature[0][0] if len(signature) == 1 else None
    if args.data.is_dir() and args.chunk:
        from frugalml.deploy.data import stream_options

        return stream_options(args.data, reader_flags(args), args.model)
    if args.data.is_dir():
        options = {key: getattr(args, flag) for flag, key in _IMAGE_OPTIONS.items()}
        options["input_name"] = args.input_name or single_input
        return options | {"strict": args.strict or None}
    if args.data.suffix == ".npz":
        from frugalml.deploy.data import stream_options

        return stream_options(args.data, reader_flags(args), args.model)
    if args.data.suffix == ".npy":
        return {"input_name": args.input_name or single_input}
    from frugalml.deploy.data import LM_WINDOW
    from frugalml.deploy.plan import language_model_source

    options = {"tokenizer": args.tokenizer or _tokenizer_dir(args.model)}
    if not args.window and language_model_source(args.model):  # running text, as deploy cuts it
        return options | {"window": LM_WINDOW}
    return options | ({"window": args.window} if args.window else
                      {"column": args.column, "label_column": args.label_column})


def cmd_calibrate(args: argparse.Namespace) -> None:
    """Write the descriptor and print the split, the label map and the input check."""
    from frugalml.calibration.descriptor import open_set, write_descriptor
    from frugalml.cli import _print

    signature = _onnx_signature(args.model)
    options = _options(args, signature)
    data_set = open_set(args.data, options, calibration_size=args.num)
    if signature:
        data_set.check_inputs(signature)
    path = write_descriptor(data_set, args.data, options, args.out)
    summary = data_set.summary()
    lines = [f"wrote {path}",
             f"{summary['calibration_items']} calibration / {summary['evaluation_items']} "
             f"evaluation items, fingerprint {summary['fingerprint'][:12]}"
             + (", inputs match the model" if signature else "")]
    names = summary["source"].get("label_names")
    if names:
        lines.append("labels from folder names (natural order): "
                     + ", ".join(f"{i}={n}" for i, n in enumerate(names)))
    _print({"descriptor": str(path), **summary}, args.json, lines)


def _tokenizer_dir(model: Path) -> Path | None:
    """The tokenizer beside ``model``: a HF dir, a GGUF's converted dir, or an export's source."""
    if is_gguf(model):
        from frugalml.export.gguf import gguf_model_dir

        return gguf_model_dir(model)
    record = model / "export.json" if model.is_dir() else model.parent / "export.json"
    if not (model / "config.json").is_file() and record.is_file():
        model = Path(json.loads(record.read_text()).get("source", ""))
    return model if (model / "config.json").is_file() else None


def _onnx_signature(model: Path) -> list[tuple[str, str, tuple[Any, ...]]]:
    """(name, numpy dtype, shape) of an ONNX model's inputs, or [] for a HF directory."""
    path = model / "model.onnx" if model.is_dir() else model
    if not is_onnx(path) or not path.is_file():
        return []
    import onnxruntime as ort

    from frugalml.runtime.manifest import onnx_dtype

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [(i.name, onnx_dtype(i.type), tuple(i.shape)) for i in session.get_inputs()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The calibrate command's arguments; defaults are shown in --help."""

    p.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    p.add_argument("data", type=Path, help="image folder, .npy/.npz, or .csv/.jsonl/.txt")
    p.add_argument("--model", type=Path, required=True,
                   help=".onnx (inputs are checked against it), export dir, or HF model dir")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--num", type=int, default=300,
                   help="calibration items; the rest is the evaluation part, which scores the "
                   "quantized model against FP32 and must not be empty")
    add_reader_arguments(p)


def add_reader_arguments(p: argparse.ArgumentParser) -> None:
    """How to read the data (images, arrays, text); shared by calibrate and deploy."""
    from frugalml.calibration.pixels import PRESETS

    p.add_argument("--input-name", help="the model input the images or .npy feed (default: "
                   "the model's only input)")
    images = p.add_argument_group("images: (pixel * scale - mean) / std per channel")
    images.add_argument("--preset", default="imagenet", choices=list(PRESETS))
    images.add_argument("--color", type=str.lower, help="rgb or bgr (default: rgb)")
    images.add_argument("--mean", help="per-channel mean, e.g. 0.485,0.456,0.406 (replaces the "
                        "preset's; unset parts become mean 0, std 1, scale 1)")
    images.add_argument("--std", help="per-channel std, e.g. 0.229,0.224,0.225")
    images.add_argument("--scale", help="pixel multiplier before the mean, e.g. 1/255")
    images.add_argument("--resize", type=int, help="short side before the centre crop")
    images.add_argument("--crop", type=int, help="centre crop: the model's input side")
    images.add_argument("--letterbox", type=int,
                        help="YOLO style: long side to N, padded to N x N with grey")
    images.add_argument("--layout", default="NCHW", choices=("NCHW", "NHWC"))
    images.add_argument("--strict", action="store_true", help="non-image files are errors")
    text = p.add_argument_group("text")
    text.add_argument("--tokenizer", type=Path, help="tokenizer dir (default: the model's)")
    text.add_argument("--column", default="text")
    text.add_argument("--label-column")
    text.add_argument("--window", type=int, help="cut the whole file into windows of this many "
                      "tokens (one item each) instead of one per line (default for a GGUF or a "
                      "causal LM: 128, as deploy)")
    roles = p.add_argument_group(
        "input roles (streaming models; .npz of [streams, steps, *chunk] per data input)")
    roles.add_argument("--state", action="append", metavar="IN=OUT", help="IN is a state fed "
                       "from output OUT of the previous step (zeros at a stream's start)")
    roles.add_argument("--constant", action="append", metavar="NAME=VALUE",
                       help="NAME is fixed for the deployment, e.g. sr=16000")
    roles.add_argument("--batch-axis", action="append", metavar="NAME=AXIS",
                       help="NAME's batch axis, where it is not 0 (states: read from the model)")
    roles.add_argument("--threshold", type=float, help="a streaming detector's decision: its "
                       "one-value output above this (default 0.5)")
    roles.add_argument("--decision", metavar="OUTPUT", help="the output the threshold reads "
                       "(default: the one output with one value per item)")
    roles.add_argument("--chunk", type=int, metavar="N", help="a folder of .wav/.npy "
                       "recordings as streams: N samples per step")
    roles.add_argument("--sample-rate", type=int, metavar="R",
                       help="the recordings' sample rate (others are refused, not resampled)")


def reader_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The reader options given on the command line (the deploy picks those its data takes)."""
    flags = {**_IMAGE_OPTIONS, "tokenizer": "tokenizer", "column": "column",
             "label_column": "label_column", "window": "window", "state": "state",
             "constant": "constant", "batch_axis": "batch_axis", "threshold": "threshold",
             "decision": "decision", "chunk": "chunk", "sample_rate": "sample_rate"}
    values = {key: getattr(args, flag) for flag, key in flags.items()}
    values["strict"] = args.strict or None
    return {k: str(v) if isinstance(v, Path) else v for k, v in values.items() if v is not None}
