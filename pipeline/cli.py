"""The ``ikou`` command line.

Subcommands: ``generate`` (a synthetic municipality), ``decode`` (one file,
no pipeline), ``run`` (a job file, or files of one layout, on Beam), ``demo`` (generate + run + summary).

A user mistake (bad layout or 外字 table, missing file, bad option) prints one
line ``ikou: error: ...`` on stderr and exits 2; counts that do not reconcile
and failing gates exit 1 (a failing gate also prints the gate report).  Never a traceback for those.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence

__all__ = ["main"]

EXIT_USAGE = 2
EXIT_RECONCILE = 1
EXIT_GATES = 1


class UsageError(Exception):
    """A command-line mistake (reported as one line, exit 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise UsageError(f"{self.prog.split()[-1] if ' ' in self.prog else ''}"
                         f"{': ' if ' ' in self.prog else ''}{message}")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def _sources(text: str) -> tuple[str, ...]:
    from ikou.pipeline.synth_sources import SOURCE_CHOICES

    names = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    bad = [n for n in names if n not in SOURCE_CHOICES]
    if bad or not names:
        raise argparse.ArgumentTypeError(
            f"unknown source {', '.join(bad) or text!r} (choose from "
            f"{', '.join(SOURCE_CHOICES)})")
    return names


def _parser() -> _Parser:
    from ikou.pipeline import __version__

    parser = _Parser(prog="ikou", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"ikou {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    g = sub.add_parser("generate", help="write a synthetic municipality (export, layout, 外字, "
                                        "expected values)")
    g.add_argument("--residents", type=_positive_int, required=True)
    g.add_argument("--seed", type=int, required=True)
    g.add_argument("--out", required=True, help="folder to write into")
    g.add_argument("--corrupt-share", type=_share, default=0.0,
                   help="share of corrupt records (0..1)")
    g.add_argument("--sources", type=_sources, default=None,
                   help="comma-separated exports to write: juki, tax, kokuho, jutogai "
                        "(default: all, with mapping files and job.yaml)")
    g.add_argument("--key-error-share", type=_share, default=0.0,
                   help="share of tax / 国保 records with a missing or mistyped 宛名番号")
    g.add_argument("--source-corrupt-share", type=_share, default=0.0,
                   help="share of corrupt tax / 国保 records (0..1; bad bytes, non-digits, "
                        "bad packed / zoned signs: they go to quarantine)")

    d = sub.add_parser("decode", help="decode one file without a pipeline")
    d.add_argument("input")
    d.add_argument("--layout", required=True)
    d.add_argument("--gaiji", default=None)
    d.add_argument("--out", required=True, help="Arrow IPC file to write")
    d.add_argument("--rejects", default=None, help="Avro file for quarantined records")
    d.add_argument("--gaiji-fallback", action="store_true",
                   help="write the 外字 table's fallback characters (column fallback)")
    d.add_argument("--block-size", type=_positive_int, default=None)

    sub.add_parser("run", add_help=False,
                   help="run the pipeline: --layout L --gaiji G --out DIR INPUT... "
                        "[Beam options]")
    sub.add_parser("match", add_help=False,
                   help="record matching alone: CONFIG.yaml [--out DIR] [--truth T] "
                        "[Beam options]")

    m = sub.add_parser("demo", help="generate a municipality, run the pipeline, summarise")
    m.add_argument("--workdir", default="demo-run")
    m.add_argument("--residents", type=_positive_int, default=10000)
    m.add_argument("--seed", type=int, default=20260401)
    m.add_argument("--corrupt-share", type=_share, default=None,
                   help="share of corrupt 住民記録 records (default 0.002; they are quarantined "
                        "and the tax and 国保 records of those residents go to review)")
    m.add_argument("--key-error-share", type=_share, default=0.05,
                   help="share of tax and 国保 records with a missing or mistyped 宛名番号 "
                        "(default 0.05; record matching resolves them)")
    m.add_argument("--source-corrupt-share", type=_share, default=None,
                   help="share of corrupt tax and 国保 records (default 0.003; they are "
                        "quarantined and the rest is still published)")
    m.add_argument("--gates", choices=("fail", "warn"), default="fail")
    return parser


RUN_HELP = """usage: ikou run JOB.yaml [--out DIR] [--gates fail|warn] [Beam options]
       ikou run --layout L.yaml [--gaiji G.csv] --out DIR INPUT... [Beam options]

Runs the migration pipeline on Beam (FnApiRunner unless --runner names another;
DirectRunner maps to FnApiRunner).  Every option ikou does not know goes to Beam,
e.g. --direct_running_mode=multi_processing --direct_num_workers=2.

A job file (docs/jobs.md) names sources, layouts, the 外字 table, mappings to
standard files, references and gates: the outputs are gated and published
atomically as DIR/current (exit 1 and nothing published when a gate fails).

  --out DIR           output folder (a job: overrides its 'outputs')
  --gates MODE        a job: fail (default) or warn (publish and report)
  --layout L.yaml     layout of the legacy export (no job file)
  --gaiji G.csv       外字 table (optional, no job file)
  --input PATH        an input (repeatable; positional inputs work too)
  --block_size BYTES  bytes per block (default 8 MiB)
"""


# -- subcommands -------------------------------------------------------------

def _cmd_generate(args) -> int:
    from ikou.pipeline.job import write_demo_job
    from ikou.pipeline.synth import ALL_SOURCES, generate_municipality

    gen = generate_municipality(args.out, args.residents, args.seed,
                                corrupt_share=args.corrupt_share,
                                sources=args.sources or ALL_SOURCES,
                                key_error_share=args.key_error_share,
                                source_corrupt_share=args.source_corrupt_share)
    job = write_demo_job(args.out, gen.sources)
    print(f"ikou generate: {args.residents} residents (seed {args.seed}) in {args.out}")
    for label, path in (("export", gen.export), ("layout", gen.layout), ("gaiji", gen.gaiji),
                        ("expected", gen.expected), ("job", job)):
        print(f"  {label:<9}{path}")
    others = sorted(k for k in (getattr(gen, "sources", None) or {}) if k != "juki")
    if others:
        print(f"  also     {', '.join(others)} (exports with their layouts and expected values)")
    bad = {n: q for n, q in gen.quarantined_by_source.items() if q}
    if bad:
        print("  corrupt  " + ", ".join(f"{n} {q}" for n, q in bad.items())
              + " data records (expected in quarantine, see <name>.expected.jsonl)")
    print(f"  run it:  ikou run {job}")
    return 0


def _cmd_decode(args) -> int:
    from ikou.pipeline.gaiji import load_gaiji
    from ikou.pipeline.layout import load_layout
    from ikou.pipeline.reconcile import InputError, check  # no Beam, no GX on this path
    from ikou.transforms.blocks import DEFAULT_BLOCK_SIZE, BlockDecoder, decode_blocks, plan_blocks
    from ikou.transforms.outputs import finalize_results, quarantine_sync_marker

    layout = load_layout(args.layout)
    gaiji = load_gaiji(args.gaiji)
    if not os.path.exists(args.input):
        raise InputError(f"input not found: {args.input}")
    if not os.path.isfile(args.input):
        raise InputError(f"input is not a file: {args.input}")
    for target in (args.out, args.rejects):
        if target and os.path.isdir(target):
            raise InputError(f"output is a folder: {target}")
    size = os.path.getsize(args.input)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".ikou-decode-", dir=out_dir)
    try:
        decoder = BlockDecoder(layout, gaiji, staging, args.gaiji_fallback)
        decoder.quarantine_parts = decoder.row_parts = False  # one process: all in memory
        blocks = plan_blocks(0, os.path.abspath(args.input), size, layout,
                             args.block_size or DEFAULT_BLOCK_SIZE)
        results, digest = decode_blocks(decoder, blocks, workers=min(2, os.cpu_count() or 1))
        arrow_tmp = os.path.join(staging, "out.arrow")
        avro_tmp = os.path.join(staging, "rejects.avro")
        summary = finalize_results(layout, results, None, staging,
                                   quarantine_sync_marker([digest]),
                                   outputs={"data": arrow_tmp}, quarantine_path=avro_tmp)
        os.replace(arrow_tmp, args.out)
        if args.rejects:
            os.makedirs(os.path.dirname(os.path.abspath(args.rejects)), exist_ok=True)
            os.replace(avro_tmp, args.rejects)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    codes = ", ".join(f"{k} {v}" for k, v in summary["quarantined_by_code"].items())
    print(f"ikou decode: {summary['records']} records, {summary['rows_written']} rows -> "
          f"{args.out}, {summary['quarantined']} quarantined"
          + (f" ({codes})" if codes else "")
          + (f" -> {args.rejects}" if args.rejects else ""), file=sys.stderr)
    problems, _ = check(summary, layout)
    if problems:
        print("ikou: error: reconciliation failed: " + "; ".join(problems), file=sys.stderr)
        return EXIT_RECONCILE
    return 0


class _NoPandas:
    """An import hook refusing pandas: ``ikou decode`` never needs it, and pyarrow would import
    it (a second or more) the first time it makes an array.  Only installed for a decode run
    as its own process (``main()`` with the real command line), never inside a caller."""

    def find_spec(self, name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("pandas is not used by ikou decode")
        return None


def _cmd_run(argv: Sequence[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(RUN_HELP, end="")
        return 0
    from ikou.pipeline.demo import format_job_summary, format_summary
    from ikou.pipeline.jobrun import JobResult
    from ikou.pipeline.run import run

    summary = run(argv)
    if isinstance(summary, JobResult):
        print(format_job_summary(summary))
    else:
        print(format_summary(summary))
    return 0


def _cmd_demo(args, beam_args: Sequence[str]) -> int:
    from ikou.pipeline.demo import DEMO_CORRUPT_SHARE, DEMO_SOURCE_CORRUPT_SHARE, run_demo

    share = args.source_corrupt_share
    corrupt = DEMO_CORRUPT_SHARE if args.corrupt_share is None else args.corrupt_share
    run_demo(args.workdir, args.residents, args.seed, corrupt, beam_args,
             echo=print, key_error_share=args.key_error_share, gates=args.gates,
             source_corrupt_share=DEMO_SOURCE_CORRUPT_SHARE if share is None else share)
    return 0


class _DropImportNoise(logging.Filter):
    """Beam logs a warning about optional GCP clients at import: not for our users."""

    def filter(self, record):
        return "apitools not found" not in record.getMessage()


def main(argv: Sequence[str] | None = None) -> int:
    from_command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if from_command_line and argv[:1] == ["decode"] and "pandas" not in sys.modules:
        sys.meta_path.insert(0, _NoPandas())
    logging.getLogger().addFilter(_DropImportNoise())
    logging.getLogger("great_expectations").setLevel(logging.WARNING)

    def loaded(module: str, name: str):
        """The exception class ``module.name`` if that module was imported, else nothing to
        catch (an exception of a module never imported cannot have been raised): ``ikou decode``
        imports neither Beam nor GX, its ``--help`` not even pyarrow."""
        m = sys.modules.get(module)
        return getattr(m, name) if m is not None else ()

    try:
        if argv and argv[0] == "run":
            return _cmd_run(argv[1:])
        if argv and argv[0] == "match":  # record matching alone (ikou.pipeline.matchrun)
            from ikou.pipeline.matchrun import main as match_main
            return match_main(argv[1:])
        parser = _parser()
        if argv and argv[0] == "demo":
            args, extra = parser.parse_known_args(argv)
        else:
            args, extra = parser.parse_args(argv), []
        if args.command == "generate":
            return _cmd_generate(args)
        if args.command == "decode":
            return _cmd_decode(args)
        if args.command == "demo":
            return _cmd_demo(args, extra)
        raise UsageError(f"unknown command {args.command!r}")  # pragma: no cover
    except loaded("ikou.pipeline.reconcile", "ReconciliationError") as exc:
        print(f"ikou: error: {exc}", file=sys.stderr)
        return EXIT_RECONCILE
    except loaded("ikou.pipeline.jobrun", "GateFailure") as exc:
        print(exc.report.summary(), file=sys.stderr)
        print(f"ikou: error: {exc}; validation results and Data Docs in {exc.run_dir}",
              file=sys.stderr)
        return EXIT_GATES
    except (UsageError, ValueError, OSError) as exc:
        if os.environ.get("IKOU_DEBUG"):
            raise
        message = str(exc)
        if isinstance(exc, OSError) and exc.filename and exc.strerror:
            message = f"{exc.filename}: {exc.strerror}"
        print(f"ikou: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("ikou: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
