"""Running a migration: stage → check → publish.

- :func:`stage` runs the Beam pipeline (``PlanBlocks`` → ``Reshuffle`` →
  ``DecodeBlocks`` → ``Finalize``), which writes every output into a staging
  folder inside the output folder and returns the run's summary;
- :func:`check` reconciles the counts (data records read = rows written + data
  records quarantined; the trailer's count = data records read; a trailer the
  layout declares must be there) and returns the problems found;
- :func:`publish` moves the staged outputs into the output folder and writes
  ``manifest.json`` last.

Further gates (Great Expectations, issue 4) go between ``check`` and
``publish``.  :func:`run_migration` chains the three; :func:`run` is the
command-line entry (``ikou run``): it only parses arguments and wires I/O.

Runner: Beam's FnApiRunner unless another runner is named; ``DirectRunner``
is mapped to FnApiRunner too (Beam 2.77's DirectRunner would otherwise try to
download Prism).  ``--direct_running_mode`` / ``--direct_num_workers`` and
every other Beam option pass through unchanged.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import (
    DirectOptions,
    PipelineOptions,
    StandardOptions,
    _BeamArgumentParser,
)

from ikou.pipeline.gaiji import load_gaiji
from ikou.pipeline.layout import Layout, load_layout
from ikou.pipeline.manifest import MANIFEST_FILE, build_manifest, file_digest, write_manifest
from ikou.pipeline.reconcile import InputError, ReconciliationError, check
from ikou.transforms.blocks import DEFAULT_BLOCK_SIZE
from ikou.transforms.composites import DecodeBlocks, Finalize, PlanBlocks
from ikou.transforms.outputs import quarantine_sync_marker, read_summary

__all__ = [
    "IkouOptions",
    "InputError",
    "ReconciliationError",
    "Summary",
    "build_pipeline",
    "check",
    "publish",
    "run",
    "run_migration",
    "split_args",
    "stage",
    "staged_outputs",
]

_FNAPI_ALIASES = {"DirectRunner", "direct", "FnApiRunner", "fnapirunner", "directrunner"}


class IkouOptions(PipelineOptions):
    """Options of an ``ikou run`` pipeline (the rest are Beam's)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--layout", help="layout YAML of the legacy export")
        parser.add_argument("--gaiji", default=None, help="外字 table CSV")
        parser.add_argument("--out", help="output folder")
        parser.add_argument("--input", dest="inputs", action="append", default=None,
                            help="an input file (repeatable; positional inputs work too)")
        parser.add_argument("--block_size", "--block-size", dest="block_size", type=int,
                            default=None,
                            help="bytes per block (rounded down to whole records)")
        parser.add_argument("--gaiji_fallback", "--gaiji-fallback", dest="gaiji_fallback",
                            action="store_true", default=False,
                            help="write the 外字 table's fallback characters (column fallback)")
        parser.add_argument("--gates", default=None,
                            help="job runs: fail (publish nothing when a gate fails) or warn")


@dataclass
class Summary:
    """What a finished (published) run reports."""

    out_dir: str
    counts: dict[str, Any]
    checks: dict[str, Any]
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def records(self) -> int:
        return self.counts["records"]

    @property
    def rows_written(self) -> int:
        return self.counts["rows_written"]

    @property
    def quarantined(self) -> int:
        return self.counts["quarantined"]

    @property
    def quarantined_by_code(self) -> dict[str, int]:
        return self.counts["quarantined_by_code"]

    @property
    def manifest_path(self) -> str:
        return os.path.join(self.out_dir, MANIFEST_FILE)


# -- arguments ---------------------------------------------------------------

def _option_arity() -> dict[str, bool]:
    """Option string -> takes a value, for every registered PipelineOptions class."""
    parser = _BeamArgumentParser(allow_abbrev=False)
    seen = {}
    for cls in PipelineOptions.__subclasses__():
        seen.setdefault(str(cls), cls)
    for cls in seen.values():
        cls._add_argparse_args(parser)  # same walk as PipelineOptions.get_all_options
    return {opt: action.nargs != 0 for opt, action in parser._option_string_actions.items()}


def split_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split ``argv`` into (positional inputs, option tokens).

    Options Beam or ikou know take their value from the next token unless
    written ``--opt=value``; an option nobody knows is taken as a flag (write
    ``--opt=value`` for those), so a following input file is never swallowed.
    """
    arity = _option_arity()
    inputs: list[str] = []
    options: list[str] = []
    i = 0
    argv = list(argv)
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            inputs.extend(argv[i + 1:])
            break
        if tok.startswith("-") and tok != "-":
            options.append(tok)
            if "=" not in tok and arity.get(tok, False) and i + 1 < len(argv):
                options.append(argv[i + 1])
                i += 1
        else:
            inputs.append(tok)
        i += 1
    return inputs, options


# -- the pipeline ------------------------------------------------------------

def _runner_for(options: PipelineOptions):
    name = options.view_as(StandardOptions).runner
    if name is None or (isinstance(name, str) and name in _FNAPI_ALIASES):
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner
        return FnApiRunner(), "FnApiRunner"
    return name, str(name)


def build_pipeline(p: beam.Pipeline, layout: Layout, gaiji: dict, inputs: list[str],
                   staging_dir: str, sync_marker: bytes, block_size: int = DEFAULT_BLOCK_SIZE,
                   gaiji_fallback: bool = False):
    """Add the migration to ``p``; returns the summary PCollection."""
    decoded = (
        p
        | "Inputs" >> beam.Create(list(enumerate(inputs)))
        | "PlanBlocks" >> PlanBlocks(layout, block_size)
        | "Reshuffle" >> beam.Reshuffle()
        | "DecodeBlocks" >> DecodeBlocks(layout, gaiji, staging_dir, gaiji_fallback)
    )
    return decoded | "Finalize" >> Finalize(layout, staging_dir, sync_marker)


def _check_inputs(inputs: Sequence[str]) -> list[str]:
    if not inputs:
        raise InputError("no input files given")
    out = []
    for path in inputs:
        path = os.fspath(path)
        if not os.path.exists(path):
            raise InputError(f"input not found: {path}")
        if not os.path.isfile(path):
            raise InputError(f"input is not a file: {path}")
        out.append(os.path.abspath(path))
    return out


def stage(layout: Layout, gaiji: dict, inputs: list[str], staging_dir: str,
          input_digests: Sequence[str], beam_args: Sequence[str] = (),
          block_size: int = DEFAULT_BLOCK_SIZE,
          gaiji_fallback: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the pipeline into ``staging_dir``; returns (summary, runner info)."""
    options = PipelineOptions(list(beam_args))
    runner, runner_name = _runner_for(options)
    direct = options.view_as(DirectOptions)
    info = {"runner": runner_name, "direct_running_mode": direct.direct_running_mode,
            "direct_num_workers": direct.direct_num_workers, "block_size": block_size,
            "beam_args": list(beam_args), "gaiji_fallback": gaiji_fallback}
    p = beam.Pipeline(runner=runner, options=options)
    build_pipeline(p, layout, gaiji, inputs, staging_dir,
                   quarantine_sync_marker(input_digests), block_size, gaiji_fallback)
    result = p.run()
    result.wait_until_finish()
    info["metrics"] = _counters(result)
    return read_summary(staging_dir), info


def _counters(result) -> dict[str, int]:
    """The pipeline's ``ikou`` Metrics counters (committed where the runner has them)."""
    try:
        counters = result.metrics().query()["counters"]
    except (AttributeError, NotImplementedError, KeyError):  # a runner without metrics
        return {}
    out: dict[str, int] = {}
    for c in counters:
        if c.key.metric.namespace == "ikou":
            value = c.committed if c.committed is not None else c.attempted
            out[c.key.metric.name] = out.get(c.key.metric.name, 0) + int(value or 0)
    return dict(sorted(out.items()))


def staged_outputs(summary: dict[str, Any]) -> dict[str, str]:
    """Staged Arrow outputs by name without extension (``{"juki": ".../juki.arrow"}``), for
    gates that check them between :func:`check` and :func:`publish`."""
    return {name[:-len(".arrow")]: o["path"] for name, o in sorted(summary["outputs"].items())
            if name.endswith(".arrow")}


def publish(staging_dir: str, out_dir: str, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Move the staged outputs into ``out_dir``; returns their descriptions."""
    published = []
    outputs = summary["outputs"]
    for name in sorted(outputs, key=lambda n: (outputs[n]["kind"] is None, n)):  # rows first
        o = outputs[name]
        dest = os.path.join(out_dir, name)
        os.replace(o["path"], dest)
        digest, size = file_digest(dest)
        published.append({"name": name, "kind": o["kind"], "rows": o["rows"],
                          "sha256": digest, "size": size})
    return published


def run_migration(layout: Layout | str | os.PathLike, gaiji: dict[int, str] | str | None,
                  inputs: Sequence[str], out_dir: str, beam_args: Sequence[str] = (),
                  block_size: int = DEFAULT_BLOCK_SIZE, gaiji_fallback: bool = False) -> Summary:
    """Stage, check and publish a migration; raises :class:`ReconciliationError`.

    ``layout`` / ``gaiji`` are loaded objects or file paths; ``gaiji_fallback`` writes the
    外字 table's fallback characters (its ``fallback`` column) instead of the primary ones.  On a
    reconciliation failure nothing is published and the staging folder is
    removed.
    """
    t0 = time.perf_counter()
    if not isinstance(layout, Layout):
        layout = load_layout(layout)
    if gaiji is None or isinstance(gaiji, dict):
        gaiji = dict(gaiji or {})
    else:
        gaiji = load_gaiji(gaiji)
    if block_size <= 0:
        raise ValueError(f"block size must be positive, got {block_size}")
    inputs = _check_inputs(inputs)
    out_dir = os.path.abspath(os.fspath(out_dir))
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise InputError(f"output folder is a file: {out_dir}")
    os.makedirs(out_dir, exist_ok=True)
    timings: dict[str, float] = {}
    digests = [file_digest(p) for p in inputs]
    timings["hash_inputs"] = time.perf_counter() - t0
    staging = tempfile.mkdtemp(prefix=".ikou-staging-", dir=out_dir)
    try:
        t1 = time.perf_counter()
        summary, runner = stage(layout, gaiji, inputs, staging, [d for d, _ in digests],
                                beam_args, block_size, gaiji_fallback)
        timings["pipeline"] = time.perf_counter() - t1
        problems, checks = check(summary, layout, len(inputs))
        if problems:
            raise ReconciliationError(problems)
        t2 = time.perf_counter()
        for old in (MANIFEST_FILE,):  # a previous run's manifest must not vouch for new files
            if os.path.exists(os.path.join(out_dir, old)):
                os.remove(os.path.join(out_dir, old))
        outputs = publish(staging, out_dir, summary)
        timings["publish"] = time.perf_counter() - t2
        timings["total"] = time.perf_counter() - t0
        manifest = build_manifest(
            layout=layout, summary=summary,
            inputs=[{"path": p, "sha256": d, "size": n} for p, (d, n) in zip(inputs, digests, strict=True)],
            outputs=outputs, checks=checks, timings=timings, runner=runner)
        write_manifest(out_dir, manifest)
        return Summary(out_dir, summary, checks, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _is_job(path: str) -> bool:
    return path.endswith((".yaml", ".yml"))


def run(argv: Sequence[str] | None = None):
    """``ikou run``: parse the arguments (the unknown ones go to Beam) and run.

    ``ikou run JOB.yaml [--out DIR] [--gates fail|warn] [Beam options]`` runs a job file
    (:func:`ikou.pipeline.jobrun.run_job`, returns a ``JobResult``); ``ikou run --layout L
    [--gaiji G] --out DIR INPUT...`` migrates files of one layout (returns a :class:`Summary`).
    """
    positional, flags = split_args(list(argv or []))
    options = PipelineOptions(flags)
    opts = options.view_as(IkouOptions)
    ours = {"--layout", "--gaiji", "--out", "--input", "--block_size", "--block-size",
            "--gates"}
    flags_only = {"--gaiji_fallback", "--gaiji-fallback"}
    beam_args = []
    skip = False
    for i, tok in enumerate(flags):
        if skip:
            skip = False
            continue
        name = tok.split("=", 1)[0]
        if name in flags_only:
            continue
        if name in ours:
            skip = "=" not in tok and i + 1 < len(flags)
            continue
        beam_args.append(tok)
    if opts.block_size is not None and opts.block_size <= 0:
        raise InputError(f"block size must be positive, got {opts.block_size}")
    if not opts.layout and positional and _is_job(positional[0]):
        if len(positional) > 1 or opts.inputs:
            raise InputError("a job file names its inputs: ikou run JOB.yaml [--out DIR] "
                             "[--gates fail|warn] [Beam options]")
        if opts.gaiji:
            raise InputError("--gaiji is given in the job file ('gaiji:'), not on the "
                             "command line")
        from ikou.pipeline.jobrun import run_job

        return run_job(positional[0], opts.out, opts.gates, beam_args, opts.block_size,
                       gaiji_fallback=opts.gaiji_fallback or None)
    if opts.gates:
        raise InputError("--gates applies to job files (ikou run JOB.yaml --gates warn)")
    inputs = list(opts.inputs or []) + positional
    missing = [o for o in ("layout", "out") if not getattr(opts, o)]
    if missing:
        raise InputError("the following arguments are required: "
                         + ", ".join("--" + m for m in missing))
    if not inputs:
        raise InputError("no input files given (ikou run --layout L --out DIR INPUT... or "
                         "ikou run JOB.yaml)")
    return run_migration(opts.layout, opts.gaiji, inputs, opts.out, beam_args,
                         opts.block_size or DEFAULT_BLOCK_SIZE, opts.gaiji_fallback)
