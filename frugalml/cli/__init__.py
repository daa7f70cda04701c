"""The `frugal` command line: each stage callable alone, plus `deploy` and `demo` for the path.

The command modules import the stages inside their functions, on purpose: `frugal --help`,
`frugal targets` and a mistyped option must answer without loading torch, NNCF, OpenVINO and
the exporters behind every other command (the one place first-party imports stay lazy, with
the runtime's)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from frugalml.errors import FrugalError


def _print(result: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    print(json.dumps(result, indent=2, default=str) if as_json else "\n".join(lines))


def _read_npz(path: Path, what: str) -> dict[str, Any]:
    import zipfile

    import numpy as np

    if not path.is_file():
        raise FrugalError(f"Cannot read {what} from {path}: it does not exist. Pass an .npz "
                          "file of arrays named like the model's inputs.")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        why = ("it holds Python objects, which frugalml never unpickles"
               if "allow_pickle" in str(e) else str(e).rstrip("."))
        raise FrugalError(f"Cannot read {what} from {path}: {why}. Pass an .npz file of arrays "
                          "named like the model's inputs (np.savez).") from e


def _cmd_export(args: argparse.Namespace) -> None:
    from frugalml.core.progress import Steps
    from frugalml.export import export

    validation = [_read_npz(args.inputs, "validation inputs")] if args.inputs else []
    with Steps(quiet=args.json).step(f"export {args.model} to {args.format}"):
        record = export(args.model, args.out, format=args.format, opset=args.opset,
                        fp16=args.fp16, task=args.task, validation=validation,
                        simplify_graph=not args.no_simplify)
    worst = min((c.min_cosine for c in record.checks), default=float("nan"))
    error = max((c.max_abs_error for c in record.checks), default=float("nan"))
    lines = [f"wrote {record.path} ({record.size_bytes / 1e6:.1f} MB, {record.seconds:.1f} s)",
             f"exporter {record.exporter}, opset {record.opset}"
             f"{', simplified' if record.simplified else ''}"
             f"{', FP16 weights' if record.fp16_weights else ''}",
             f"checked on {record.inputs_used} real inputs: max abs error {error:.3g}, "
             f"min cosine {worst:.7f}" if record.inputs_used else
             "not compared with anything: an .onnx file is its own reference (it was checked, "
             "shape-inferred and loaded in ONNX Runtime). Pass --inputs X.npz (real inputs "
             "named like the model's) to also simplify it and check the result on them"]
    lines += [f"fell back after {a}" for a in record.attempts]
    _print(record.to_dict(), args.json, lines)


def _cmd_run(args: argparse.Namespace) -> None:
    import numpy as np

    from frugalml.runtime import load

    model = load(args.bundle, backend=args.backend)
    feeds = _read_npz(args.input, "inputs")
    outputs = model.run(feeds)
    if args.output:
        np.savez(args.output, **outputs)
    _print({k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in outputs.items()},
           args.json, [f"{k}: {v.dtype} {tuple(v.shape)}" for k, v in outputs.items()])


def _cmd_targets(args: argparse.Namespace) -> None:
    from frugalml.deploy.candidates import not_offered
    from frugalml.errors import TargetError
    from frugalml.runtime.host import describe_host, read_host
    from frugalml.targets import TARGETS, detect, support

    host = read_host()
    table = support(host)
    try:
        best: str | None = detect(host).name
    except TargetError:
        best = None
    caps = host.capabilities
    lines = [f"host: {describe_host(host.to_dict())} ({host.machine}, {host.logical_cores} "
             f"logical cores, L2 {host.l2_kib} KiB, L3 {host.l3_kib} KiB, hypervisor "
             f"{host.hypervisor}, governor {host.governor}); "
             f"ISA: {', '.join(f for f in _ISA_FLAGS if f in host.flags) or 'baseline'}",
             f"computes natively: {', '.join(caps.precisions)}; INT8 dot product: "
             f"{'AMX tiles' if caps.amx else 'yes' if caps.int8_dot else 'no (it can saturate)'}"]
    absent = {name: not_offered(t) for name, t in TARGETS.items()}
    for name, s in table.items():
        why = f" ({_RUNS_NOTE[s.runs.value]}{'; '.join(s.missing)})" if s.missing else ""
        lines += [f"{name:<15} {s.runs.value}{'  [best]' if name == best else ''}{why}",
                  f"{'':<15} {TARGETS[name].description}"]
        lines += [f"{'':<15} no {c}: {reason}" for c, reason in absent[name].items()]
    _print({"host": host.to_dict(), "best": best, "capabilities": caps.to_dict(),
            "targets": {n: {"runs": s.runs.value, "missing": list(s.missing),
                            "not_offered": absent[n], **TARGETS[n].to_dict()}
                        for n, s in table.items()}},
           args.json, lines)


_RUNS_NOTE = {"emulated": "under QEMU; natively it needs ",
              "desktop-check": "the .ort artifact runs in desktop ONNX Runtime; the device "
                               "needs ",
              "cannot run here": "missing "}
# ISA flags worth showing next to the CPU model: the ones that decide INT8 formats
_ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16",
              "avx512_bf16", "avx512_fp16", "asimd", "asimddp", "asimdhp", "bf16", "i8mm", "sve")


def _export_arguments(p: argparse.ArgumentParser) -> None:
    from frugalml.export.api import FORMATS
    from frugalml.export.exporters import DEFAULT_OPSET
    from frugalml.export.huggingface import TASKS

    p.add_argument("model", type=Path,
                   help="Hugging Face model directory, .onnx file, OpenVINO .xml, or .gguf")
    p.add_argument("--out", type=Path, required=True, help="output directory (replaced whole)")
    p.add_argument("--format", choices=FORMATS, default="onnx")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    p.add_argument("--fp16", action="store_true", help="FP16 weights in the OpenVINO IR")
    p.add_argument("--task", choices=TASKS, help="default: inferred from config.json")
    p.add_argument("--inputs", type=Path, help=".npz of real validation inputs (default: "
                   "sample texts or photographs prepared by the model's own preprocessor)")
    p.add_argument("--no-simplify", action="store_true", help="skip onnxslim simplification")


def _parser() -> argparse.ArgumentParser:
    from frugalml.cli import calibrate as cli_calibrate
    from frugalml.cli import deploy as cli_deploy
    from frugalml.cli import generate as cli_generate
    from frugalml.cli import measure as cli_measure
    from frugalml.cli import quantize as cli_quantize
    from frugalml.cli import sweep as cli_sweep
    from frugalml.cli import targets as cli_targets
    from frugalml.runtime.backends import names as backend_names

    parser = argparse.ArgumentParser(prog="frugal", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    commands: dict[str, tuple[Callable[[argparse.Namespace], None], str]] = {
        "demo": (cli_deploy.cmd_demo, "deploy the bundled model and data (the whole path)"),
        "export": (_cmd_export, "export a HF model dir or .onnx to ONNX / OpenVINO IR, validated"),
        "calibrate": (cli_calibrate.cmd_calibrate,
                      "split and fingerprint a calibration set for a model"),
        "quantize": (cli_quantize.cmd_quantize, "quantize to int8/w4a8/fp16, scored against FP32"),
        "diagnose": (cli_quantize.cmd_diagnose, "find the layers that break INT8 accuracy"),
        "report": (cli_measure.cmd_report, "render Profile JSONs into report.json/.md/.html"),
        "compare": (cli_measure.cmd_compare, "compare Profiles with the first; flag slowdowns"),
        "compile": (cli_targets.cmd_compile, "bundle a model for a target, verified here"),
        "deploy": (cli_deploy.cmd_deploy,
                   "try the candidate artifacts of a model, ship the fastest within budget"),
        "verify": (cli_targets.cmd_verify, "check a bundle's hashes, target and samples"),
        "run": (_cmd_run, "run a bundle on inputs from an .npz file"),
        "bench": (cli_measure.cmd_bench, "profile a bundle's latency on this host"),
        "generate": (cli_generate.cmd_generate, "generate text from a decoder bundle"),
        "targets": (_cmd_targets, "show which targets this host runs"),
        "sweep": (cli_sweep.cmd_sweep, "run a models x recipes x backends x targets grid on Ray"),
    }
    subs = {}
    for name, (fn, help_text) in commands.items():
        subs[name] = sub.add_parser(name, help=help_text)
        subs[name].set_defaults(fn=fn)
        subs[name].add_argument("--json", action="store_true", help="machine-readable output")
    cli_deploy.add_arguments(subs["deploy"], subs["demo"])
    _export_arguments(subs["export"])
    cli_calibrate.add_arguments(subs["calibrate"])
    cli_quantize.add_arguments(subs["quantize"], subs["diagnose"])
    cli_targets.add_compile_arguments(subs["compile"])
    cli_sweep.add_arguments(subs["sweep"])
    cli_measure.add_arguments(subs["report"], subs["compare"], subs["bench"])
    cli_generate.add_arguments(subs["generate"])
    for name in ("verify", "run"):
        subs[name].add_argument("bundle", type=Path)
    subs["verify"].add_argument("--digest", metavar="SHA256",
                                help="refuse the bundle unless manifest.json has this sha256")
    subs["verify"].add_argument("--backend", choices=backend_names(),
                                help="run the samples with this backend (default: the bundle's)")
    subs["run"].add_argument("--input", type=Path, required=True, help=".npz of inputs")
    subs["run"].add_argument("--output", type=Path, help="write outputs to this .npz")
    subs["run"].add_argument("--backend", choices=backend_names())
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: errors the user can act on become a message on stderr, never a traceback.

    FrugalError and OSError (a path, permission or full disk) exit 2; Ctrl-C exits 130 after
    the interrupted step has removed its partial output (see ``_atomic.staged``).
    """
    from frugalml.core.interrupt import install

    args = _parser().parse_args(argv)
    install()
    try:
        args.fn(args)
    except FrugalError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {e}. Check the path, its permissions and the free disk space.",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # one "interrupted" line if pressed twice
        print("interrupted: the step in progress was abandoned; no partial output was left "
              "at its destination. Run the command again to redo it.", file=sys.stderr)
        return 130
    return 0


def run() -> None:
    """`frugal` and ``python -m frugalml.cli``: :func:`main`, exit 130 on Ctrl-C (_interrupt)."""
    from frugalml.core.interrupt import exit_process

    exit_process(main())

