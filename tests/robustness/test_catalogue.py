"""The catalogue of bad inputs: each one, given to the `frugal` CLI, must raise its specific
typed error with advice (checked through the command's function), and the CLI must print one
`error:` message, exit 2 and show no traceback (checked through `main`)."""

from __future__ import annotations

import dataclasses
import errno
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from frugalml.cli import _parser, main
from frugalml.demo import default_model_dir
from frugalml.errors import (
    BundleError,
    CalibrationError,
    ExportError,
    FrugalError,
    InputError,
    QuantizationError,
    TargetError,
)
from tests.helpers import tiny_onnx
from tests.robustness import makers as mk

MINILM = str(default_model_dir())


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad input: how to build it (returns CLI argv), the error it must raise and a regex
    its message must match (the advice, not just the symptom)."""

    name: str
    build: Callable[[Path], list[str]]
    error: type[FrugalError]
    advice: str
    # Refused after the data was read and the model exported: what may stay (the
    # content-addressed cache and the data's descriptor, for the next run); nothing else.
    after_work: tuple[str, ...] = ()


def _export(src: Callable[[Path], Path], *extra: str) -> Callable[[Path], list[str]]:
    return lambda t: ["export", str(src(t)), "--out", str(t / "out"), *extra]


def _calibrate(data: Callable[[Path], Path], *extra: str,
               model: Callable[[Path], str] | None = None) -> Callable[[Path], list[str]]:
    def build(t: Path) -> list[str]:
        onnx_path = t / "m" / "tiny.onnx"
        tiny_onnx(onnx_path)
        return ["calibrate", str(data(t)), "--model", model(t) if model else str(onnx_path),
                "--out", str(t / "out"), *extra]
    return build


def _with_boxes(folder: Path, content: str) -> Path:
    mk.text_file(folder / "boxes.json", content)
    return folder


def _quantize_tiny(*extra: str) -> Callable[[Path], list[str]]:
    """`frugal quantize` of the one-MatMul model on 8 calibration / 8 evaluation items."""
    def build(t: Path) -> list[str]:
        tiny_onnx(t / "m" / "tiny.onnx")
        mk.write_npz(t / "d.npz", x=np.random.default_rng(0).random((16, 3), np.float32))
        assert main(["calibrate", str(t / "d.npz"), "--model", str(t / "m" / "tiny.onnx"),
                     "--out", str(t / "cal"), "--num", "8"]) == 0
        return ["quantize", str(t / "m" / "tiny.onnx"), "--data", str(t / "cal"), "--out",
                str(t / "q"), *extra]
    return build


def _deploy(*extra: str, target: Callable[[Path], str] | None = None
            ) -> Callable[[Path], list[str]]:
    from frugalml.calibration import rotten_tomatoes_file

    return lambda t: ["deploy", MINILM, str(rotten_tomatoes_file()), "--out", str(t / "out"),
                      "--target", target(t) if target else "auto", *extra]


def _deploy_tiny(data: Callable[[Path], Path] | None = None, *, task: str | None = None,
                 extra: tuple[str, ...] = ()) -> Callable[[Path], list[str]]:
    """`frugal deploy` of the one-MatMul model on 16 random rows (8 calibrate, 8 evaluate)."""
    def build(t: Path) -> list[str]:
        tiny_onnx(t / "m" / "tiny.onnx")
        arrays = (data(t) if data else mk.write_npz(
            t / "d.npz", x=np.random.default_rng(0).random((16, 3), np.float32)))
        return ["deploy", str(t / "m" / "tiny.onnx"), str(arrays), "--out", str(t / "out"),
                "--num", "8", "--eval-items", "8", "--profile-runs", "5",
                *(("--task", task) if task else ()), *extra]
    return build


def _target_file(content: str) -> Callable[[Path], str]:
    return lambda t: str(mk.text_file(t / "target.json", content))


def _bundle(breakage: Callable[[Path], None], *, cmd: str = "verify",
            extra: Callable[[Path], list[str]] = lambda t: []) -> Callable[[Path], list[str]]:
    def build(t: Path) -> list[str]:
        bundle = mk.tiny_bundle(t / "bundle")
        breakage(bundle)
        return [cmd, str(bundle), *extra(t)]
    return build


def _run_with(**arrays: np.ndarray) -> Callable[[Path], list[str]]:
    return _bundle(lambda b: None, cmd="run",
                   extra=lambda t: ["--input", str(mk.write_npz(t / "in.npz", **arrays))])


def _missing(key: str) -> Callable[[dict], None]:
    return lambda m: m.pop(key)


def _set(key: str, value: object) -> Callable[[dict], None]:
    return lambda m: m.__setitem__(key, value)


def _truncated_onnx(t: Path) -> Path:
    src = t / "m" / "tiny.onnx"
    tiny_onnx(src)
    src.write_bytes(src.read_bytes()[:40])
    return src


def _png_named_onnx(path: Path) -> Path:
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    return path


def _checker_fails(t: Path) -> Path:
    import onnx

    proto = tiny_onnx(t / "m" / "tiny.onnx")
    proto.graph.node[0].input[0] = "undefined_tensor"
    onnx.save_model(proto, str(t / "m" / "tiny.onnx"))
    return t / "m" / "tiny.onnx"


def _hf_dir(t: Path, config: dict) -> Path:
    folder = t / "hf"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _pickled_weights(t: Path) -> Path:
    """A BERT directory whose pytorch_model.bin would create a file if it were unpickled."""
    import os
    import pickle

    folder = _hf_dir(t, {**json.loads((Path(MINILM) / "config.json").read_text()),
                         "num_hidden_layers": 1, "hidden_size": 32, "intermediate_size": 64,
                         "num_attention_heads": 2})
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt",
                 "special_tokens_map.json"):
        shutil.copy(Path(MINILM) / name, folder / name)

    class Payload:
        def __reduce__(self) -> tuple:
            return (os.system, (f"touch {t / 'PAYLOAD_RAN'}",))

    (folder / "pytorch_model.bin").write_bytes(pickle.dumps({"w": Payload()}))
    return folder


def _ir_half(t: Path, keep: str) -> Path:
    xml = mk.ir_pair(t)
    other = xml.with_suffix(".bin" if keep == ".xml" else ".xml")
    other.unlink()
    return xml.with_suffix(keep)


def _ir_corrupt(t: Path) -> Path:
    xml = mk.ir_pair(t)
    xml.write_text(xml.read_text()[:200])
    return xml


def _image_folder_empty(t: Path) -> Path:
    (t / "images").mkdir()
    return t / "images"


def _object_samples(b: Path) -> None:
    pickled = mk.pickled_npz(b.parent / "s.npz", "input.x")
    mk.replace_file(b, "samples.npz", pickled.read_bytes(), rehash=True)


def _symlinked_model(b: Path) -> None:
    outside = b.parent / "outside.onnx"
    shutil.copy(b / "model.onnx", outside)
    (b / "model.onnx").unlink()
    (b / "model.onnx").symlink_to(outside)



_CACHE = ("cache", "calibration")
CASES = [
    # export: files that are not what they claim to be
    Case("onnx-missing", _export(lambda t: t / "nowhere.onnx"), ExportError, "does not exist"),
    Case("onnx-empty", _export(lambda t: mk.text_file(t / "e.onnx", "")), ExportError,
         "empty|holds no graph"),
    Case("onnx-truncated", _export(_truncated_onnx), ExportError, "truncated"),
    Case("onnx-wrong-magic", _export(lambda t: _png_named_onnx(t / "p.onnx")), ExportError,
         "not a readable ONNX model.*starts like a PNG image"),
    Case("onnx-checker", _export(_checker_fails), ExportError, "fails the ONNX checker"),
    Case("extdata-dotdot", _export(lambda t: mk.external_data_model(t / "m", "../../x.bin")),
         ExportError, "outside its directory"),
    Case("extdata-absolute", _export(lambda t: mk.external_data_model(t / "m", "/etc/hostname")),
         ExportError, "outside its directory|absolute"),
    Case("extdata-symlink", _export(lambda t: mk.symlink_escape(t / "m", t / "secret.bin")),
         ExportError, "outside its directory"),
    Case("extdata-missing", _export(lambda t: mk.external_data_model(t / "m", "gone.bin")),
         ExportError, "missing"),
    Case("ir-xml-without-bin", _export(lambda t: _ir_half(t, ".xml"), "--format", "openvino"),
         ExportError, r"model\.bin is missing.*together"),
    Case("ir-bin-without-xml", _export(lambda t: _ir_half(t, ".bin"), "--format", "openvino"),
         ExportError, r"model\.xml is missing.*together"),
    Case("ir-corrupt", _export(_ir_corrupt, "--format", "openvino"), ExportError,
         "cannot read the IR.*corrupt, truncated"),
    Case("ir-to-onnx", _export(lambda t: mk.ir_pair(t)), ExportError,
         "cannot be converted to ONNX.*--format openvino"),
    Case("hf-no-config", _export(lambda t: _image_folder_empty(t)), ExportError,
         "no config.json"),
    Case("hf-remote-code", _export(lambda t: _hf_dir(t, {"model_type": "custom", "auto_map": {
        "AutoModel": "modeling_evil.EvilModel"}})), ExportError,
         r"modeling_evil\.py.*never runs code"),
    Case("hf-pickled-weights", _export(_pickled_weights), ExportError,
         "weights-only loader refused.*safetensors"),
    # calibration data
    Case("calib-empty-folder", _calibrate(_image_folder_empty), CalibrationError, "no items"),
    Case("calib-pickled-npy", _calibrate(lambda t: mk.pickled_npy(t / "x.npy")),
         CalibrationError, "never loads"),
    Case("calib-nan", _calibrate(lambda t: mk.write_npz(
        t / "d.npz", x=np.where(np.eye(8, 3) > 0, np.nan, 1).astype(np.float32))),
         CalibrationError, r"NaN/Inf.*Clean or drop"),
    Case("calib-inf", _calibrate(lambda t: mk.write_npz(
        t / "d.npz", x=np.full((8, 3), np.inf, np.float32))), CalibrationError, "NaN/Inf"),
    Case("calib-too-small", _calibrate(lambda t: mk.write_npz(
        t / "d.npz", x=np.random.default_rng(0).random((5, 3), np.float32)), "--num", "10"),
         CalibrationError, "holds 5 distinct items"),
    Case("calib-wrong-name", _calibrate(lambda t: mk.write_npz(
        t / "d.npz", image=np.ones((8, 3), np.float32) * np.arange(8)[:, None]), "--num", "4"),
         CalibrationError, r"'x'"),
    Case("calib-wrong-dtype", _calibrate(lambda t: mk.write_npz(
        t / "d.npz", x=np.arange(24).reshape(8, 3)), "--num", "4"), CalibrationError,
         "int64.*float32"),
    Case("calib-wrong-shape", _calibrate(lambda t: mk.write_npz(
        t / "d.npz", x=np.arange(40, dtype=np.float32).reshape(8, 5)), "--num", "4"),
         CalibrationError, "shape"),
    Case("calib-truncated-npz", _calibrate(lambda t: mk.text_file(t / "d.npz", "PK\x03\x04")),
         CalibrationError, "truncated"),
    Case("calib-unknown-kind", _calibrate(lambda t: mk.text_file(t / "d.parquet", "x")),
         CalibrationError, "use a folder of images, .npy/.npz arrays"),
    Case("calib-text-column", _calibrate(lambda t: mk.text_file(t / "r.csv", "review\ngood\n"),
                                         model=lambda t: MINILM),
         CalibrationError, r"no column 'text'.*\['review'\]"),
    Case("calib-unknown-color", _calibrate(lambda t: mk.image_folder(t / "imgs"), "--color",
                                           "rgba"), CalibrationError, "use rgb or bgr"),
    Case("calib-mean-length", _calibrate(lambda t: mk.image_folder(t / "imgs"), "--mean",
                                         "0.4,0.5"), CalibrationError,
         "--mean has 2 values; give 1 or 3"),
    Case("calib-letterbox-misfit", _calibrate(
        lambda t: mk.image_folder(t / "imgs"), "--letterbox", "40", "--num", "3",
        model=lambda t: str(mk.conv_model(t / "conv.onnx", side=32))), CalibrationError,
         r"\(1, 3, 40, 40\), the model expects \('n', 3, 32, 32\).*--letterbox"),
    Case("calib-letterbox-and-crop", _calibrate(lambda t: mk.image_folder(t / "imgs"),
                                                "--letterbox", "32", "--crop", "32"),
         CalibrationError, "takes no --crop or --resize"),
    Case("calib-scale-zero", _calibrate(lambda t: mk.image_folder(t / "imgs"), "--scale", "0"),
         CalibrationError, "--scale '0' must be one positive number"),
    Case("calib-boxes-malformed", _calibrate(lambda t: _with_boxes(mk.image_folder(
        t / "imgs"), '{"boxes_of_file": {"img0.png": [[1, 2, 3]]}}')), CalibrationError,
         r"Cannot read boxes.*\[\[x1, y1, x2, y2, class\]"),
    Case("quantize-task-does-not-fit", _quantize_tiny("--task", "object-detection"),
         QuantizationError, "needs a YOLO-style output.*or NMS outputs named boxes"),
    # recipes, budgets and targets (all refused before the long steps start)
    Case("candidate-unknown", _deploy("--candidates", "int8-static,int3"), QuantizationError,
         "Unknown candidate int3; choose default, all, or names among fp32, .*int8-static"),
    Case("deploy-time-budget-malformed", _deploy("--time-budget", "soon"), FrugalError,
         "'soon' is not a duration: write e.g. 20m"),
    Case("budget-impossible-cosine", _deploy("--min-cosine", "1.5"), QuantizationError,
         "cannot be met.*at most 1"),
    Case("budget-negative-drop", _deploy("--max-drop", "-1"), QuantizationError,
         "cannot be met.*beat FP32"),
    Case("deploy-zero-runs", _deploy("--profile-runs", "0"), FrugalError,
         r"out of range: \{'profile_runs': 0\}"),
    Case("target-unknown", _deploy(target=lambda t: "x86-avx1024"), TargetError,
         "Unknown target 'x86-avx1024'. Known targets"),
    Case("target-file-not-json", _deploy(target=_target_file("{name: edge")), TargetError,
         "not valid JSON"),
    Case("target-file-missing", _deploy(target=lambda t: str(t / "none.json")), TargetError,
         "Cannot read target file"),
    Case("target-file-bad-field", _deploy(target=_target_file(json.dumps(
        {**mk.TARGET_FIELDS, "int8_format": "s4s4"}))), TargetError, "int8_format 's4s4'"),
    Case("target-file-unknown-field", _deploy(target=_target_file(json.dumps(
        {**mk.TARGET_FIELDS, "plugin": "evil.so"}))), TargetError, r"unknown fields \['plugin'\]"),
    Case("target-file-no-backend", _deploy(target=_target_file(json.dumps(
        {k: v for k, v in mk.TARGET_FIELDS.items() if k != "backend"}))), TargetError,
         r"missing fields \['backend'\]"),
    Case("deploy-data-does-not-fit", _deploy_tiny(lambda t: mk.write_npz(
        t / "d.npz", x=np.random.default_rng(0).random((16, 5), np.float32))),
         CalibrationError, "x.*3"),
    Case("deploy-task-not-inferable", _deploy_tiny(task="object-detection"), QuantizationError,
         "needs a YOLO-style output", after_work=_CACHE),
    Case("deploy-no-candidate-in-budget", _deploy_tiny(
        extra=("--max-size-ratio", "0.01", "--require-quantized")), QuantizationError,
         "No quantized candidate shipped.*size vs FP32.*--require-quantized",
         after_work=(*_CACHE, "bundles", "deploy.json", "report.md", "report.html")),
    Case("deploy-time-budget-ran-out", _deploy_tiny(extra=("--time-budget", "0.001")),
         QuantizationError, "time budget \\(0 s\\) ran out before any candidate",
         after_work=_CACHE),
    # bundles: missing, malformed, tampered
    Case("bundle-missing", lambda t: ["verify", str(t / "nowhere")], BundleError,
         "does not exist"),
    Case("bundle-no-manifest", _bundle(lambda b: (b / "manifest.json").unlink()), BundleError,
         "no manifest.json"),
    Case("manifest-not-json", _bundle(lambda b: mk.text_file(b / "manifest.json", "{oops")),
         BundleError, "corrupt or from an unsupported version"),
    Case("manifest-schema-99", _bundle(lambda b: mk.edit_manifest(b, _set("schema_version", 99))),
         BundleError, "schema_version 99.*upgrade frugalml"),
    Case("manifest-missing-field", _bundle(lambda b: mk.edit_manifest(b, _missing("inputs"))),
         BundleError, "field 'inputs' is missing"),
    Case("manifest-wrong-type", _bundle(lambda b: mk.edit_manifest(b, _set("files", []))),
         BundleError, "field 'files' has type list"),
    Case("manifest-model-outside", _bundle(lambda b: mk.edit_manifest(
        b, _set("model_file", "../elsewhere.onnx"))), BundleError, "not among the hashed files"),
    Case("bundle-hash-mismatch", _bundle(lambda b: mk.flip_byte(b / "model.onnx")), BundleError,
         "model.onnx: sha256 differs.*Rebuild"),
    Case("bundle-missing-file", _bundle(lambda b: (b / "samples.npz").unlink()), BundleError,
         "samples.npz: missing"),
    Case("bundle-extra-file", _bundle(lambda b: mk.text_file(b / "run_me.py", "print(1)")),
         BundleError, "run_me.py: not listed in the manifest"),
    Case("bundle-symlink-escape", _bundle(_symlinked_model), BundleError,
         "points outside the bundle"),
    Case("bundle-pickled-samples", _bundle(_object_samples), BundleError,
         "Cannot read the bundle's samples"),
    Case("bundle-corrupt-model-rehashed", _bundle(lambda b: mk.replace_file(
        b, "model.onnx", b"\x08\x07garbage", rehash=True)), BundleError,
         "ONNX Runtime cannot load"),
    Case("bundle-target-not-here", _bundle(lambda b: mk.edit_manifest(
        b, lambda m: m["target"].__setitem__("required_features", ["sve2_not_here"]))),
         TargetError, "needs CPU features sve2_not_here.*frugal targets"),
    Case("verify-digest-mismatch", _bundle(lambda b: None, extra=lambda t: [
        "--digest", "0" * 64]), BundleError, "not the expected 0000.*Do not run it"),
    # inputs given to a bundle
    Case("input-wrong-name", _run_with(image=np.ones((2, 3), np.float32)), InputError,
         r"unknown: \['image'\].*missing: \['x'\]"),
    Case("input-wrong-rank", _run_with(x=np.ones((2, 3, 1), np.float32)), InputError,
         r"\(3-D\); the model expects 2-D \(batch, 3\).*array\[None\]"),
    Case("input-wrong-dtype", _run_with(x=np.ones((2, 3), np.float64)), InputError,
         r"dtype float64.*astype\(np.float32\)"),
    Case("input-wrong-dim", _run_with(x=np.ones((2, 4), np.float32)), InputError,
         "axis 1 must be 3"),
    Case("input-file-missing", _bundle(lambda b: None, cmd="run",
                                       extra=lambda t: ["--input", str(t / "none.npz")]),
         FrugalError, "Cannot read inputs"),
    Case("input-file-pickled", _bundle(lambda b: None, cmd="run", extra=lambda t: [
        "--input", str(mk.pickled_npz(t / "in.npz", "x"))]), FrugalError, "Cannot read inputs"),
    # reports
    Case("report-unknown-format", lambda t: ["report", str(t), "--out", str(t / "r"),
                                             "--format", "pdf"], FrugalError,
         r"Unknown report format\(s\) \['pdf'\]"),
    Case("compare-corrupt-profile", lambda t: ["compare", str(mk.text_file(t / "a.json", "[")),
                                               str(mk.text_file(t / "b.json", "{}"))],
         FrugalError, "a.json"),
]


def test_the_catalogue_has_at_least_forty_cases() -> None:
    assert len(CASES) >= 40 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_gets_a_typed_error_with_advice(case: Case, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    argv = case.build(tmp_path)
    args = _parser().parse_args(argv)
    with pytest.raises(case.error, match=re.compile(case.advice, re.S)):
        args.fn(args)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    if case.after_work:  # progress lines came first; the error is the last thing said
        err = err[err.index("\nerror: ") + 1:] if "\nerror: " in err else err
        left = sorted(p.name for p in (tmp_path / "out").iterdir())
        assert set(left) <= set(case.after_work), f"a failed deploy left {left}"
    else:
        assert not (tmp_path / "out").exists(), "a failed step left output behind"
    assert err.startswith("error: ") and "Traceback" not in err, err
    assert re.search(case.advice, err, re.S), err
    assert not (tmp_path / "PAYLOAD_RAN").exists(), "a pickle payload ran"


def test_out_of_disk_while_writing_a_bundle_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC half-way through writing the model (simulated): typed error, no bundle, no temp."""
    def full_disk(src: object, dst: object, **kwargs: object) -> None:
        Path(str(dst)).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(shutil, "copyfile", full_disk)
    with pytest.raises(FrugalError, match="No space left on device.*Nothing was written"):
        mk.tiny_bundle(tmp_path / "bundle")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle-src"]


def test_read_only_output_directory(tmp_path: Path, readonly_dir: Path,
                                    capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "tiny.onnx"
    tiny_onnx(src)
    assert main(["export", str(src), "--out", str(readonly_dir / "out")]) == 2
    err = capsys.readouterr().err
    assert re.search(r"Could not write .*Read-only file system|Permission denied", err), err
    assert "choose a writable output directory" in err and "Traceback" not in err
    assert list(readonly_dir.iterdir()) == []
