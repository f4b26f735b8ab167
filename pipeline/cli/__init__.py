"""ikou: migrate Japanese municipal legacy exports to the intermediate standard layout.

Subcommands: ``generate`` (a synthetic municipality), ``decode`` (one file, no pipeline),
``layout import`` (a COBOL copybook → a layout),
``run`` (a job file, or files of one layout, on Beam), ``match`` (record matching alone, on
Beam), ``demo`` (generate + run + summary), ``report`` (rebuild a run's ``report.html``),
``bench`` (time a whole job and project it to a municipality's size).

Exit codes: 0 done; 2 a user mistake (bad layout, 外字 table, job or option, missing file),
printed as one line ``ikou: error: ...``; 3 the counts do not reconcile; 4 a gate failed
(the gate report is printed). Nothing is published on 3 or 4. Any other failure is a bug and
keeps its traceback. Every command imports Beam and Great Expectations only when it runs them.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence

from ikou.pipeline.errors import GateFailure, ReconciliationError, UserError

__all__ = ["EXIT_GATES", "EXIT_RECONCILE", "EXIT_USAGE", "main"]

EXIT_USAGE = 2
EXIT_RECONCILE = 3
EXIT_GATES = 4


class UsageError(UserError):
    """A command-line mistake (reported as one line, exit 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        command = self.prog.split()[-1] if " " in self.prog else ""
        if "arguments are required" in message:
            message += f" (usage: {self.prog} ..., see {self.prog} --help)"
        raise UsageError(f"{command}{': ' if command else ''}{message}")


#: ``ikou generate`` / ``ikou demo --encoding`` (the generator's mainframe encodings;
#: ikou.pipeline.synth.encodings.GENERATE_ENCODINGS, named here to keep the CLI import light)
_GENERATE_ENCODINGS = ("cp932", "ibm930", "ibm939", "ibm1390", "jef", "keis83", "jips-e")

def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _block_size(text: str) -> int:
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"block size {exc}") from None


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def _sources(text: str) -> tuple[str, ...]:
    from ikou.pipeline.synth.sources import SOURCE_CHOICES

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
    g.add_argument("--residents", type=_positive_int, required=True,
                   help="residents of the synthetic town")
    g.add_argument("--seed", type=int, required=True,
                   help="random seed: the same seed writes the same bytes")
    g.add_argument("--out", required=True, help="folder to write into")
    g.add_argument("--encoding", default="cp932", choices=_GENERATE_ENCODINGS,
                   help="write the exports in this encoding (default cp932; mainframe encodings "
                        "get EBCDIC numbers and a 外字 table in the encoding's user area)")
    g.add_argument("--corrupt-share", type=_share, default=0.0,
                   help="share of corrupt records (0..1)")
    g.add_argument("--record-format", choices=("F", "V", "VB"), default="F",
                   help="write the 住民記録 export as F (fixed length, default), V (records "
                        "behind RDWs) or VB (blocked, behind BDWs), trailing spaces trimmed")
    g.add_argument("--sources", type=_sources, default=None,
                   help="comma-separated exports to write: juki, tax, kokuho, jutogai "
                        "(default: all, with mapping files and job.yaml)")
    g.add_argument("--key-error-share", type=_share, default=0.0,
                   help="share of tax / 国保 records with a missing or mistyped 宛名番号")
    g.add_argument("--source-corrupt-share", type=_share, default=0.0,
                   help="share of corrupt tax / 国保 records (0..1; bad bytes, non-digits, "
                        "bad packed / zoned signs: they go to quarantine)")
    g.add_argument("--households", action="store_true",
                   help="write the household cases into the tax file (住登外 relatives and "
                        "namesakes, moves, maiden surnames, birth typos, unspaced names, blank "
                        "郵便番号) at the demo's shares; any share option below implies it")
    for opt, help_text in (
            ("relative-share", "per household: chance of a 住登外 relative taxed at its address"),
            ("namesake-share", "share of those relatives named as the 世帯主"),
            ("move-share", "taxpayers who moved within the town since 1 January"),
            ("marriage-share", "taxpayers taxed under a maiden surname"),
            ("typo-share", "tax records with a mistyped birth date"),
            ("unspaced-share", "tax names without a full-width space between 氏 and 名"),
            ("blank-postal-share", "tax records with a blank 郵便番号")):
        g.add_argument(f"--{opt}", dest=opt.replace("-", "_"), type=_share, default=None,
                       help=f"{help_text} (0..1; with --households: HOUSEHOLD_CASES)")
    g.add_argument("--no-tax-keys", dest="tax_keys", action="store_false", default=None,
                   help="tax records carry no 宛名番号 (match by name, birth, address)")
    _add_no_progress(g)

    d = sub.add_parser("decode", help="decode one file without a pipeline")
    d.add_argument("input", help="the legacy export")
    d.add_argument("--layout", required=True, help="layout YAML of the export")
    d.add_argument("--gaiji", default=None, help="外字 table CSV")
    d.add_argument("--out", required=True,
                   help="Arrow IPC file to write (the data kind, else the first row kind; "
                        "other row kinds beside it as OUT.<kind>.arrow)")
    d.add_argument("--rejects", default=None, help="Avro file for quarantined records")
    d.add_argument("--gaiji-fallback", action="store_true",
                   help="write the 外字 table's fallback characters (column fallback)")
    d.add_argument("--shape", choices=("flat", "nested"), default=None,
                   help="rows flat or nested by the copybook's structure (default: the "
                        "layout's shape)")
    d.add_argument("--block-size", type=_block_size, default=None,
                   help="bytes per block, rounded down to whole records (default 8 MiB)")

    lay = sub.add_parser("layout", help="layout files: import a COBOL copybook")
    lay_sub = lay.add_subparsers(dest="layout_command", metavar="ACTION", parser_class=_Parser)
    lay_sub.required = True
    _add_layout_import_args(lay_sub.add_parser(
        "import", help="a COBOL copybook -> an ikou layout (YAML)",
        description=LAYOUT_IMPORT_DESCRIPTION))

    commands = {}
    commands["run"] = _add_run_args(sub.add_parser("run", help="run a migration job (JOB.yaml), or files of one "
                                             "layout (--layout), on Beam",
                                 description=RUN_DESCRIPTION, epilog=BEAM_EPILOG))
    commands["match"] = _add_match_args(sub.add_parser("match", help="record matching (名寄せ) alone, on Beam",
                                   description=MATCH_DESCRIPTION, epilog=BEAM_EPILOG))

    m = commands["demo"] = sub.add_parser(
        "demo", help="generate a municipality, run the pipeline, summarise", epilog=BEAM_EPILOG)
    m.add_argument("--workdir", default="demo-run",
                   help="folder for the generated inputs and the outputs (default demo-run)")
    m.add_argument("--residents", type=_positive_int, default=10000,
                   help="residents of the synthetic town (default 10,000)")
    m.add_argument("--seed", type=int, default=20260401, help="random seed (default 20260401)")
    m.add_argument("--encoding", default="cp932", choices=_GENERATE_ENCODINGS,
                   help="encoding of the generated exports (default cp932)")
    m.add_argument("--corrupt-share", type=_share, default=None,
                   help="share of corrupt 住民記録 records (default 0.002; they are quarantined "
                        "and the tax and 国保 records of those residents go to review)")
    m.add_argument("--key-error-share", type=_share, default=0.05,
                   help="share of tax and 国保 records with a missing or mistyped 宛名番号 "
                        "(default 0.05; record matching resolves them)")
    m.add_argument("--source-corrupt-share", type=_share, default=None,
                   help="share of corrupt tax and 国保 records (default 0.003; they are "
                        "quarantined and the rest is still published)")
    m.add_argument("--gates", choices=("fail", "warn"), default="fail",
                   help="fail (default: publish nothing when a gate fails) or warn")
    _add_report_lang(m)
    _add_no_progress(m)

    r = sub.add_parser("report", help="rebuild report.html of an earlier run from its "
                                      "manifest and results")
    r.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (OUT/runs/<run id>)")
    r.add_argument("--report-lang", "--lang", dest="report_lang", choices=("ja", "en"),
                   default="ja", help="language of the report (default ja)")
    r.add_argument("--out", default=None, metavar="FILE",
                   help="file to write (default RUN_DIR/report.html)")

    b = commands["bench"] = sub.add_parser(
        "bench", help="time a whole job (generated town or JOB.yaml), per stage, and project "
                      "the wall time to a municipality's size", epilog=BEAM_EPILOG)
    b.add_argument("job", nargs="?", metavar="JOB.yaml",
                   help="a job on real exports (instead of --residents)")
    b.add_argument("--residents", type=_positive_int, default=None,
                   help="residents of the generated town (also measured: /16 and /4 of it)")
    b.add_argument("--sizes", default=None, metavar="N,N,...",
                   help="the town sizes to measure (default N/16, N/4, N)")
    b.add_argument("--encoding", choices=_GENERATE_ENCODINGS, default="cp932",
                   help="encoding of the generated exports (default cp932)")
    b.add_argument("--workers", type=_positive_int, default=1,
                   help="Beam worker processes (default 1: in process)")
    b.add_argument("--project", type=_positive_int, default=370000, metavar="RESIDENTS",
                   help="project the wall time for this many residents (default 370,000)")
    b.add_argument("--json", default=None, metavar="OUT", help="write every figure as JSON")
    _add_no_progress(b)
    parser.commands = commands
    return parser


RUN_DESCRIPTION = """Run a migration on Beam. With a job file (docs/jobs.md): decode and map every
source, reconcile, match, gate and publish the standard files atomically as DIR/current
(exit 4 and nothing published when a gate fails). With --layout: files of one layout, decoded
and published the same way, without mapping or gates."""

MATCH_DESCRIPTION = """Record matching (名寄せ) alone, on Beam: links.arrow, review.arrow and
unmatched.arrow in DIR, with precision / recall / F1 when --truth is given."""

BEAM_EPILOG = """Beam options pass through unchanged (Beam's FnApiRunner unless --runner names
another; DirectRunner maps to it), e.g. --direct_running_mode=multi_processing
--direct_num_workers=2. An option neither ikou nor Beam knows is refused."""


LAYOUT_IMPORT_DESCRIPTION = """Read a COBOL copybook (fixed or free source format) and write the
ikou layout of its record: offsets and lengths as IBM Enterprise COBOL lays them out, a kernel
type per elementary item, and the copybook's tree (structure) for nested output. See
docs/copybooks.md."""


def _add_layout_import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("copybook", metavar="COPYBOOK", help="the COBOL copybook")
    p.add_argument("--out", default=None, metavar="L.yaml",
                   help="layout file to write (default: standard output)")
    p.add_argument("--name", default=None, help="layout name (default: the copybook's file name)")
    p.add_argument("--encoding", default="cp037",
                   help="encoding of the data files (default cp037, EBCDIC; e.g. ibm930, jef, "
                        "cp932)")
    p.add_argument("--record-format", "--record_format", dest="record_format",
                   choices=("F", "FB", "V", "VB"), default="F",
                   help="record format of the data files (default F: fixed length)")
    p.add_argument("--source-format", "--source_format", dest="source_format",
                   choices=("fixed", "free"), default=None,
                   help="copybook source format (default: detected)")
    p.add_argument("--pic-n", "--pic_n", dest="pic_n", choices=("dbcs", "utf16"), default=None,
                   help="PIC N without USAGE: utf16 (USAGE NATIONAL, as Cobrix reads it; "
                        "the default) or dbcs (NSYMBOL(DBCS): double-byte kanji)")
    p.add_argument("--dbcs-encoding", "--dbcs_encoding", dest="dbcs_encoding", default=None,
                   help="double-byte encoding of PIC G / DISPLAY-1 / PIC N as DBCS items "
                        "(default: --encoding when it is double-byte, e.g. ibm930)")
    p.add_argument("--record-type", "--record_type", dest="record_type", default=None,
                   metavar="FIELD", help="the field whose value tells the record kinds apart")
    p.add_argument("--kind", dest="kinds", action="append", default=None,
                   metavar="NAME=CODE:ALT[,ALT]",
                   help="a record kind: its record-type code and the 01 record or REDEFINES "
                        "alternative(s) it holds (repeatable)")
    p.add_argument("--count-field", "--count_field", dest="count_field", default=None,
                   metavar="FIELD", help="the trailer kind's record count (reconciled on a run)")
    p.add_argument("--copy-path", "--copy_path", dest="copy_path", action="append",
                   default=None, metavar="DIR",
                   help="a folder of COPY members (repeatable; NAME, NAME.cpy, NAME.cob)")
    p.add_argument("--float-format", "--float_format", dest="float_format",
                   choices=("ibm", "ieee"), default="ibm",
                   help="COMP-1 / COMP-2: IBM hexadecimal floating point (the default) or "
                        "IEEE 754")
    p.add_argument("--blank-numbers", "--blank_numbers", dest="blank_numbers",
                   choices=("error", "null"), default="error",
                   help="an all-space DISPLAY number (PIC 9, numeric-edited): an error that "
                        "quarantines the record (the default) or null")
    p.add_argument("--shape", choices=("flat", "nested"), default="flat",
                   help="output rows flat (a column per item: what mappings and gates read; "
                        "the default) or nested (groups as struct columns, OCCURS as lists)")
    p.add_argument("--cobrix-binary-sizes", "--cobrix_binary_sizes", dest="cobrix_binary",
                   action="store_true", default=False,
                   help="accept 19-38-digit binary items with Cobrix's sizes (9-16 bytes; IBM "
                        "allows at most 18 digits); they are imported as raw bytes")


def _add_no_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", "--no_progress", dest="no_progress", action="store_true",
                   default=False, help="no progress display (it shows only on a terminal)")


def _add_report_lang(p: argparse.ArgumentParser) -> None:
    p.add_argument("--report-lang", "--report_lang", dest="report_lang", choices=("ja", "en"),
                   default="ja", help="language of report.html (default ja: Japanese)")


def _add_run_args(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("paths", nargs="*", metavar="JOB.yaml | INPUT",
                   help="a job file, or (with --layout) the input files")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (a job: overrides its 'outputs')")
    p.add_argument("--gates", choices=("fail", "warn"), default=None,
                   help="a job: fail (default: publish nothing when a gate fails) or warn "
                        "(publish and report)")
    p.add_argument("--layout", default=None, metavar="L.yaml",
                   help="layout of the legacy export (files of one layout, no job file)")
    p.add_argument("--gaiji", default=None, metavar="G.csv",
                   help="外字 table (with --layout; a job names it in the job file)")
    p.add_argument("--input", dest="inputs", action="append", default=None, metavar="PATH",
                   help="an input file (repeatable; positional inputs work too)")
    p.add_argument("--block-size", "--block_size", dest="block_size", type=_block_size,
                   default=None, metavar="BYTES",
                   help="bytes per block, rounded down to whole records (default 8 MiB)")
    p.add_argument("--gaiji-fallback", "--gaiji_fallback", dest="gaiji_fallback",
                   action="store_true", default=False,
                   help="write the 外字 table's fallback characters (column fallback)")
    _add_report_lang(p)
    _add_no_progress(p)
    return p


def _add_match_args(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("config", metavar="CONFIG.yaml", help="matching configuration")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default: <name>-match)")
    p.add_argument("--truth", default=None, metavar="T.jsonl",
                   help="truth file (JSON lines): report precision / recall / F1")
    p.add_argument("--match-shards", "--match_shards", dest="match_shards", type=_positive_int,
                   default=None, help="hash partitions per grouping (default 16)")
    p.add_argument("--match-slice-rows", "--match_slice_rows", dest="match_slice_rows",
                   type=_positive_int, default=None,
                   help="records per input element (default 65,536)")
    _add_no_progress(p)
    return p


def _command_parser(name: str) -> _Parser:
    """The parser of one Beam command on its own (``ikou run``, ``ikou match``, ``ikou demo``),
    for :func:`ikou.pipeline.run.beam.split_args`."""
    return _parser().commands[name]


# -- subcommands -------------------------------------------------------------

def _household_options(args, cases, options_type):
    """``--households`` and the share options → HouseholdOptions (None: the plain file)."""
    given = {f: getattr(args, f) for f in options_type.__dataclass_fields__
             if getattr(args, f, None) is not None}
    if not args.households and not given:
        return None
    from dataclasses import replace

    return replace(cases, **given)


def _cmd_generate(args) -> int:
    from ikou.pipeline.config.job import write_demo_job
    from ikou.pipeline.synth.municipality import (
        ALL_SOURCES,
        HOUSEHOLD_CASES,
        HouseholdOptions,
        generate_municipality,
    )

    bar = _stage_progress(args, "generate")
    bar.stage(f"{args.residents:,} residents")
    try:
        gen = generate_municipality(args.out, args.residents, args.seed,
                                    corrupt_share=args.corrupt_share,
                                    sources=args.sources or ALL_SOURCES,
                                    key_error_share=args.key_error_share,
                                    source_corrupt_share=args.source_corrupt_share,
                                    household=_household_options(args, HOUSEHOLD_CASES,
                                                                 HouseholdOptions))
        job = write_demo_job(args.out, gen.sources)
        if args.encoding != "cp932":
            from ikou.pipeline.synth.encodings import transcode_town

            bar.stage(f"transcoding to {args.encoding}")
            transcode_town(args.out, args.encoding)
        if args.record_format != "F":
            from ikou.pipeline.synth.records import convert_export

            bar.stage(f"record format {args.record_format}")
            convert_export(gen.export, gen.layout, args.record_format)
    finally:
        bar.close()
    print(f"ikou generate: {args.residents} residents (seed {args.seed}, {args.encoding}) "
          f"in {args.out}")
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
    from ikou.pipeline.config.inputs import input_problem
    from ikou.pipeline.errors import InputError

    # the input's digest (for the reject file's sync marker) is computed while pyarrow, numpy
    # and the kernels are imported, not after; its problems are reported after the layout's
    from ikou.pipeline.steps.manifest import BackgroundDigests

    problem = input_problem(args.input)
    digests = None if problem else BackgroundDigests([args.input])
    from ikou.pipeline.config.gaiji import load_gaiji
    from ikou.pipeline.config.layout import load_layout
    from ikou.pipeline.steps.reconcile import check  # no Beam, no GX on this path
    from ikou.transforms.decode.blocks import (
        DEFAULT_BLOCK_SIZE,
        BlockDecoder,
        decode_blocks,
        plan_blocks,
        row_schema,
    )
    from ikou.transforms.decode.outputs import RowWriter, finalize_results, quarantine_sync_marker

    layout = load_layout(args.layout)
    if args.shape and args.shape != layout.shape:
        if args.shape == "nested" and not any(layout.structure_of(k) for k in layout.kinds):
            raise InputError(f"--shape nested: the layout {args.layout} has no structure "
                             f"(import it from a copybook)")
        layout = dataclasses.replace(layout, shape=args.shape)
    gaiji = load_gaiji(args.gaiji)
    if problem:
        raise InputError(problem)
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
        decoder.gaiji_counts = False  # for the run report: ikou decode writes none
        blocks = plan_blocks(0, os.path.abspath(args.input), size, layout,
                             args.block_size or DEFAULT_BLOCK_SIZE)
        targets = decode_outputs(layout, args.out)
        tmps = {kind: os.path.join(staging, f"out-{kind}.arrow") for kind in targets}
        with contextlib.ExitStack() as stack:
            # each block's rows are written (and let go) while the next blocks decode
            writers = {kind: stack.enter_context(RowWriter(path, row_schema(layout, kind)))
                       for kind, path in tmps.items()}

            def write_rows(result) -> None:
                for kind, rows in result.tables.items():
                    writers[kind].add(rows)
                result.tables.clear()

            results, _ = decode_blocks(decoder, blocks, workers=min(2, os.cpu_count() or 1),
                                       digest=False, on_result=write_rows)
        ((digest, _size),) = digests.result()
        avro_tmp = os.path.join(staging, "rejects.avro")
        summary = finalize_results(layout, results, None, staging,
                                   quarantine_sync_marker([digest]),
                                   outputs=tmps, quarantine_path=avro_tmp,
                                   written={kind: w.rows for kind, w in writers.items()})
        for kind, target in targets.items():
            os.replace(tmps[kind], target)
        if args.rejects:
            os.makedirs(os.path.dirname(os.path.abspath(args.rejects)), exist_ok=True)
            os.replace(avro_tmp, args.rejects)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    codes = ", ".join(f"{k} {v}" for k, v in summary["quarantined_by_code"].items())
    print(f"ikou decode: {summary['records']} records, {summary['rows_written']} rows -> "
          f"{', '.join(targets.values())}, {summary['quarantined']} quarantined"
          + (f" ({codes})" if codes else "")
          + (f" -> {args.rejects}" if args.rejects else ""), file=sys.stderr)
    problems, _ = check(summary, layout)
    if problems:
        print("ikou: error: reconciliation failed: " + "; ".join(problems), file=sys.stderr)
        return EXIT_RECONCILE
    return 0


def decode_outputs(layout, out: str) -> dict[str, str]:
    """Row kind → file for ``ikou decode --out OUT``: ``data`` (else the first row kind) goes
    to OUT, every other row kind beside it as ``OUT-stem.<kind>.arrow``."""
    kinds = layout.row_kinds
    main = "data" if "data" in kinds else kinds[0]
    stem = out[:-len(".arrow")] if out.endswith(".arrow") else out
    return {kind: out if kind == main else f"{stem}.{kind}.arrow" for kind in kinds}


class _NoPandas:
    """An import hook refusing pandas: ``ikou decode`` never needs it, and pyarrow would import
    it (a second or more) the first time it makes an array.  Only installed for a decode run
    as its own process (``main()`` with the real command line), never inside a caller."""

    def find_spec(self, name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError("pandas is not used by ikou decode")
        return None


def _cmd_run(args, beam_args: Sequence[str]) -> int:
    from ikou.pipeline.cli.report import format_job_summary

    paths = list(args.paths)
    if args.layout is None and paths and paths[0].endswith((".yaml", ".yml")):
        if len(paths) > 1 or args.inputs:
            raise UsageError("run: a job file names its inputs: ikou run JOB.yaml [--out DIR] "
                             "[--gates fail|warn] [Beam options]")
        if args.gaiji:
            raise UsageError("run: --gaiji is given in the job file ('gaiji:'), not on the "
                             "command line")
        from ikou.pipeline.config.job import load_job
        from ikou.pipeline.steps.manifest import BackgroundDigests

        # the job is read and its inputs hashed (on a thread) before Beam is imported: a mistake
        # in the job file is reported at once, and hashing overlaps the import
        job = load_job(paths[0])
        digests = BackgroundDigests([p for _, p in job.inputs])
        from ikou.pipeline.run.job import run_job

        print(format_job_summary(run_job(job, args.out, args.gates, beam_args,
                                         args.block_size,
                                         gaiji_fallback=args.gaiji_fallback or None,
                                         started=_STARTED, input_digests=digests,
                                         report_lang=args.report_lang,
                                         progress=_run_progress(args))))
        return 0
    if args.gates:
        raise UsageError("run: --gates applies to job files (ikou run JOB.yaml --gates warn)")
    missing = [o for o in ("layout", "out") if not getattr(args, o)]
    if missing:
        raise UsageError("run: give a job file (ikou run JOB.yaml), or "
                         + " and ".join("--" + m for m in missing)
                         + " with input files (ikou run --layout L --out DIR INPUT...)")
    inputs = list(args.inputs or []) + paths
    if not inputs:
        raise UsageError("run: no input files given (ikou run --layout L --out DIR INPUT... or "
                         "ikou run JOB.yaml)")
    from ikou.pipeline.run.single import run_migration
    from ikou.transforms.decode.blocks import DEFAULT_BLOCK_SIZE

    print(format_job_summary(run_migration(args.layout, args.gaiji, inputs, args.out, beam_args,
                                       args.block_size or DEFAULT_BLOCK_SIZE,
                                       args.gaiji_fallback, _STARTED, args.report_lang)))
    return 0


def _run_progress(args):
    from ikou.pipeline.run.progress import RunProgress, progress_wanted

    return RunProgress() if progress_wanted(args.no_progress) else None


def _stage_progress(args, command: str):
    from ikou.pipeline.run.progress import NullProgress, StageProgress, progress_wanted

    return StageProgress(command) if progress_wanted(args.no_progress) else NullProgress()


def _cmd_match(args, beam_args: Sequence[str]) -> int:
    from ikou.pipeline.run.match import format_accuracy, format_counts, run_match

    bar = _stage_progress(args, "match")
    bar.stage("linking")
    try:
        run = run_match(args.config, args.out, beam_args, args.truth, args.match_shards,
                        args.match_slice_rows)
    finally:
        bar.close()
    print(format_counts(run))
    if run.accuracy is not None:
        print(format_accuracy(run.accuracy))
    return 0


def _cmd_demo(args, beam_args: Sequence[str]) -> int:
    from ikou.pipeline.cli.demo import DEMO_CORRUPT_SHARE, DEMO_SOURCE_CORRUPT_SHARE, run_demo

    share = args.source_corrupt_share
    corrupt = DEMO_CORRUPT_SHARE if args.corrupt_share is None else args.corrupt_share
    run_demo(args.workdir, args.residents, args.seed, corrupt, beam_args,
             echo=print, key_error_share=args.key_error_share, gates=args.gates,
             source_corrupt_share=DEMO_SOURCE_CORRUPT_SHARE if share is None else share,
             encoding=args.encoding, report_lang=args.report_lang,
             progress=_run_progress(args))
    return 0


def _cmd_bench(args, beam_args: Sequence[str]) -> int:
    import json

    from ikou.pipeline.run.bench import bench_job, bench_town, format_bench

    if (args.job is None) == (args.residents is None):
        raise UsageError("bench: give --residents N (a generated town) or JOB.yaml (real "
                         "exports), not both")
    bar = _stage_progress(args, "bench")
    try:
        if args.job is not None:
            from ikou.pipeline.config.job import load_job

            load_job(args.job)  # a mistake in the job is one line, before anything runs
            result = bench_job(args.job, args.workers, args.project, beam_args, step=bar.stage)
        else:
            sizes = None
            if args.sizes:
                try:
                    sizes = [_positive_int(x) for x in args.sizes.split(",") if x.strip()]
                except argparse.ArgumentTypeError as exc:
                    raise UsageError(f"bench: --sizes: {exc}") from None
            result = bench_town(args.residents, sizes, args.encoding, args.workers,
                                args.project, beam_args, step=bar.stage)
    finally:
        bar.close()
    print(format_bench(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result.to_dict(), f, ensure_ascii=False, indent=1)
    return 0


def _cmd_layout_import(args) -> int:
    from ikou.pipeline.config.copybook import (
        CopybookOptions,
        copybook_layout,
        dump_layout,
        parse_kind,
    )
    from ikou.pipeline.errors import InputError

    path = args.copybook
    if not os.path.isfile(path):
        raise InputError(f"layout import: {path}: no such copybook")
    options = CopybookOptions(
        source_format=args.source_format, copy_path=tuple(args.copy_path or ()),
        cobrix_binary=args.cobrix_binary, encoding=args.encoding, pic_n=args.pic_n,
        dbcs_encoding=args.dbcs_encoding, record_type=args.record_type,
        kinds=tuple(parse_kind(k) for k in args.kinds or ()), name=args.name,
        record_format=args.record_format, count_field=args.count_field,
        float_format=args.float_format, blank_numbers=args.blank_numbers)
    data = open(path, "rb").read()
    doc = copybook_layout(path, options)
    if args.shape == "nested":
        doc["shape"] = "nested"
    text = dump_layout(doc, path, data)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    tmp = f"{args.out}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    os.replace(tmp, args.out)
    print(f"ikou layout import: {path} -> {args.out}", file=sys.stderr)
    return 0


def _cmd_report(args) -> int:
    from pathlib import Path

    from ikou.pipeline.errors import InputError
    from ikou.pipeline.report import write_report

    run_dir = Path(args.run_dir)
    if not (run_dir / "manifest.json").is_file():
        raise InputError(f"report: {run_dir}: no manifest.json (give a run folder, "
                         "OUT/runs/<run id>)")
    path = write_report(run_dir, args.out, args.report_lang)
    print(f"ikou report: {path}")
    return 0


class _DropImportNoise(logging.Filter):
    """Beam logs a warning about optional GCP clients at import: not for our users."""

    def filter(self, record):
        return "apitools not found" not in record.getMessage()


_STARTED: float | None = None

_BEAM_COMMANDS = {"run": _cmd_run, "match": _cmd_match, "demo": _cmd_demo, "bench": _cmd_bench}


def _refuse_other_commands_options(command: str, argv: Sequence[str], commands: dict) -> None:
    """An option of another ikou command (``ikou match --layout``) is named as such."""
    own = {o for a in commands[command]._actions for o in a.option_strings}
    for name, other in commands.items():
        if name == command:
            continue
        theirs = {o for a in other._actions for o in a.option_strings} - own
        for tok in argv:
            if tok.split("=", 1)[0] in theirs:
                raise UsageError(f"ikou {command} does not take {tok.split('=', 1)[0]} "
                                 f"(an option of ikou {name})")


def _is_spec_error(exc: BaseException) -> bool:
    """A kernel's error for a bad specification (a layout field, a variant table): a user
    mistake, though the kernels sit below ikou's error root. Checked without importing them."""
    for module, names in (("ikou.kernels._decode_common", ("PlanError",)),
                          ("ikou.kernels._match_common", ("MatchConfigError",))):
        mod = sys.modules.get(module)
        if mod is not None and isinstance(exc, tuple(getattr(mod, n) for n in names)):
            return True
    return False


def started_at() -> float:
    """``time.perf_counter()`` at the start of this process (its age read from /proc where there
    is one, else now): a run's ``startup`` stage is the time from there to the run itself."""
    now = time.perf_counter()
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        return now - max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return now


def _debug() -> bool:
    return os.environ.get("IKOU_DEBUG", "") not in ("", "0")


def _tune_process() -> None:
    """Settings for ikou as a process of its own (never applied inside a caller's process).

    numpy's OpenBLAS starts a thread per core that spins between calls; ikou does no large
    linear algebra, and those threads take time from the decoding and matching threads (a
    user's own ``OPENBLAS_NUM_THREADS`` is kept).  The cyclic garbage collector would walk the
    hundreds of thousands of long-lived objects that imports and tables create every 700
    allocations; ikou's data lives in Arrow buffers and makes few cycles, so it runs less
    often."""
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    gc.set_threshold(50_000, 20, 20)


def main(argv: Sequence[str] | None = None) -> int:
    global _STARTED
    from_command_line = argv is None
    # the run's startup stage: from this process's start, when this is the ikou command itself
    _STARTED = started_at() if from_command_line else None
    argv = list(sys.argv[1:] if argv is None else argv)
    if from_command_line:
        _tune_process()
    if from_command_line and argv[:1] == ["decode"] and "pandas" not in sys.modules:
        sys.meta_path.insert(0, _NoPandas())
    logging.getLogger().addFilter(_DropImportNoise())
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    try:
        if argv and argv[0] in _BEAM_COMMANDS and not {"-h", "--help"} & set(argv[1:]):
            if argv[0] == "demo" or (argv[0] == "run" and "--layout" not in argv and any(
                    a.endswith((".yaml", ".yml")) for a in argv[1:])):
                from ikou.pipeline.steps import gate_worker

                gate_worker.prestart()  # Great Expectations loads on the other core meanwhile
            from ikou.pipeline.run.beam import split_args

            commands = _parser().commands
            _refuse_other_commands_options(argv[0], argv[1:], commands)
            args, beam_args = split_args(argv[1:], commands[argv[0]])
            return _BEAM_COMMANDS[argv[0]](args, beam_args)
        args = _parser().parse_args(argv)
        if args.command == "generate":
            return _cmd_generate(args)
        if args.command == "decode":
            return _cmd_decode(args)
        if args.command == "report":
            return _cmd_report(args)
        if args.command == "layout" and args.layout_command == "import":
            return _cmd_layout_import(args)
        raise UsageError(f"unknown command {args.command!r}")  # pragma: no cover
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0)
    except ReconciliationError as exc:
        print(f"ikou: error: {exc.line()}", file=sys.stderr)
        return EXIT_RECONCILE
    except GateFailure as exc:
        print(exc.report.summary(), file=sys.stderr)
        print(f"ikou: error: {exc}; validation results and Data Docs in {exc.run_dir}",
              file=sys.stderr)
        return EXIT_GATES
    except KeyboardInterrupt:
        print("ikou: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        user_os_error = isinstance(exc, OSError) and bool(exc.filename) and bool(exc.strerror)
        if _debug() or not (isinstance(exc, UserError) or _is_spec_error(exc) or user_os_error):
            raise
        message = f"{exc.filename}: {exc.strerror}" if user_os_error else str(exc)
        print(f"ikou: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        gate_worker = sys.modules.get("ikou.pipeline.steps.gate_worker")
        if gate_worker is not None:
            gate_worker.discard()  # a worker prestarted for a run that never reached its gates
        if from_command_line:
            gc.freeze()  # the process ends: the last collection need not walk every object


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
