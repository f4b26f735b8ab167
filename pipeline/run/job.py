"""Running a migration job: stage → check → (matching) → gates → publish.

:func:`run_job` runs a :class:`~ikou.pipeline.config.job.Job` as ONE Beam pipeline over all inputs of
all sources (``PlanJobBlocks`` → ``Reshuffle`` → ``DecodeMapBlocks`` → ``FinalizeJob``,
:mod:`ikou.transforms.decode.sources`): every block is decoded and, for a target's source, mapped to the
standard layout in the same DoFn; what the mapping cannot convert is quarantined with the raw
bytes, like a decoding error. Then:

1. **check** — reconciliation per source (data records read = standard rows + quarantined, the
   trailer count, rows in the merged files); a failure publishes nothing (exit 1);
2. **matching** (名寄せ, :mod:`ikou.pipeline.steps.matching`): resolve missing or wrong 宛名番号 of the
   matched targets on the staged files; unresolved records go to ``review/``;
3. **gates** — :func:`ikou.pipeline.steps.gates.run_gates` on the staged standard files with the
   reconciled row counts; results and Data Docs go to the run folder ``OUT/runs/<run id>/``;
4. **publish** — only when every gate passed (or ``gates: warn``): one atomic step.

Output folder (see docs/jobs.md)::

    OUT/current -> releases/<run id>        the published set: a symlink, swapped atomically
    OUT/releases/<run id>/                  juki.arrow, kojin_juminzei.arrow, ...,
                                            reference/jutogai.arrow, quarantine.avro, manifest.json
    OUT/releases/.staging-<run id>/         while the run stages (removed unless published)
    OUT/runs/<run id>/                      summary.json, gates.json, validations/, data_docs/,
                                            manifest.json (also for runs that published nothing)

Publishing renames the staging folder to ``releases/<run id>`` (invisible to readers, who go
through ``current``) and then replaces the symlink ``current`` with ``os.replace`` of a new
symlink: a reader that resolves ``current`` once sees either the old set or the new one, never a
mix. The previous release is kept (readers still inside it keep working); older ones are removed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions

from ikou.pipeline.config.job import Job, JobError, load_job
from ikou.pipeline.config.mapping import Mapping, apply_mapping
from ikou.pipeline.run.single import ReconciliationError, _counters, _runner_for, check
from ikou.pipeline.steps.gates import GateReport, run_gates
from ikou.pipeline.steps.manifest import MANIFEST_FILE, file_digest, versions, write_manifest
from ikou.pipeline.steps.matching import CarryingMapper, carried_columns, run_matching
from ikou.transforms.decode.blocks import DEFAULT_BLOCK_SIZE
from ikou.transforms.decode.outputs import QUARANTINE_FILE, quarantine_sync_marker, read_summary
from ikou.transforms.decode.sources import DecodeMapBlocks, FinalizeJob, PlanJobBlocks, SourceStep

__all__ = ["CURRENT", "GateFailure", "JobResult", "MappingStep", "mapping_reasons", "run_job"]

CURRENT = "current"
RELEASES = "releases"
RUNS = "runs"
KEEP_RELEASES = 2
#: Outputs whose 宛名番号 are the key set of the cross-file rule: the resident target first.
RESIDENT_TARGET = "juki"

MAPPING_UNKNOWN_CODE = "MAPPING_UNKNOWN_CODE"
MAPPING_NOT_INTEGER = "MAPPING_NOT_INTEGER"
MAPPING_ERROR = "MAPPING_ERROR"


class GateFailure(Exception):
    """A gate failed in mode ``fail``: nothing was published."""

    def __init__(self, report: GateReport, run_dir: Path):
        self.report = report
        self.run_dir = run_dir
        super().__init__(f"gates failed ({', '.join(report.failed)}): nothing published")


def mapping_reasons(text: str) -> list[dict[str, Any]]:
    """Quarantine reasons from a rejected row's mapping reason text (``"; "``-joined messages
    ``"<field> (<項目名称>): ..."``, see :func:`ikou.pipeline.config.mapping.apply_mapping`)."""
    out = []
    for msg in text.split("; "):
        head, _, rest = msg.partition(": ")
        field_name = head.split(" (", 1)[0] if rest else None
        code = (MAPPING_UNKNOWN_CODE if "unknown code" in rest
                else MAPPING_NOT_INTEGER if "not an integer" in rest else MAPPING_ERROR)
        out.append({"field": field_name, "code": code, "position": None, "message": msg})
    return out


class MappingStep:
    """The per-block mapper :mod:`ikou.transforms.decode.sources` calls: legacy rows → standard rows and
    the rejected rows' reasons. Picklable (it carries the loaded mapping)."""

    def __init__(self, mapping: Mapping):
        self.mapping = mapping
        self.schema = mapping.standard.schema(lineage=True)

    def __call__(self, table):
        res = apply_mapping(self.mapping, table)
        rejects = []
        if res.rejected.num_rows:
            rows = res.rejected.column("_row").to_pylist()
            reasons = res.rejected.column("reason").to_pylist()
            rejects = [(r, mapping_reasons(t)) for r, t in zip(rows, reasons, strict=True)]
        return res.table, rejects


@dataclass
class JobResult:
    """A finished job run (published, or published anyway with ``gates: warn``)."""

    out_dir: Path
    release_dir: Path
    run_dir: Path
    summary: dict[str, Any]
    checks: dict[str, Any]
    report: GateReport
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def current(self) -> Path:
        return self.out_dir / CURRENT


# -- stage -----------------------------------------------------------------------------------

def _mapper(job: Job, target, carry: dict):
    step = MappingStep(target.mapping)
    if target.source not in carry:
        return step
    legacy = job.sources[target.source].layout.arrow_schema("data")
    return CarryingMapper(step, carry[target.source], legacy)  # columns for matching


def steps_for(job: Job) -> list[SourceStep]:
    index = {}
    for i, (name, _path) in enumerate(job.inputs):
        index.setdefault(name, []).append(i)
    carry = carried_columns(job)
    steps = [SourceStep(t.source, job.sources[t.source].layout, job.gaiji,
                        tuple(index[t.source]), f"{t.name}.arrow", _mapper(job, t, carry),
                        "target", job.gaiji_fallback) for t in job.targets]
    steps += [SourceStep(r.source, job.sources[r.source].layout, job.gaiji,
                         tuple(index[r.source]), f"reference/{r.source}.arrow", None,
                         "reference", job.gaiji_fallback) for r in job.references]
    return steps


def build_job_pipeline(p: beam.Pipeline, steps: Sequence[SourceStep], inputs: Sequence[str],
                       staging_dir: str, sync_marker: bytes, block_size: int):
    decoded = (
        p
        | "Inputs" >> beam.Create(list(enumerate(inputs)))
        | "PlanBlocks" >> PlanJobBlocks(steps, block_size)
        | "Reshuffle" >> beam.Reshuffle()
        | "DecodeMapBlocks" >> DecodeMapBlocks(steps, staging_dir)
    )
    return decoded | "Finalize" >> FinalizeJob(steps, staging_dir, sync_marker)


def stage_job(steps, inputs, staging_dir, digests, beam_args=(), block_size=DEFAULT_BLOCK_SIZE):
    options = PipelineOptions(list(beam_args))
    runner, runner_name = _runner_for(options)
    direct = options.view_as(DirectOptions)
    info = {"runner": runner_name, "direct_running_mode": direct.direct_running_mode,
            "direct_num_workers": direct.direct_num_workers, "block_size": block_size,
            "beam_args": list(beam_args)}
    p = beam.Pipeline(runner=runner, options=options)
    build_job_pipeline(p, steps, inputs, staging_dir, quarantine_sync_marker(digests),
                       block_size)
    result = p.run()
    result.wait_until_finish()
    info["metrics"] = _counters(result)
    return read_summary(staging_dir), info


def check_job(summary: dict[str, Any], steps: Sequence[SourceStep]):
    problems: list[str] = []
    checks: dict[str, Any] = {"sources": {}}
    for step in steps:
        p, c = check(summary["sources"][step.name], step.layout, len(step.inputs))
        problems += [f"{step.name}: {x}" for x in p]
        checks["sources"][step.name] = c
    q = summary["outputs"][QUARANTINE_FILE]["rows"]
    if q != summary["quarantined"]:
        problems.append(f"records in {QUARANTINE_FILE} ({q}) != records quarantined "
                        f"({summary['quarantined']})")
    checks["ok"] = not problems
    checks["problems"] = problems
    return problems, checks


# -- publish -----------------------------------------------------------------------------------

def _run_id() -> str:
    ns = time.time_ns()
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def publish_release(staging: Path, out_dir: Path, run_id: str) -> Path:
    """Rename ``staging`` to ``releases/<run_id>`` and point ``current`` at it (one
    ``os.replace`` of a symlink); older releases but the previous one are removed."""
    releases = out_dir / RELEASES
    release = releases / run_id
    os.rename(staging, release)
    link = out_dir / CURRENT
    tmp = out_dir / f".{CURRENT}.{run_id}.tmp"
    os.symlink(os.path.join(RELEASES, run_id), tmp)
    os.replace(tmp, link)  # the publishing step: atomic on POSIX
    keep = {run_id}
    older = sorted((p for p in releases.iterdir() if not p.name.startswith(".")
                    and p.name != run_id), key=lambda p: p.name, reverse=True)
    keep.update(p.name for p in older[:KEEP_RELEASES - 1])
    for p in older:
        if p.name not in keep:
            shutil.rmtree(p, ignore_errors=True)
    return release


def _gate_results(report: GateReport) -> dict[str, Any]:
    """Gate results for the manifest: expectations and counts, no values, no sample rows."""
    return {
        "mode": report.mode, "passed": report.passed, "published": report.publish,
        "unchecked": report.unchecked,
        "gates": {name: {
            "suite": g.suite, "success": g.success, "rows": g.rows, "evaluated": g.evaluated,
            "failures": [{"expectation": f.expectation, "column": f.column, "item": f.item,
                          "unexpected_count": f.unexpected_count,
                          "element_count": f.element_count} for f in g.failures],
        } for name, g in report.gates.items()},
    }


def _manifest(job: Job, run_id: str, inputs, digests, summary, checks, report, outputs,
              timings, runner, matching=None) -> dict[str, Any]:
    by_source = summary["sources"]
    ins = []
    for i, ((src, path), (digest, size)) in enumerate(zip(inputs, digests, strict=True)):
        s = next((x for x in by_source[src]["inputs"] if x["index"] == i), {})
        ins.append({"source": src, "path": str(path), "name": os.path.basename(path),
                    "sha256": digest, "size": size, "records": s.get("records", 0),
                    "records_by_kind": s.get("records_by_kind", {}),
                    "rows_written": s.get("rows_written", 0),
                    "quarantined": s.get("quarantined", 0),
                    "quarantined_by_code": s.get("quarantined_by_code", {}),
                    "header": (s.get("headers") or [{}])[0].get("values"),
                    "trailer": (s.get("trailers") or [{}])[0].get("values")})
    total_bytes = sum(size for _, size in digests)
    seconds = timings.get("pipeline") or 0.0
    return {
        "manifest_version": 2,
        "job": {"name": job.name, "path": str(job.path), "run_id": run_id},
        "targets": [{"name": t.name, "label": t.standard.label, "spec": t.standard.spec,
                     "source": t.source, "mapping": str(t.mapping_path),
                     "rows": summary["outputs"][f"{t.name}.arrow"]["rows"],
                     "review": summary["outputs"].get(f"review/{t.name}.arrow",
                                                      {}).get("rows", 0),
                     "quarantined": by_source[t.source]["quarantined"],
                     "quarantined_by_code": by_source[t.source]["quarantined_by_code"]}
                    for t in job.targets],
        "references": [{"source": r.source, "rows": by_source[r.source]["rows_written"]}
                       for r in job.references],
        "inputs": ins,
        "records": summary["records"],
        "rows_written": summary["rows_written"],
        "quarantined": summary["quarantined"],
        "quarantined_by_code": summary["quarantined_by_code"],
        "quarantined_by_kind": summary["quarantined_by_kind"],
        "checks": checks,
        "matching": matching,
        "gates": _gate_results(report) if report is not None else None,
        "outputs": outputs,
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "throughput": {
            "bytes": total_bytes, "seconds": round(seconds, 3),
            "mb_per_s": round(total_bytes / 1e6 / seconds, 3) if seconds > 0 else None,
            "records_per_s": round(summary["records"] / seconds, 1) if seconds > 0 else None,
        },
        "runner": runner,
        "versions": versions(),
    }


# -- the run -----------------------------------------------------------------------------------

def run_job(job: Job | str | os.PathLike, out_dir: str | os.PathLike | None = None,
            gates: str | None = None, beam_args: Sequence[str] = (),
            block_size: int | None = None, data_docs: bool = True,
            echo: Callable[[str], None] | None = None,
            truth: str | os.PathLike | None = None,
            gaiji_fallback: bool | None = None) -> JobResult:
    """Stage, check, gate and publish a job. Raises :class:`ReconciliationError` or
    :class:`GateFailure` (nothing published) or :class:`JobError` (a user mistake).
    ``gaiji_fallback`` (when not None) overrides the job file's ``gaiji_fallback``."""
    t0 = time.perf_counter()
    if not isinstance(job, Job):
        job = load_job(job)
    if gaiji_fallback is not None:
        job = dataclasses.replace(job, gaiji_fallback=bool(gaiji_fallback))
    mode = gates or job.gates
    if mode not in ("fail", "warn"):
        raise JobError(f"gates mode must be fail or warn, got {mode!r}")
    out = Path(out_dir) if out_dir is not None else job.outputs
    if out is None:
        raise JobError(f"{job.path}: no output folder: give 'outputs' in the job or --out")
    out = out.absolute()
    if out.exists() and not out.is_dir():
        raise JobError(f"output folder is a file: {out}")
    link = out / CURRENT
    if link.exists() and not link.is_symlink():
        raise JobError(f"{link} exists and is not a symlink: not an ikou job output folder")
    block_size = block_size or job.block_size or DEFAULT_BLOCK_SIZE
    inputs = job.inputs
    timings: dict[str, float] = {}
    digests = [file_digest(str(p)) for _, p in inputs]
    timings["hash_inputs"] = time.perf_counter() - t0
    run_id = _run_id()
    run_dir = out / RUNS / run_id
    (out / RELEASES).mkdir(parents=True, exist_ok=True)
    run_dir.mkdir(parents=True)
    staging = out / RELEASES / f".staging-{run_id}"
    staging.mkdir()
    steps = steps_for(job)
    published = False
    try:
        t1 = time.perf_counter()
        summary, runner = stage_job(steps, [str(p.absolute()) for _, p in inputs], str(staging),
                                    [d for d, _ in digests], beam_args, block_size)
        timings["pipeline"] = time.perf_counter() - t1
        for k, v in summary["seconds"].items():  # summed over blocks (all workers)
            timings[f"pipeline.{k}"] = v
        shutil.copy(staging / "summary.json", run_dir / "summary.json")
        t2 = time.perf_counter()
        problems, checks = check_job(summary, steps)
        timings["check"] = time.perf_counter() - t2
        if problems:
            raise ReconciliationError(problems)

        # record matching (名寄せ), on the staged standard files, before the gates:
        # resolved keys stay in the standard files, unresolved records go to review/
        matching = None
        if job.matching:
            t5 = time.perf_counter()
            matching = run_matching(job, summary, staging, beam_args, truth)
            timings["matching"] = time.perf_counter() - t5

        t3 = time.perf_counter()
        staged = {t.name: summary["outputs"][f"{t.name}.arrow"]["path"] for t in job.targets}
        staged.update({r.source: summary["outputs"][f"reference/{r.source}.arrow"]["path"]
                       for r in job.references})
        expected = {t.name: summary["outputs"][f"{t.name}.arrow"]["rows"] for t in job.targets}
        refs = (RESIDENT_TARGET, *(r.source for r in job.references))
        report = run_gates(staged, run_dir, mode=mode, expected_rows=expected,
                           data_docs=data_docs, references=refs)
        timings["gates"] = time.perf_counter() - t3
        (run_dir / "gates.txt").write_text(report.summary() + "\n", encoding="utf-8")
        if echo:
            echo(report.summary())
        if not report.publish:
            timings["total"] = time.perf_counter() - t0
            manifest = _manifest(job, run_id, inputs, digests, summary, checks, report, [],
                                 timings, runner, matching)
            manifest["published"] = False
            write_manifest(str(run_dir), manifest)
            raise GateFailure(report, run_dir)

        t4 = time.perf_counter()
        outputs = []
        for name, o in sorted(summary["outputs"].items(),
                              key=lambda kv: (kv[1]["role"] != "target",
                                              kv[1]["role"] == "quarantine", kv[0])):
            digest, size = file_digest(o["path"])
            outputs.append({"name": name, "role": o["role"], "source": o["source"],
                            "rows": o["rows"], "sha256": digest, "size": size})
        (staging / "summary.json").unlink()
        for p in staging.joinpath("parts").glob("*"):
            p.unlink()
        if staging.joinpath("parts").exists():
            staging.joinpath("parts").rmdir()
        timings["publish"] = time.perf_counter() - t4
        timings["total"] = time.perf_counter() - t0
        manifest = _manifest(job, run_id, inputs, digests, summary, checks, report, outputs,
                             timings, runner, matching)
        manifest["published"] = True
        write_manifest(str(staging), manifest)  # part of the release: published with it
        release = publish_release(staging, out, run_id)
        published = True
        timings["publish"] = time.perf_counter() - t4
        timings["total"] = time.perf_counter() - t0
        manifest["timings"] = {k: round(v, 3) for k, v in timings.items()}
        write_manifest(str(run_dir), manifest)  # with the final publish time
        return JobResult(out, release, run_dir, summary, checks, report, manifest)
    finally:
        if not published:
            shutil.rmtree(staging, ignore_errors=True)


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    return json.loads((Path(folder) / MANIFEST_FILE).read_text(encoding="utf-8"))
