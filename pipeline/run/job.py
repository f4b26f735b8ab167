"""Running a migration job: stage → check → (matching) → gates → publish.

:func:`run_job` runs a :class:`~ikou.pipeline.config.job.Job` as ONE Beam pipeline over all inputs of
all sources (``PlanJobBlocks`` → ``Reshuffle`` → ``DecodeMapBlocks`` → ``FinalizeJob``,
:mod:`ikou.transforms.decode.sources`): every block is decoded and, for a target's source, mapped to the
standard layout in the same DoFn; what the mapping cannot convert is quarantined with the raw
bytes, like a decoding error. Then:

1. **check** — reconciliation per source (data records read = standard rows + quarantined, the
   trailer count, rows in the merged files); a failure publishes nothing (exit 3);
2. **matching** (名寄せ, :mod:`ikou.pipeline.steps.matching`): resolve missing or wrong 宛名番号 of the
   matched targets on the staged files; unresolved records go to ``review/``;
3. **gates** — :func:`ikou.pipeline.steps.gates.run_gates` on the staged standard files with the
   reconciled row counts; results and Data Docs go to the run folder ``OUT/runs/<run id>/``;
4. **publish** — only when every gate passed (or ``gates: warn``): one atomic step.

The output folder and the atomic publish: :mod:`ikou.pipeline.steps.publish`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import apache_beam as beam

from ikou.pipeline.config.inputs import Url
from ikou.pipeline.config.job import Job, JobError, load_job
from ikou.pipeline.errors import GateFailure, ReconciliationError
from ikou.pipeline.report import LANGS as REPORT_LANGS
from ikou.pipeline.report import REPORT_FILE, write_report
from ikou.pipeline.run.beam import run_pipeline
from ikou.pipeline.run.progress import NullProgress, planned_blocks
from ikou.pipeline.steps import gate_worker
from ikou.pipeline.steps.manifest import (
    BackgroundDigests,
    build_manifest,
    describe_file,
    file_digest,
    write_manifest,
)
from ikou.pipeline.steps.mapping import MappingStep
from ikou.pipeline.steps.matching import CarryingMapper, carried_columns, run_matching
from ikou.pipeline.steps.publish import (
    CURRENT,
    CURRENT_POINTER,
    RELEASES,
    RUNS,
    STAGING_PREFIX,
    ObjectStoreOutput,
    OutputBusy,
    clean_stale,
    lock_output,
    new_run_id,
    publish_release,
    restrict,
)
from ikou.pipeline.steps.reconcile import check_job
from ikou.transforms import fileio
from ikou.transforms.decode.blocks import DEFAULT_BLOCK_SIZE, data_kinds, output_name
from ikou.transforms.decode.outputs import QUARANTINE_FILE, quarantine_sync_marker, read_summary
from ikou.transforms.decode.sources import DecodeMapBlocks, FinalizeJob, PlanJobBlocks, SourceStep
from ikou.transforms.pause import pause_point

if TYPE_CHECKING:
    from ikou.pipeline.steps.gate_report import GateReport

__all__ = ["CURRENT", "GateFailure", "JobResult", "run_job"]

#: Outputs whose 宛名番号 are the key set of the cross-file rule: the resident target first.
RESIDENT_TARGET = "juki"

@dataclass
class JobResult:
    """A finished job run (published, or published anyway with ``gates: warn``)."""

    out_dir: Path
    release_dir: Path
    run_dir: Path
    summary: dict[str, Any]
    checks: dict[str, Any]
    report: GateReport | None  # None: a job without gates (only decoded sources)
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def current(self) -> Path:
        """``OUT/current`` (the symlink); on an object store ``OUT/CURRENT`` (the pointer)."""
        return self.out_dir / (CURRENT_POINTER if isinstance(self.out_dir, Url) else CURRENT)

    @property
    def records(self) -> int:
        return self.summary["records"]

    @property
    def rows_written(self) -> int:
        return self.summary["rows_written"]

    @property
    def quarantined(self) -> int:
        return self.summary["quarantined"]

    @property
    def quarantined_by_code(self) -> dict[str, int]:
        return self.summary["quarantined_by_code"]


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
    for name in job.decoded:
        layout = job.sources[name].layout
        kinds = tuple((k, output_name(layout, k)) for k in data_kinds(layout))
        steps.append(SourceStep(name, layout, job.gaiji, tuple(index[name]),
                                output_name(layout, "data"), None, "decoded",
                                job.gaiji_fallback, kinds))
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


#: Standard error of Beam's worker processes, in the run folder.
WORKER_LOG = "beam-workers.log"


def stage_job(steps, inputs, staging_dir, digests, beam_args=(), block_size=DEFAULT_BLOCK_SIZE,
              log_path=None):
    info = run_pipeline(
        lambda p: build_job_pipeline(p, steps, inputs, staging_dir,
                                     quarantine_sync_marker(digests), block_size),
        beam_args, log_path, block_size=block_size)
    return read_summary(staging_dir), info


# -- publish -----------------------------------------------------------------------------------

def _gate_results(report: GateReport) -> dict[str, Any]:
    """Gate results for the manifest: expectations and counts, no values, no sample rows."""
    return {
        "mode": report.mode, "passed": report.passed, "published": report.publish,
        "unchecked": report.unchecked,
        "timings": {k: round(v, 3) for k, v in getattr(report, "timings", {}).items()},
        "gates": {name: {
            "suite": g.suite, "success": g.success, "rows": g.rows, "evaluated": g.evaluated,
            "engine": getattr(g, "engine", None),
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
                    "sha256": digest, "size": size, "blocks": s.get("blocks", 0),
                    "records": s.get("records", 0),
                    "records_by_kind": s.get("records_by_kind", {}),
                    "rows_written": s.get("rows_written", 0),
                    "quarantined": s.get("quarantined", 0),
                    "quarantined_by_code": s.get("quarantined_by_code", {}),
                    "tolerated_by_code": s.get("tolerated_by_code", {}),
                    # decoded header / trailer fields (団体コード, 作成日, 合計件数…: no personal data)
                    "header": (s.get("headers") or [{}])[0].get("values"),
                    "trailer": (s.get("trailers") or [{}])[0].get("values")})
    total_bytes = sum(size for _, size in digests)
    seconds = timings.get("pipeline") or 0.0
    return build_manifest("job", {
        "job": {"name": job.name, "path": str(job.path), "run_id": run_id},
        "sources": [{"name": s.name, "layout": s.layout.name, "label": s.layout.label,
                     "layout_path": str(s.layout_path),
                     "record_length": s.layout.record_length,
                     "record_format": s.layout.record_format} for s in job.sources.values()],
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
        "decoded": [{"source": name, "rows": by_source[name]["rows_written"],
                     "outputs": sorted(n for n in by_source[name]["outputs"]
                                       if n != QUARANTINE_FILE)} for name in job.decoded],
        "inputs": ins,
        "records": summary["records"],
        "records_by_kind": summary["records_by_kind"],
        "data_records": summary["data_records"],
        "rows_written": summary["rows_written"],
        "quarantined": summary["quarantined"],
        "quarantined_by_code": summary["quarantined_by_code"],
        "quarantined_by_kind": summary["quarantined_by_kind"],
        # field errors a field's on_error policy tolerated (the value became null): rows kept
        "tolerated_by_code": summary.get("tolerated_by_code", {}),
        "checks": checks,
        "matching": matching,
        "gates": _gate_results(report) if report is not None else None,
        "outputs": outputs,
    }, timings, runner, stages=stage_table(timings, runner), throughput={
        "bytes": total_bytes, "seconds": round(seconds, 3),
        "mb_per_s": round(total_bytes / 1e6 / seconds, 3) if seconds > 0 else None,
        "records_per_s": round(summary["records"] / seconds, 1) if seconds > 0 else None,
    })


#: The stages of a run, in order; their wall times add up to the run's total.
STAGES = ("startup", "prepare", "hash_inputs", "pipeline", "check", "matching", "gates", "publish")
#: Parts of the pipeline stage: block work (decode, mapping, writing part files; CPU seconds
#: summed over blocks, divided by the worker count), the finalize step (merging parts) and the
#: rest (Beam: start-up, planning, shuffles, scheduling).
PIPELINE_PARTS = ("read", "decode", "mapping", "write", "finalize")


def stage_table(timings: dict[str, float], runner: dict[str, Any] | None) -> dict[str, Any]:
    """Seconds and share of the total per stage, and the pipeline stage's parts (whose
    seconds add up to the pipeline's, the remainder being Beam's own work)."""
    total = timings.get("total") or 0.0
    stages = {k: {"seconds": round(timings.get(k, 0.0), 3),
                  "share": round(timings.get(k, 0.0) / total, 4) if total else None}
              for k in STAGES}
    workers = max(1, int((runner or {}).get("direct_num_workers") or 1))
    if (runner or {}).get("direct_running_mode") in (None, "in_memory"):
        workers = 1
    pipeline = timings.get("pipeline", 0.0)
    parts = {k: timings.get(f"pipeline.{k}", 0.0) / (1 if k == "finalize" else workers)
             for k in PIPELINE_PARTS}
    parts["beam"] = max(0.0, pipeline - sum(parts.values()))
    return {"total": round(total, 3), "stages": stages,
            "pipeline_parts": {k: round(v, 3) for k, v in parts.items()},
            "pipeline_workers": workers}


# -- the inputs --------------------------------------------------------------------------------

#: Bytes of each input looked at for the wrong encoding.
SNIFF_BYTES = 64 * 1024


def encoding_problem(path: str, layout) -> str | None:
    """Why ``path`` is evidently not in its layout's encoding, or None: a CP932 export whose
    first 64 KiB hold non-ASCII bytes that are all well-formed UTF-8 sequences is a UTF-8 file
    (real CP932 text — kanji, half-width kana — is almost never valid UTF-8)."""
    import codecs

    if layout.encoding != "cp932":
        return None
    with fileio.open_read(path) as f:
        head = f.read(SNIFF_BYTES)
    if not head or max(head) < 0x80:
        return None
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return None
    return (f"{path}: looks like UTF-8 text, but its layout '{layout.name}' says cp932: "
            "convert the file to CP932 (or fix the layout); nothing was read")


#: errno values that mean the output folder cannot take the run's files
_WRITE_ERRNOS = {errno.ENOSPC: "No space left on device", errno.EDQUOT: "Disk quota exceeded",
                 errno.EACCES: "Permission denied", errno.EROFS: "Read-only file system"}


def _write_problem(exc: BaseException) -> str | None:
    """The output-folder problem behind a pipeline failure (a full disk, no permission), as
    its system message; None for anything else. Beam's runners pass a worker's exception on as
    text, so its ``[Errno N]`` is read from the message when no ``OSError`` is chained."""
    seen = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _WRITE_ERRNOS:
            return _WRITE_ERRNOS[seen.errno]
        seen = seen.__cause__ or seen.__context__
    found = re.search(r"\[Errno (\d+)\]", str(exc))
    if found and int(found.group(1)) in _WRITE_ERRNOS:
        return _WRITE_ERRNOS[int(found.group(1))]
    return None


def _changed_inputs(inputs, digests) -> list[str]:
    """Inputs whose bytes differ from what was hashed before the pipeline read them (or that
    are gone): the manifest's sha256 must describe the bytes the outputs come from."""
    problems = []
    for (_, path), (digest, size) in zip(inputs, digests, strict=True):
        try:
            now, now_size = file_digest(str(path))
        except OSError:  # a local file or an object that is gone (Beam's BeamIOError)
            problems.append(f"input disappeared while the run read it: {path}")
            continue
        if now != digest:
            problems.append(f"input changed while the run read it: {path} (sha256 "
                            f"{digest[:12]}… and {size} bytes before, {now[:12]}… and "
                            f"{now_size} bytes after)")
    return problems


# -- the run -----------------------------------------------------------------------------------

class _Clock:
    """Wall time per stage, measured back to back so the stages add up to the total."""

    def __init__(self, timings: dict[str, float], started: float | None = None):
        self.timings = timings
        self.start = self.last = time.perf_counter() if started is None else started

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + (now - self.last)
        self.last = now
        self.timings["total"] = now - self.start


def _publish_outputs(summary: dict[str, Any], staging: Path) -> list[dict[str, Any]]:
    """Descriptions (sha256, size, rows) of the staged outputs, standard files first, and the
    staging folder cleared of everything but the outputs."""
    outputs = []
    order = {"target": 0, "decoded": 1, "reference": 2, "review": 3, "quarantine": 4}
    for name, o in sorted(summary["outputs"].items(),
                          key=lambda kv: (order.get(kv[1]["role"], 3), kv[0])):
        outputs.append(describe_file(o["path"], name=name, role=o["role"], source=o["source"],
                                     kind=o.get("kind"), rows=o["rows"]))
    (staging / "summary.json").unlink()
    for p in staging.joinpath("parts").glob("*"):
        p.unlink()
    if staging.joinpath("parts").exists():
        staging.joinpath("parts").rmdir()
    return outputs


def run_job(job: Job | str | os.PathLike, out_dir: str | os.PathLike | None = None,
            gates: str | None = None, beam_args: Sequence[str] = (),
            block_size: int | None = None, data_docs: bool = True,
            echo: Callable[[str], None] | None = None,
            truth: str | os.PathLike | None = None,
            gaiji_fallback: bool | None = None, started: float | None = None,
            input_digests: BackgroundDigests | None = None,
            report_lang: str = "ja", progress=None) -> JobResult:
    """Stage, check, match, gate and publish a job. Raises :class:`ReconciliationError` or
    :class:`GateFailure` (nothing published) or :class:`JobError` (a user mistake).
    ``gaiji_fallback`` (when not None) overrides the job file's ``gaiji_fallback``.

    Every stage's wall time goes into the manifest (``timings``, and ``stages`` with shares):
    prepare, hash_inputs, pipeline, check, matching, gates, publish, adding up to ``total``.
    ``started`` (a ``time.perf_counter()`` value) is when the command started: the time before
    this call is then the ``startup`` stage (the interpreter and its imports).
    ``input_digests``: the inputs' digests already being computed (the command starts hashing
    before it imports Beam); ``hash_inputs`` is then the time still waited for them.

    ``report.html`` (:mod:`ikou.pipeline.report`, in ``report_lang``) is written into the run
    folder, and into the release before it is published; its time counts as publishing.
    ``progress``: a :class:`ikou.pipeline.run.progress.RunProgress` to show on the terminal
    (default none)."""
    timings: dict[str, float] = {}
    clock = _Clock(timings, started)
    clock.lap("startup")
    fileio.set_options(beam_args)  # object-store options for the driver's own reads and writes
    if not isinstance(job, Job):
        job = load_job(job)
    if gaiji_fallback is not None:
        job = dataclasses.replace(job, gaiji_fallback=bool(gaiji_fallback))
    mode = gates or job.gates
    if mode not in ("fail", "warn"):
        raise JobError(f"gates mode must be fail or warn, got {mode!r}")
    if report_lang not in REPORT_LANGS:
        raise JobError(f"report language must be one of {', '.join(REPORT_LANGS)}, "
                       f"got {report_lang!r}")
    out = Path(out_dir) if out_dir is not None else job.outputs
    if out_dir is not None and fileio.is_url(str(out_dir)):
        out = Url(str(out_dir))
    if out is None:
        raise JobError(f"{job.path}: no output folder: give 'outputs' in the job or --out")
    remote = remote_staging = None
    if isinstance(out, Url):  # an object store: the local steps run in a scratch folder
        remote = ObjectStoreOutput(str(out))
        scratch = Path(tempfile.mkdtemp(prefix="ikou-run-"))
        out = scratch / "out"
    out = out.absolute()
    if out.exists() and not out.is_dir():
        raise JobError(f"output folder is a file: {out}")
    link = out / CURRENT
    if link.exists() and not link.is_symlink():
        raise JobError(f"{link} exists and is not a symlink: not an ikou job output folder")
    block_size = block_size or job.block_size or DEFAULT_BLOCK_SIZE
    if block_size <= 0:
        raise JobError(f"block size must be positive, got {block_size}")
    inputs = job.inputs
    for src, p in inputs:
        problem = encoding_problem(str(p), job.sources[src].layout)
        if problem:
            raise JobError(problem)
    clock.lap("prepare")
    paths = [str(p) for _, p in inputs]
    if input_digests is not None and input_digests.paths == paths:
        digests = input_digests.result()
    else:
        digests = [file_digest(p) for p in paths]
    clock.lap("hash_inputs")
    run_id = new_run_id()
    run_dir = out / RUNS / run_id
    for folder in (out, out / RELEASES, out / RUNS):
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, job.folder_mode)
    lock = contextlib.ExitStack()
    try:
        lock.enter_context(lock_output(out))
    except OutputBusy as e:
        raise JobError(str(e)) from None
    try:
        stale = clean_stale(out)  # what killed runs left behind: reported in the manifest
        if remote is not None:
            stale += remote.clean_stale()
            remote_staging = remote.staging(run_id)
        if stale and echo:
            echo(f"removed what an interrupted run left: {', '.join(stale)}")
        run_dir.mkdir(mode=job.folder_mode)
        staging = out / RELEASES / f"{STAGING_PREFIX}{run_id}"
        staging.mkdir(mode=job.folder_mode)
    except BaseException:
        lock.close()
        raise
    steps = steps_for(job)
    published = False
    # Great Expectations is imported by a process of its own while the pipeline runs
    gates_worker = gate_worker.take() if job.targets else None
    progress = progress if progress is not None else NullProgress()
    if type(progress) is not NullProgress:  # planning the blocks again only to show them
        progress.start_pipeline(staging, *planned_blocks(
            steps, [str(p.absolute()) for _, p in inputs], block_size))
    clock.lap("prepare")
    try:
        try:
            summary, runner = stage_job(steps, [str(p.absolute()) for _, p in inputs],
                                        remote_staging or str(staging), [d for d, _ in digests],
                                        beam_args, block_size, run_dir / WORKER_LOG)
        except Exception as exc:  # Beam wraps what its workers raised
            problem = _write_problem(exc)
            if problem is None:
                raise
            raise JobError(f"cannot write the output folder {remote.root if remote else out}: "
                           f"{problem}; nothing published") from exc
        if remote is not None:  # the merged outputs, for the steps that read them in place
            summary = remote.fetch_staged(remote_staging, summary, staging)
        for k, v in summary["seconds"].items():  # summed over blocks (all workers)
            timings[f"pipeline.{k}"] = v
        runner["gaiji_fallback"] = job.gaiji_fallback
        shutil.copy(staging / "summary.json", run_dir / "summary.json")
        clock.lap("pipeline")
        problems, checks = check_job(summary, steps)
        changed = _changed_inputs(inputs, digests)  # an input rewritten while it was read
        clock.lap("check")
        if changed:
            raise ReconciliationError(changed, [str(p) for _, p in inputs if str(p) in
                                                " ".join(changed)])
        if problems:
            many = len(steps) > 1
            raise ReconciliationError(problems, [
                str(p) for src, p in inputs
                if not many or any(x.startswith(f"{src}: ") for x in problems)])
        progress.stage("matching")

        # record matching (名寄せ), on the staged standard files, before the gates:
        # resolved keys stay in the standard files, unresolved records go to review/
        matching = None
        if job.matching:
            matching = run_matching(job, summary, staging, beam_args, truth)
        clock.lap("matching")
        progress.stage("gates")

        report = None
        if job.targets:
            staged = {t.name: summary["outputs"][f"{t.name}.arrow"]["path"]
                      for t in job.targets}
            staged.update({r.source: summary["outputs"][f"reference/{r.source}.arrow"]["path"]
                           for r in job.references})
            expected = {t.name: summary["outputs"][f"{t.name}.arrow"]["rows"]
                        for t in job.targets}
            refs = (RESIDENT_TARGET, *(r.source for r in job.references))
            report = gates_worker.run(staged=staged, run_dir=run_dir, mode=mode,
                                      expected_rows=expected, data_docs=data_docs,
                                      references=refs)
            (run_dir / "gates.txt").write_text(report.summary() + "\n", encoding="utf-8")
            pause_point("gates")
            if echo:
                echo(report.summary())
        clock.lap("gates")
        if report is not None and not report.publish:
            manifest = _manifest(job, run_id, inputs, digests, summary, checks, report, [],
                                 timings, runner, matching)
            manifest["published"] = False
            manifest["stale_removed"] = stale
            write_manifest(str(run_dir), manifest)
            write_report(run_dir, lang=report_lang, manifest=manifest)
            raise GateFailure(report, Url(remote.run_dir(run_id)) if remote else run_dir)

        progress.stage("publish")
        outputs = _publish_outputs(summary, staging)
        clock.lap("publish")
        manifest = _manifest(job, run_id, inputs, digests, summary, checks, report, outputs,
                             timings, runner, matching)
        manifest["published"] = True
        manifest["stale_removed"] = stale
        write_manifest(str(staging), manifest)  # part of the release: published with it
        report_data: dict = {}  # what the report reads from the result files: read once
        write_report(run_dir, staging / REPORT_FILE, report_lang, staging, manifest,
                     report_data)
        restrict(staging, job.file_mode, job.folder_mode)
        release = local_release = publish_release(staging, out, run_id)
        if remote is not None:
            release = remote.publish(release, run_id)
        published = True
        clock.lap("publish")
        manifest["timings"] = {k: round(v, 3) for k, v in timings.items()}
        manifest["stages"] = stage_table(timings, runner)
        write_manifest(str(run_dir), manifest)  # with the final publish time
        write_report(run_dir, lang=report_lang, release_dir=local_release, manifest=manifest,
                     cache=report_data)
        if remote is not None:
            return JobResult(Url(remote.root), release, Url(remote.run_dir(run_id)), summary,
                             checks, report, manifest)
        return JobResult(out, release, run_dir, summary, checks, report, manifest)
    finally:
        progress.close()
        try:
            if gates_worker is not None:
                gates_worker.close()
            if not published:
                shutil.rmtree(staging, ignore_errors=True)
            restrict(run_dir, job.file_mode, job.folder_mode)  # the run's records: owner only
            if remote is not None:
                remote.upload_run(run_dir, run_id)
                if remote_staging is not None:
                    fileio.delete_under(remote_staging)
        finally:
            lock.close()
            if remote is not None:
                shutil.rmtree(scratch, ignore_errors=True)
