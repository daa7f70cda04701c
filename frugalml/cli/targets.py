"""`frugal compile`: the target-facing command, kept beside cli.py's dispatch."""

from __future__ import annotations

import argparse
from pathlib import Path

from frugalml.runtime.backends import names as backend_names
from frugalml.runtime.formats import OPENVINO, ORT, model_format


def cmd_compile(args: argparse.Namespace) -> None:
    """Build the target's bundle(s), verify them here, gate speed where native."""
    from frugalml.cli import _print
    from frugalml.cli.quantize import _data
    from frugalml.core.progress import Steps
    from frugalml.targets.compile import COMPILE_RECORD, compile_model

    data = _data(args.data)
    samples = next(data.batches("evaluation", batch_size=args.samples))[0]
    steps = Steps(quiet=args.json)
    with steps.step(f"compile {args.model} for {args.target}", spinner=False):
        roles = getattr(data, "roles", None)  # stream data: the roles go into the bundles
        result = compile_model(args.model, args.out, target=args.target, samples=samples,
                               fp32=args.fp32, name=args.name, threads=args.threads,
                               steps=steps, backend=args.backend,
                               roles=roles.to_dict() if roles else None)
    lines = [f"{p}: {path}\n  {_verification_line(result.verification[p])}"
             for p, path in result.bundles.items()]
    if result.speed_gate is not None:
        lines.append(f"speed gate: {result.speed_gate['why']}")
    elif len(result.bundles) > 1:
        lines.append("speed gate: not measured (the target does not run natively here)")
    lines.append(f"default for {result.target}: {result.default} "
                 f"({result.bundles[result.default]}); record: {args.out / COMPILE_RECORD}")
    _print(result.to_dict(), args.json, lines)


def cmd_verify(args: argparse.Namespace) -> None:
    """Hashes, target and samples; a bundle for a target this host does not run natively is
    checked by what can run it here (desktop ONNX Runtime for phone .ort files) or refused
    with "not verified here" and what is missing."""
    from frugalml.cli import _print
    from frugalml.errors import TargetError
    from frugalml.runtime import load, manifest_digest

    try:
        with load(args.bundle, expected_digest=args.digest, backend=args.backend) as model:
            check = {"status": "verified", "how": "natively", **model.self_check()}
    except TargetError as e:
        check = _verify_elsewhere(args.bundle, args.digest, args.backend, args.json)
        if check["status"] != "verified":
            raise TargetError(f"{e}\nNot verified here: {check['why']}.") from e
    pinned = manifest_digest(args.bundle)
    _print({"bundle": str(args.bundle), "ok": True, "manifest_sha256": pinned,
            "digest_checked": args.digest is not None, **check}, args.json,
           [f"ok: {args.bundle} (hashes, target; {_verification_line(check)})",
            f"manifest sha256 {pinned}"
            + (" (matches --digest)" if args.digest else
               " (pin it: frugal verify BUNDLE --digest <sha256>)")])


def _verify_elsewhere(bundle: Path, digest: str | None, backend: str | None,
                      quiet: bool) -> dict:
    """Integrity first, then the target's other ways of being checked here."""
    import dataclasses

    from frugalml.core.progress import Steps
    from frugalml.errors import TargetError
    from frugalml.runtime.bundle import read_manifest, verify_files
    from frugalml.targets.compile import verify_here
    from frugalml.targets.profiles import TARGETS, QuantFormat, Target

    manifest = read_manifest(bundle, digest)
    verify_files(bundle, manifest)
    need = manifest.target
    artifact = {ORT: "ort", OPENVINO: "openvino-ir"}.get(model_format(manifest.model_file),
                                                         "onnx")
    target = TARGETS.get(need.name) or Target(
        name=need.name, machine=need.machine, required_features=need.required_features,
        backend=need.backend, int8_format=QuantFormat.S8S8, description="from the manifest",
        device=need.device, artifact=artifact)
    if (target.machine, target.device, target.artifact) != (need.machine, need.device, artifact):
        target = dataclasses.replace(target, machine=need.machine, device=need.device,
                                     artifact=artifact)
    try:
        return verify_here(bundle, target, steps=Steps(quiet=quiet), backend=backend)
    except TargetError as e:
        return {"status": "not verified here", "why": str(e)}


def _verification_line(check: dict) -> str:
    if check["status"] == "verified":
        ran = check.get("kernels_ran")
        kernels = (f"; compute nodes ran {ran['quantized']} quantized, {ran['float']} float"
                   if ran else "")
        return (f"verified {check['how']}: samples min cosine {check['min_cosine']:.6f}, "
                f"max abs error {check['max_abs_error']:.3g}{kernels}")
    return f"NOT VERIFIED HERE: {check['why']}"


def add_compile_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of `frugal compile`."""
    p.add_argument("model", type=Path, help="an .onnx file, or a `frugal quantize`/`frugal "
                   "export` folder holding model.onnx")
    p.add_argument("--target", required=True, help="a target name (see `frugal targets`) or "
                   "a target file (.json)")
    p.add_argument("--data", type=Path, required=True,
                   help="a `frugal calibrate` folder: its evaluation items become the samples")
    p.add_argument("--out", type=Path, required=True, help="folder for the bundles")
    p.add_argument("--fp32", type=Path, help="the FP32 model a quantized one came from: built "
                   "too, and timed against it where the target runs natively")
    p.add_argument("--name", help="bundle name prefix (default: each model's folder name)")
    p.add_argument("--samples", type=int, default=8, help="sample inputs kept in the bundle")
    p.add_argument("--threads", type=int, default=1, help="threads for the speed gate")
    p.add_argument("--backend", choices=backend_names(),
                   help="build for this backend instead of the target's (CPU targets; "
                   "openvino: an IR with a compiled-model cache)")
