"""Quality gates: run the expectation suites on staged outputs before they are published.

::

    report = run_gates({"juki": staging / "juki.arrow", "kojin_juminzei": ...}, run_dir,
                       mode="fail", expected_rows={"juki": 1000})
    print(report.summary()); report.publish  # True only if every gate passed (or mode "warn")

For every staged output that has a suite (``expectations/suites/<name>/<name>.json``) the gates
validate the Arrow IPC file with Great Expectations 1.x in an ephemeral context. Two engines
give the same results (``tests/test_gates.py`` compares them on planted failures):

- ``engine="arrow"`` (default): the metrics each expectation asks for are computed with
  ``pyarrow.compute`` on the memory-mapped file, a column at a time; GX substitutes the suite
  parameters, decides success, formats every result, computes the statistics, stores the
  results and builds Data Docs (:mod:`ikou.expectations.arrow_engine`). A suite holding
  something that module does not compute (e.g. a column missing from the file) is validated
  with the second engine instead; ``OutputGate.engine`` says which one ran.
- ``engine="gx-pandas"``: GX's pandas execution engine on a pandas copy of the table (pandas
  data source, whole-dataframe batch definition, a Checkpoint per output) — the reference.

``expected_rows[name]`` feeds the suite parameter ``expected_rows`` (what reconciliation
says); without it the row-count expectation is left out and the report says so.
``report.timings`` splits the step: load (map the files, cross-file lookup), setup (GX
context), validate, results (trim, store, write), data_docs.

Cross-file rule: for every item marked ``references: resident`` (宛名番号 in the tax and
insurance files) the gates build a joined table — one row per row of that output with
``found_in`` = the reference output (``juki`` or ``jutogai``) holding the same 宛名番号, null if
none — and validate it with ``expectations/suites/cross/atena_reference.json``.

Personal values never leave: results use ``result_format`` SUMMARY with
``exclude_unexpected_values`` and ``unexpected_index_column_names`` = ``_record`` + the
宛名番号 column; the results are then trimmed (at most ``sample`` failing rows per expectation,
no value lists) before they are written to ``run_dir/validations/*.json`` and before Data Docs
are built into ``run_dir/data_docs/`` from them. The built site is then rewritten to work on a
closed network (no CDN script or style, no logo beacon, no newsletter form:
:func:`ikou.pipeline.report.datadocs.make_offline`).

``mode="fail"``: ``report.publish`` is False when any gate fails (the caller publishes nothing
and exits with ``report.exit_code`` = 1). ``mode="warn"``: failures are reported, but
``publish`` is True and ``exit_code`` 0.
"""

from __future__ import annotations

import contextlib
import json
import logging
import mmap
import os
import time
from pathlib import Path

os.environ["GX_ANALYTICS_ENABLED"] = "false"  # before great_expectations is imported

import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

from ikou.expectations.arrow_engine import validate_table  # noqa: E402
from ikou.expectations.context import assert_analytics_off, gx, new_context  # noqa: E402
from ikou.expectations.suites import CROSS_SUITE, SUITES_DIR, load_suite  # noqa: E402
from ikou.pipeline.config.standard import STANDARD_DIR, Standard, load_standard  # noqa: E402
from ikou.pipeline.report.datadocs import make_offline  # noqa: E402
from ikou.pipeline.steps.gate_report import (  # noqa: E402
    Failure,
    GateError,
    GateReport,
    OutputGate,
)

# GX logs its ephemeral Data Docs folder at INFO on every run: not for our users' logs.
logging.getLogger("great_expectations").setLevel(logging.WARNING)
logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)

__all__ = ["ENGINES", "MODES", "REFERENCE_OUTPUTS", "Failure", "GateError", "GateReport",
           "OutputGate", "run_gates"]

MODES = ("fail", "warn")
#: "arrow": metrics computed in Arrow, results/Data Docs by GX (falls back per suite to
#: "gx-pandas" when a suite holds something it does not compute); "gx-pandas": GX's pandas
#: execution engine on a pandas copy of the table (the reference).
ENGINES = ("arrow", "gx-pandas")
DATASOURCE = "ikou"
#: Outputs whose 宛名番号 form the reference key set of the cross-file rule, in lookup order.
REFERENCE_OUTPUTS = ("juki", "jutogai")
REFERENCE_KEY = "atena_no"
_ROW_COUNT = "expect_table_row_count_to_equal"
_VALUE_KEYS = ("partial_unexpected_list", "partial_unexpected_counts", "unexpected_list",
               "unexpected_index_list", "unexpected_rows", "unexpected_index_query",
               "details")


# ----------------------------------------------------------------------------- helpers

def _without_annotations(table: pa.Table) -> pa.Table:
    """Record matching's annotation columns (``_<key>_original``: the value a resolved key
    replaced, see ``ikou.pipeline.steps.matching``) are provenance like the lineage columns; the
    standard's suite validates the standard items and the resolved keys."""
    extra = [c for c in table.column_names if c.startswith("_") and c.endswith("_original")]
    return table.drop_columns(extra) if extra else table


class _StagedFile:
    """A staged Arrow IPC file, memory-mapped once and read a column at a time.

    Mapped pages count towards the process RSS while they stay resident, so validating every
    column of a large file would end with the whole file resident. Before each column is handed
    out, the pages read so far are given back (``madvise(MADV_DONTNEED)`` on the read-only,
    file-backed mapping: nothing is lost, a later read maps them in again from the page cache).
    The gate step's memory is then about one column, not the largest staged file."""

    def __init__(self, path: Path):
        self.path = path
        try:
            with open(path, "rb") as f:
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            source = pa.BufferReader(pa.py_buffer(self._map))
            try:
                table = pa.ipc.open_file(source).read_all()
            except pa.ArrowInvalid:
                source.seek(0)
                table = pa.ipc.open_stream(source).read_all()
        except (OSError, ValueError, pa.ArrowInvalid) as exc:
            raise GateError(f"{path}: cannot read staged Arrow IPC file: {exc}") from None
        self.table = _without_annotations(table)
        self.schema = self.table.schema
        self.column_names = self.table.column_names
        self.num_rows = self.table.num_rows

    def release(self) -> None:
        """Give the pages read so far back to the OS (they stay valid, see above)."""
        if hasattr(self._map, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
            self._map.madvise(mmap.MADV_DONTNEED)

    def column(self, name: str) -> pa.ChunkedArray:
        self.release()
        return self.table.column(name)

    def read(self) -> pa.Table:
        return self.table


def _to_pandas(table: pa.Table):
    cols = []
    for f, col in zip(table.schema, table.columns, strict=True):
        if pa.types.is_dictionary(f.type):
            col = col.cast(f.type.value_type)
        cols.append(col)
    # One chunk per column: pandas' Arrow-backed columns call take() per chunk, and a table
    # merged from many Beam blocks has hundreds of chunks.
    plain = pa.Table.from_arrays(cols, names=table.column_names).combine_chunks()
    return plain.to_pandas(date_as_object=False)


def _index_columns(std: Standard | None, table: pa.Table) -> list[str]:
    """``_record`` plus the 宛名番号 column: the only values a report may show."""
    out = ["_record"] if "_record" in table.column_names else []
    if std is not None:
        for it in std.items:
            if "宛名番号" in it.name and it.field in table.column_names:
                out.append(it.field)
                break
    elif REFERENCE_KEY in table.column_names:
        out.append(REFERENCE_KEY)
    return out


def _result_format(index_cols: list[str], sample: int) -> dict:
    fmt: dict = {"result_format": "SUMMARY", "partial_unexpected_count": sample,
                 "exclude_unexpected_values": True, "return_unexpected_index_query": False}
    if index_cols:
        fmt["unexpected_index_column_names"] = index_cols
    return fmt


def _trim_index_list(value, index_cols: list[str], sample: int) -> list[dict]:
    """GX's partial_unexpected_index_list as at most ``sample`` rows of index columns only."""
    if not value:
        return []
    if isinstance(value[0], dict) and all(isinstance(v, list) for v in value[0].values()):
        cols = {k: v for k, v in value[0].items() if k in index_cols}  # exclude_unexpected_values
        n = min((len(v) for v in cols.values()), default=0)
        return [{k: cols[k][i] for k in cols} for i in range(min(n, sample))]
    return [{k: row[k] for k in index_cols if k in row} for row in value[:sample]]


def _jsonable(v):
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and v != v:  # a null index value read through pandas (NaN)
        return None
    return v


def _sanitize(result, index_cols: list[str], sample: int) -> list[Failure]:
    """Trim a suite validation result in place; return its failures."""
    failures = []
    for r in result.results:
        res = r.result or {}
        rows = _trim_index_list(res.pop("partial_unexpected_index_list", None), index_cols,
                                sample)
        rows = [{k: _jsonable(v) for k, v in row.items()} for row in rows]
        for key in _VALUE_KEYS:
            res.pop(key, None)
        if rows:
            res["partial_unexpected_index_list"] = rows
        r.result = res
        if r.success:
            continue
        cfg = r.expectation_config
        meta = cfg.meta or {}
        item = f"{meta['item_no']} {meta['item']}" if "item_no" in meta else meta.get("rule")
        exc = (r.exception_info or {}).get("exception_message") if isinstance(
            r.exception_info, dict) else None
        observed = res.get("observed_value")
        if exc:
            observed = f"error: {str(exc)[:200]}"
        failures.append(Failure(
            expectation=cfg.type, column=cfg.kwargs.get("column"), item=item,
            unexpected_count=res.get("unexpected_count"),
            element_count=res.get("element_count"),
            observed=observed if not isinstance(observed, (list, dict)) else None,
            sample=rows,
        ))
    return failures


# ----------------------------------------------------------------------------- gates

class _Runner:
    def __init__(self, run_dir: Path, data_docs: bool, sample: int, engine: str = "arrow"):
        self.context = new_context()
        self.analytics = assert_analytics_off(self.context)
        self.docs_dir = run_dir / "data_docs" if data_docs else None
        if self.docs_dir is not None:
            self.context.add_data_docs_site("ikou", {
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                                  "base_directory": str(self.docs_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            })
        self._source = None
        self.results_dir = run_dir / "validations"
        self.results_dir.mkdir(parents=True, exist_ok=True)
        self.sample = sample
        self.engine = engine
        self.timings: dict[str, float] = {"validate": 0.0, "results": 0.0}

    @property
    def source(self):
        if self._source is None:
            self._source = self.context.data_sources.add_pandas(DATASOURCE)
        return self._source

    def _gx_pandas(self, name: str, table, suite, fmt: dict, params: dict):
        """GX's own pandas engine: a Checkpoint over a whole-dataframe batch."""
        df = _to_pandas(table.read() if isinstance(table, _StagedFile) else table)
        asset = self.source.add_dataframe_asset(name)
        batch = asset.add_batch_definition_whole_dataframe(name)
        vd = self.context.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite))
        checkpoint = self.context.checkpoints.add(gx.Checkpoint(
            name=f"gate-{name}", validation_definitions=[vd], actions=[], result_format=fmt))
        cp_result = checkpoint.run(batch_parameters={"dataframe": df},
                                   expectation_parameters=params)
        (key, result), = cp_result.run_results.items()
        return key, result

    def _arrow(self, name: str, table, suite, fmt: dict, params: dict):
        """Metrics in Arrow, results by GX (ikou.expectations.arrow_engine); None: use GX's."""
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.data_context.types.resource_identifiers import (
            ExpectationSuiteIdentifier,
            ValidationResultIdentifier,
        )

        batch_id = f"{DATASOURCE}-{name}"
        result = validate_table(table, suite, batch_id=batch_id, asset_name=name,
                                datasource_name=DATASOURCE, result_format=fmt,
                                suite_parameters=params)
        if result is None:
            return None
        run_id = RunIdentifier(run_time=result.meta["run_id"]["run_time"])
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite.name),
            run_id=run_id, batch_identifier=batch_id)
        return key, result

    def validate(self, name: str, table: pa.Table | _StagedFile, suite: gx.ExpectationSuite,
                 index_cols: list[str], params: dict, rows: int) -> OutputGate:
        t0 = time.perf_counter()
        suite = self.context.suites.add(suite)
        fmt = _result_format(index_cols, self.sample)
        done = self._arrow(name, table, suite, fmt, params) if self.engine == "arrow" else None
        engine = "arrow" if done is not None else "gx-pandas"
        key, result = done if done is not None else self._gx_pandas(name, table, suite, fmt,
                                                                     params)
        t1 = time.perf_counter()
        failures = _sanitize(result, index_cols, self.sample)
        # Store the trimmed result: Data Docs render from the store.
        self.context.validation_results_store.set(key, result)
        out = self.results_dir / f"{name}.json"
        out.write_text(json.dumps(result.to_json_dict(), ensure_ascii=False, indent=1,
                                  default=str), encoding="utf-8")
        stats = result.statistics or {}
        t2 = time.perf_counter()
        self.timings["validate"] += t1 - t0
        self.timings["results"] += t2 - t1
        return OutputGate(name=name, suite=suite.name, success=bool(result.success), rows=rows,
                          evaluated=int(stats.get("evaluated_expectations", 0)),
                          failures=failures, seconds=t2 - t0, results_file=str(out),
                          engine=engine)

    def build_docs(self) -> Path | None:
        if self.docs_dir is None:
            return None
        t0 = time.perf_counter()
        with _compiled_templates_shared():
            self.context.build_data_docs(site_names=["ikou"])
        make_offline(self.docs_dir)  # no CDN, no logo beacon, no newsletter: closed networks
        self.timings["data_docs"] = time.perf_counter() - t0
        return self.docs_dir / "index.html"


def _standard_for(name: str) -> Standard | None:
    return load_standard(name) if (STANDARD_DIR / f"{name}.yaml").exists() else None


def _referencing(name: str, table, suites: Path):
    """(standard, [fields with ``references: resident``]) of a staged output with a suite."""
    if not (suites / name / f"{name}.json").exists():
        return None, []
    std = _standard_for(name)
    return std, [it.field for it in (std.items if std else ())
                 if it.references == "resident" and it.field in table.column_names]


def _reference_lookup(tables: dict[str, _StagedFile], suites: Path,
                      references=REFERENCE_OUTPUTS) -> tuple[list[str], dict]:
    """The reference outputs present (in lookup order) and, for every referencing column,
    ``found_in`` per row: the first reference output holding the same 宛名番号, else null.

    All referencing columns are looked up together, one hash set per reference output."""
    refs = [r for r in references
            if r in tables and REFERENCE_KEY in tables[r].column_names]
    wanted = [(name, col, table.column(col).combine_chunks())
              for name, table in tables.items()
              for col in _referencing(name, table, suites)[1]]
    if not wanted:
        return refs, {}
    keys = pa.concat_arrays([k for _, _, k in wanted]) if len(wanted) > 1 else wanted[0][2]
    found = pa.nulls(len(keys), pa.string())
    for ref in reversed(refs):  # the first reference output wins
        ref_keys = tables[ref].column(REFERENCE_KEY).combine_chunks()
        hit = pc.is_in(keys, value_set=ref_keys, skip_nulls=True)  # a null key: never found
        found = pc.if_else(hit, pa.scalar(ref), found)
    out, start = {}, 0
    for name, col, k in wanted:
        out[(name, col)] = (k, found.slice(start, len(k)))
        start += len(k)
    return refs, out


def _joined(table, keys: pa.Array, found: pa.Array) -> pa.Table:
    """One row per row of ``table``: _record, atena_no (the referencing value) and found_in."""
    record = (table.column("_record").combine_chunks() if "_record" in table.column_names
              else pa.array(range(1, len(keys) + 1), pa.int64()))
    return pa.table({"_record": record, REFERENCE_KEY: keys, "found_in": found})


class _TemplateBytecode:
    """A process-wide in-memory Jinja bytecode cache (see :func:`_compiled_templates_shared`)."""

    def __init__(self):
        import jinja2

        class Cache(jinja2.BytecodeCache):
            def __init__(self):
                self.store: dict[str, bytes] = {}

            def load_bytecode(self, bucket):
                code = self.store.get(bucket.key + bucket.checksum)
                if code is not None:
                    bucket.bytecode_from_string(code)

            def dump_bytecode(self, bucket):
                self.store[bucket.key + bucket.checksum] = bucket.bytecode_to_string()

        self.cache = Cache()


_BYTECODE: _TemplateBytecode | None = None


@contextlib.contextmanager
def _compiled_templates_shared():
    """GX's Data Docs views each make their own Jinja environment, so every section of a site
    (and every run) parses and compiles the same ~17 templates again: about 40 % of building
    the docs. Inside this block each view's environment uses one in-memory bytecode cache
    (Jinja's own mechanism, keyed by template name and source checksum), so a template is
    compiled once per process; the rendered pages are the same. The view class is restored
    afterwards."""
    global _BYTECODE
    from great_expectations.render.view import view as gx_view

    if _BYTECODE is None:
        _BYTECODE = _TemplateBytecode()
    cache = _BYTECODE.cache
    original = gx_view.DefaultJinjaView.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.env.bytecode_cache = cache

    gx_view.DefaultJinjaView.__init__ = init
    try:
        yield
    finally:
        gx_view.DefaultJinjaView.__init__ = original


def _without_batch_fingerprint(fn):
    """Run ``fn`` with GX's pandas batch fingerprint switched off.

    GX 1.x hashes every in-memory dataframe under 1 GB (``pd.util.hash_pandas_object`` + md5
    of all rows) only to label the batch (``pandas_data_fingerprint``); on 1,000,000 resident
    rows that is about 2 s of ~12 s of gates. The staged file's sha256 in ``manifest.json``
    identifies the data already. The module constant is restored afterwards; GX builds
    without it are left alone."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from great_expectations.execution_engine import pandas_execution_engine as engine

        saved = getattr(engine, "HASH_THRESHOLD", None)
        if saved is None:
            return fn(*args, **kwargs)
        engine.HASH_THRESHOLD = 0
        try:
            return fn(*args, **kwargs)
        finally:
            engine.HASH_THRESHOLD = saved

    return wrapper


@_without_batch_fingerprint
def run_gates(staged: dict[str, Path | str], run_dir: Path | str, mode: str = "fail",
              expected_rows: dict[str, int] | None = None, *, suites_dir: Path | str | None = None,
              data_docs: bool = True, sample: int = 20,
              references: tuple[str, ...] = REFERENCE_OUTPUTS,
              engine: str = "arrow") -> GateReport:
    """Validate staged Arrow IPC outputs (name → path) and write results into ``run_dir``.

    ``name`` is the output (= standard definition) name, e.g. ``juki``; the suite is
    ``<suites_dir>/<name>/<name>.json``. Outputs without a suite (e.g. ``jutogai``) are only used
    as references and listed in ``report.unchecked``. ``references``: the staged outputs whose
    ``atena_no`` values form the key set of the cross-file rule, in lookup order. ``engine``:
    one of :data:`ENGINES` (both give the same results; ``"gx-pandas"`` is the reference).
    Staged files are memory-mapped and validated one at a time.
    """
    if mode not in MODES:
        raise GateError(f"gates mode must be one of {', '.join(MODES)}, got {mode!r}")
    if engine not in ENGINES:
        raise GateError(f"gates engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    t0 = time.perf_counter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    suites = Path(suites_dir) if suites_dir else SUITES_DIR
    expected_rows = dict(expected_rows or {})
    unknown = sorted(set(expected_rows) - set(staged))
    if unknown:
        raise GateError(f"expected_rows names outputs that are not staged: {', '.join(unknown)}")
    tables = {name: _StagedFile(Path(p)) for name, p in staged.items()}
    refs, lookup = _reference_lookup(tables, suites, tuple(references))
    t1 = time.perf_counter()
    runner = _Runner(run_dir, data_docs, sample, engine)
    setup = time.perf_counter() - t1
    load = t1 - t0
    gates: dict[str, OutputGate] = {}
    unchecked: list[str] = []
    for name in list(tables):
        table = tables.pop(name)  # validated one at a time; nothing kept afterwards
        std, referencing = _referencing(name, table, suites)
        if not (suites / name / f"{name}.json").exists():
            unchecked.append(name)
            continue
        notes, params, drop = [], {}, ()
        if name in expected_rows:
            params["expected_rows"] = int(expected_rows[name])
        else:
            drop = (_ROW_COUNT,)
            notes.append("row count not reconciled: no expected_rows given")
        suite = load_suite(suites / name / f"{name}.json", drop_types=drop)
        index_cols = _index_columns(std, table)
        gate = runner.validate(name, table, suite, index_cols, params, table.num_rows)
        gate.notes.extend(notes)
        gates[name] = gate
        for col in referencing:
            joined = _joined(table, *lookup.pop((name, col)))
            cross_name = f"{name}.{col}.reference"
            cross_suite = load_suite(CROSS_SUITE)
            cross_suite.name = f"{cross_suite.name}.{name}.{col}"  # unique per context
            cross = runner.validate(cross_name, joined, cross_suite,
                                    ["_record", REFERENCE_KEY], {}, joined.num_rows)
            if not refs:
                cross.notes.append(f"no reference output ({' / '.join(references)}) was staged")
            else:
                cross.notes.append("reference outputs: " + ", ".join(refs))
            gates[cross_name] = cross
        del table
    docs = runner.build_docs()
    timings = {"load": load, "setup": setup, **runner.timings}
    report = GateReport(mode=mode, gates=gates, unchecked=unchecked, run_dir=run_dir,
                        data_docs=docs, seconds=time.perf_counter() - t0,
                        analytics=runner.analytics, timings=timings)
    (run_dir / "gates.json").write_text(
        json.dumps(report.to_dict(), ensure_ascii=False, indent=1, default=str),
        encoding="utf-8")
    return report
