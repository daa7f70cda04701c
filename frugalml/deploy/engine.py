"""The deploy engine: one model, one data set, one or more targets -> the fastest artifact within
budget per target (or FP32 and why), as verified bundles, deploy.json and a report.

Stages: read the data (split, fingerprinted) -> export (checked against the source) -> infer
the task and the model's family -> per target: build and score each candidate against FP32
(cached by content), search mixed precision for one that misses, bundle and verify the in-budget
ones, time them against FP32 by the speed protocol where the target runs here -> select ->
report. `frugal deploy`, `frugal demo` and the sweep's stage calls all come through here.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from frugalml.core.progress import Steps
from frugalml.core.records import digest, write_json_atomic
from frugalml.deploy import outcome, plan
from frugalml.deploy.candidates import (
    FP32,
    FUSED,
    CandidateSpec,
    candidates_for,
    not_applicable,
    parse_choice,
)
from frugalml.deploy.data import model_file, open_data, signature_of
from frugalml.deploy.families import Family, get_family
from frugalml.deploy.plan import DeployOptions, resolve_targets, source_format
from frugalml.deploy.result import FAILED, SCORED, SKIPPED, CandidateResult, Search
from frugalml.deploy.search import curve, searchable
from frugalml.deploy.search import search as mixed_precision
from frugalml.deploy.select import select_elsewhere, select_native
from frugalml.deploy.stages import (
    export_cached,
    export_key,
    feeds_digest,
    fuse_cached,
    quantize_cached,
    quantize_key,
    source_digest,
)
from frugalml.deploy.timing import (
    measured_on,
    native_here,
    profile_pair,
    time_candidates,
    workload_ranking,
)
from frugalml.errors import CalibrationError, FrugalError, QuantizationError
from frugalml.export.model_info import ModelInfo
from frugalml.report.deploy_html import write_html
from frugalml.report.deploy_md import write_markdown
from frugalml.runtime.host import read_host
from frugalml.targets.compile import build_bundle, fp32_record
from frugalml.targets.samples import bundle_samples

SCHEMA_VERSION = 1
RECORD_NAME = "deploy.json"
# The share of --time-budget for building, scoring and searching candidates; the rest bundles,
# times and profiles them. SmolLM2 under --time-budget 5m spent 47 s after its budget on that
# (bundles 5 s, two fresh-process profiles 37 s) and timed no candidate, so FP32 shipped.
BUILD_SHARE = 0.8


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DeployResult:
    """Where everything went, and deploy.json's content."""

    out_dir: Path
    record: dict[str, Any]
    deploy_json: Path
    report_md: Path
    report_html: Path

    @property
    def shipped(self) -> dict[str, Path]:
        """Per target, the shipped bundle."""
        return {t: Path(r["bundle"]) for t, r in self.record["targets"].items() if r["bundle"]}


@dataclasses.dataclass(slots=True, kw_only=True)
class _Run:
    """What every stage of one deploy reads: options, progress, data, export, task."""

    options: DeployOptions
    steps: Steps
    out: Path
    name: str
    data: Any
    exported: Any
    model: ModelInfo                   # the export's facts, read once: every stage takes it
    samples: dict[str, Any]
    started: float
    fused: Any = None                  # the fused graph's ExportedModel, or why it failed

    @property
    def task(self) -> str:
        return self.model.task

    @property
    def family(self) -> str:
        return self.model.family

    @property
    def cache(self) -> Path:
        return self.out / "cache"

    def time_left(self) -> float:
        """Seconds of --time-budget left for anything (timing and profiles included)."""
        return self.options.time_budget_s - (time.monotonic() - self.started)

    @property
    def deadline(self) -> float:
        """When building and scoring candidates must stop (``time.monotonic()``'s clock): the
        rest of --time-budget is kept to bundle, time and profile them."""
        return self.started + BUILD_SHARE * self.options.time_budget_s

    def build_time_left(self) -> float:
        """Seconds left to build, score and search candidates."""
        return self.deadline - time.monotonic()

    @property
    def family_spec(self) -> Family:
        """The model family's record (candidates, limits, evaluation size, profiles)."""
        return get_family(self.family)

    @property
    def eval_items(self) -> int:
        """Items every candidate is scored on: the user's, else the family's default."""
        if self.options.eval_items is not None:
            return self.options.eval_items
        return self.family_spec.eval_items


def deploy(model: Any, data: Any, out_dir: Path, options: DeployOptions | None = None, *,
           example: Mapping[str, Any] | None = None, quiet: bool = False) -> DeployResult:
    """Run the whole path for ``model`` (HF dir, .onnx, OpenVINO .xml, .gguf, or a
    ``torch.nn.Module`` with ``example`` inputs) on ``data`` (image folder, .npy/.npz, text
    file, calibration descriptor, or a calibration set) for ``options.targets``.

    Raises:
        FrugalError: a bad option, model or data (before long work where it can be seen), or a
            stage every target needs (data, export) failed; QuantizationError with
            ``require_quantized`` when a target ships FP32.
    """
    options = options or DeployOptions()
    steps, out = Steps(quiet=quiet), Path(out_dir).resolve()
    targets = resolve_targets(options.targets)
    run = _prepare(model, data, options, example, steps, out)
    results = {}
    for target in targets:
        steps.note(f"target {target.name}: {target.description}")
        results[target.name] = _deploy_target(run, target)
    return _finish(run, results)


def _prepare(model: Any, data: Any, options: DeployOptions, example: Mapping[str, Any] | None,
             steps: Steps, out: Path) -> _Run:
    """Data, export, task and family: what every target's candidates start from."""
    started = time.monotonic()
    signature = signature_of(model)  # one session on the source: inputs, then the data check
    inputs = [n for n, _, _ in signature] if signature else plan.input_names(model, example)
    language_model = options.task == "language-model" or plan.language_model_source(model)
    with steps.step("read, split and fingerprint the data"):
        data_set, _ = open_data(data, inputs, options.data_options, signature=signature,
                                tokenizer=plan.tokenizer_dir(model), language_model=language_model,
                                calibration_items=options.calibration_items,
                                out_dir=out / "calibration", model=model_file(model))
    summary = data_set.summary()
    steps.note(f"  {summary['calibration_items']} calibration / {summary['evaluation_items']} "
               f"evaluation items, fingerprint {data_set.fingerprint[:12]}")
    feeds = next(data_set.batches("evaluation", batch_size=options.sample_items))[0]
    source = source_digest(model)
    with_past = plan.export_task(model, language_model)
    with steps.step("export and check against the source"):
        exported, hit = export_cached(
            model, out / "cache",
            export_key(source, feeds_digest([feeds]), with_past) if source else None,
            validation=[feeds], example=example, task=with_past)
    worst = min((c.min_cosine for c in exported.checks), default=float("nan"))
    steps.note(f"  {'cached; ' if hit else ''}{exported.exporter}, min cosine to the source "
               f"{worst:.7f} on {exported.inputs_used} real inputs")
    info = plan.describe(exported, data_set, options.task, model, source)
    steps.note(f"  task {info.task}, family {info.family} ({info.structure} graph)")
    return _Run(options=options, steps=steps, out=out, name=options.name or plan.model_name(model),
                data=data_set, exported=exported, model=info,
                samples=_samples(exported.path, feeds), started=started)


def _samples(model: Path, feeds: Mapping[str, Any]) -> dict[str, Any]:
    """The bundles' sample inputs: evaluation items, or for a KV-cache decoder the first
    window continued after a cache (see :mod:`frugalml.targets.samples`)."""
    return bundle_samples(model, feeds)


def _deploy_target(run: _Run, target: Any) -> dict[str, Any]:
    """Candidates for one target: built, scored, bundled, timed; then the choice."""
    choice = parse_choice(run.options.candidates)
    fmt = source_format(run.model)
    specs = candidates_for(run.family, target, choice, source_format=fmt)
    for name in not_applicable(run.family, target, choice, source_format=fmt):
        run.steps.note(f"  {name} does not apply to a {run.family} model on {target.name}")
    entries = [_candidate(run, spec, target) for spec in specs]
    if entries and all(e.status == SKIPPED for e in entries):
        raise QuantizationError(
            f"The time budget ({run.options.time_budget_s:.0f} s) ran out before any candidate "
            f"for {target.name} was built (the data and export took "
            f"{time.monotonic() - run.started:.0f} s). Give a larger --time-budget; cached "
            "stages are reused on the next run.")
    reference = next((e.reference for e in entries if e.reference is not None), None)
    fp32 = outcome.fp32_entry(run.exported.path, run.exported.size_bytes, reference)
    _bundle(run, target, fp32, run.exported.path.parent,
            record=fp32_record({"accuracy": reference,
                                "input_roles": run.data.summary().get("roles")}) or None)
    for entry in entries:
        if entry.status == SCORED and entry.accuracy and entry.accuracy.budget_met:
            _bundle(run, target, entry, Path(str(entry.model)).parent)
    native, ranking = native_here(target), None
    if native:
        time_candidates(run, fp32, entries)
        ranking = workload_ranking(entries, run.options.workload)
        shipped, why = select_native(entries)
        why += f"; {measured_on()}"
    else:
        shipped, why = select_elsewhere(entries, fp32.verified or "")
    run.steps.note(f"  ships {shipped}: {why}")
    chosen = next(e for e in [fp32, *entries] if e.name == shipped)
    profiles = profile_pair(run, fp32, chosen) if native else {}
    decoding = profile_pair(run, fp32, chosen, decoding=True) if (
        native and run.family_spec.generates) else {}
    return {"shipped": shipped, "why": why, "bundle": chosen.bundle, "native": native,
            "target": target.to_dict(),
            "candidates": [c.to_dict() for c in (fp32, *entries)], "profiles": profiles,
            **({"decode_profiles": decoding} if decoding else {}),
            **({"workload_ranking": ranking} if ranking else {})}


def _candidate(run: _Run, spec: CandidateSpec, target: Any) -> CandidateResult:
    """Build and score one candidate (the mixed-precision search if it misses by accuracy)."""
    if run.build_time_left() <= 0:
        run.steps.note(f"  {spec.name}: skipped, the time budget "
                       f"({run.options.time_budget_s:.0f} s) ran out")
        return outcome.not_scored(spec, SKIPPED, "the time budget ran out before it")
    try:
        record, hit = _quantize(run, spec, target)
    except FrugalError as e:
        return _failed(run, spec, e)
    plausible_reference(record.accuracy)  # stops the deploy: no candidate can be judged
    try:
        entry = outcome.scored(spec, record, hit)
        if searchable(spec, entry, run.build_time_left()):
            before = entry.accuracy
            record, hit = _quantize(run, spec, target, start=record)
            entry = outcome.scored(spec, record, hit)
            entry.search = Search(before=before, curve=curve(record),
                                  float_nodes=list(record.recipe["ignored_nodes"]))
    except FrugalError as e:
        return _failed(run, spec, e)
    run.steps.note(f"  {spec.name}{' (cached)' if hit else ''}: {entry.summary()}")
    return entry


def _failed(run: _Run, spec: CandidateSpec, error: FrugalError) -> CandidateResult:
    run.steps.note(f"  {spec.name} FAILED: {type(error).__name__}: {error}")
    return outcome.not_scored(spec, FAILED, f"{type(error).__name__}: {error}")


def plausible_reference(accuracy: Mapping[str, Any] | None) -> None:
    """Refuse to grade candidates against an FP32 decoder that does not model its evaluation
    text: a perplexity above the text's own unigram perplexity (see
    :func:`frugalml.quantize.scoring.unigram_perplexity`), as Gemma 3 scored without its BOS
    (2,051). Every budget decision against such a reference is made on inputs the model
    never sees.

    Raises:
        CalibrationError: the FP32 perplexity is above the unigram one.
    """
    reference = (accuracy or {}).get("reference") or {}
    ppl, unigram = reference.get("perplexity"), reference.get("unigram_perplexity")
    if ppl is None or unigram is None or not ppl > unigram:
        return
    raise CalibrationError(
        f"The FP32 model's perplexity on the evaluation text is {ppl:.1f}, above the "
        f"{unigram:.1f} of guessing each token by its frequency in that text: the model is not "
        "reading the text as it was trained to. Check that the text is in a language and form "
        "the model knows, and that its tokenizer (the GGUF's or the model directory's) is the "
        "model's own; no candidate was graded against this reference.")


def _quantize(run: _Run, spec: CandidateSpec, target: Any, *, start: Any = None
              ) -> tuple[Any, bool]:
    """The candidate's quantized model (given its first build, ``start``, the mixed-precision
    search's from it), from the cache when the same inputs built it."""
    budgets = run.family_spec.budgets_for(source_format(run.model))
    recipe = spec.recipe_for({**budgets, **run.options.budget})
    scoring = "native" if native_here(target) else "unfused"
    source, model, reference = run.exported, run.model, None
    if spec.graph == FUSED:  # quantized from the fused graph, scored against the export
        source, reference = _fused(run), run.exported.path
        model = run.model.rewritten(source.path)
    key = quantize_key(digest(source.digest, run.exported.digest), recipe.digest, spec.backend,
                       spec.output_format, target.int8_format.value, scoring,
                       run.data.fingerprint, run.eval_items, run.task)
    if start is not None:
        return mixed_precision(run, spec, target, recipe, key, start)
    with run.steps.step(f"{spec.name}: build ({spec.about}) and score against FP32"):
        return quantize_cached(run.cache, key, model, run.data, recipe=recipe,
                               backend=spec.backend, target=target,
                               output_format=spec.output_format,
                               eval_items=run.eval_items, task=run.task,
                               reference=reference, deadline=run.deadline)


def _fused(run: _Run) -> Any:
    """The export with ORT transformer fusions, built once per deploy (a failure too: every
    fused candidate then fails with the same reason)."""
    if run.fused is None:
        try:
            with run.steps.step("fuse attention, layer norm and GELU for ONNX Runtime"):
                run.fused, hit = fuse_cached(run.cache, run.exported, [run.samples])
            run.steps.note(f"  {'cached; ' if hit else ''}fused {', '.join(run.fused.fusions)}")
        except FrugalError as e:
            run.fused = e
    if isinstance(run.fused, FrugalError):
        raise run.fused
    return run.fused


def _bundle(run: _Run, target: Any, entry: CandidateResult, model_dir: Path,
            record: dict[str, Any] | None = None) -> None:
    """Bundle one candidate for ``target`` and verify it here; a bundle that fails
    verification is not kept and the candidate says why."""
    dest = run.out / "bundles" / f"{run.name}-{target.name}-{entry.name}"
    backend = "openvino" if entry.format == "openvino" else None
    try:
        with run.steps.step(f"{entry.name}: bundle for {target.name} and verify"):
            _, check = build_bundle(model_dir, dest, target=target, samples=run.samples,
                                    backend=backend, record=record, steps=run.steps)
    except FrugalError as e:
        entry.verified = f"bundle failed: {type(e).__name__}: {e}"
        return
    entry.verified = outcome.verification_text(check)
    entry.kernels_ran = check.get("kernels_ran")
    entry.bundle = str(dest)


def _finish(run: _Run, results: dict[str, dict[str, Any]]) -> DeployResult:
    """deploy.json, report.md and report.html; the --require-quantized refusal."""
    record = {"schema_version": SCHEMA_VERSION, "host": read_host().to_dict(),
              "model": run.name, "source": str(run.exported.source) if hasattr(
                  run.exported, "source") else None,
              "task": run.task, "family": run.family, "model_info": run.model.to_dict(),
              "workload": run.options.workload.to_dict(),
              "metric": _metric(results), "calibration": run.data.summary(),
              "export": run.exported.to_dict(), "seconds": round(time.monotonic() - run.started, 1),
              "targets": results}
    md = write_markdown(run.out, record)
    html = write_html(run.out, record)
    record |= {"report_md": str(md), "report_html": str(html)}
    path = run.out / RECORD_NAME
    write_json_atomic(path, record)
    result = DeployResult(out_dir=run.out, record=record, deploy_json=path, report_md=md,
                          report_html=html)
    fp32_targets = [t for t, r in results.items() if r["shipped"] == FP32]
    if run.options.require_quantized and fp32_targets:
        raise QuantizationError(
            f"No quantized candidate shipped on {', '.join(fp32_targets)}, and "
            f"--require-quantized was given: {results[fp32_targets[0]]['why']}. The report "
            f"is {md}; the FP32 bundle is still written. Loosen the budget, or drop "
            "--require-quantized to ship FP32.")
    return result


def _metric(results: dict[str, dict[str, Any]]) -> str | None:
    """The headline metric the candidates were judged by."""
    for r in results.values():
        for c in r["candidates"]:
            if c.get("accuracy"):
                return str(c["accuracy"]["metric"])
    return None
