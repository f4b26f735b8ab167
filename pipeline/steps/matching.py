"""Record matching (名寄せ) inside a migration job: resolve missing or wrong 宛名番号 before the gates.

A job names, per target, a matching configuration (the format of :mod:`ikou.pipeline.config.matching`)::

    matching:
      - {target: kojin_juminzei, config: zei.match.yaml}

The configuration's fields and blocking name **legacy columns** (the decoded export's, e.g.
``name_kana``, ``birth``): the left side is the residents — the resident target's source
(``juki``) and the reference sources (住登外) — the right side the target's source; ``right.key``
names the target's standard column holding the referenced 宛名番号 (e.g. ``atena_no``). Ids and
the left key are set here (left: ``atena_no``; right: the staged row).

1. While mapping, the legacy columns a configuration compares are carried next to the standard
   columns as ``_m.<column>`` (:class:`CarryingMapper`), for the resident target and each
   matched target.
2. After reconciliation, :func:`run_matching` runs ONE Beam pipeline for all targets
   (:class:`ikou.transforms.match.beam.LinkTables`: one element per target, each linked by the
   engine in one call, its model estimated once, reading the staged files memory-mapped) and
   then rewrites each matched target: a record linked by key keeps
   its 宛名番号; one linked by a fuzzy ``match`` carries the resolved 宛名番号 and keeps the
   original value in ``_<key>_original`` (null: the key was kept; ``""``: it was blank);
   every other record (``possible``, or no link) leaves
   the standard file for ``review/<target>.arrow`` (with the decision, score and best
   candidate). ``_m.`` columns are dropped everywhere. The links go to
   ``match/<target>.links.arrow``.
3. Per matched source: data records read = standard rows + review rows + quarantined, else
   :class:`~ikou.pipeline.run.single.ReconciliationError`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ikou.pipeline.config.matching import (
    MatchConfig,
    MatchConfigFileError,
    load_config,
    variant_map,
)
from ikou.pipeline.errors import ReconciliationError
from ikou.pipeline.run.beam import run_pipeline
from ikou.pipeline.run.match import accuracy
from ikou.transforms import arrowio
from ikou.transforms.decode.outputs import OUTPUT_BATCH_ROWS
from ikou.transforms.match.beam import (
    SUMMARY_FILE,
    LinkTables,
    LinkTask,
    TablePart,
    read_parts,
    required_columns,
)
from ikou.transforms.pause import pause_point

__all__ = ["CARRY", "CarryingMapper", "MatchEntry", "carried_columns", "original_field",
           "parse_matching", "run_matching"]

CARRY = "_m."
RESIDENT_TARGET = "juki"
LEFT_KEY = "atena_no"
REVIEW_DIR = "review"
MATCH_DIR = "match"
REVIEW_DECISIONS = ("match", "possible", "none")


@dataclass(frozen=True)
class MatchEntry:
    target: str
    config: MatchConfig
    config_path: Path
    line: int = 0

    @property
    def key(self) -> str:
        return self.config.right_key


def _legacy_columns(cfg: MatchConfig, side: str) -> list[str]:
    key = cfg.left_key if side == "left" else cfg.right_key
    return [c for c in required_columns(cfg, side) if c not in (key, cfg.left_id, cfg.right_id)]


def parse_matching(job_path, doc, base: Path, targets, sources, references, err) -> tuple:
    """The ``matching:`` entries of a job (``err(node, message)`` makes a ``JobError``)."""
    nodes = doc.get("matching") or []
    if not isinstance(nodes, list):
        raise err(doc, "'matching' must be a list")
    by_name = {t.name: t for t in targets}
    out = []
    for node in nodes:
        if not isinstance(node, dict) or set(node) != {"target", "config"}:
            raise err(node if isinstance(node, dict) else doc,
                      "a matching entry needs exactly 'target' and 'config'")
        target = by_name.get(node["target"])
        if target is None or target.name == RESIDENT_TARGET:
            raise err(node, f"matching: {node['target']!r} is not a target to match against "
                            f"the residents ({RESIDENT_TARGET!r})")
        if RESIDENT_TARGET not in by_name:
            raise err(node, f"matching needs the resident target {RESIDENT_TARGET!r}")
        cpath = Path(str(node["config"]))
        cpath = cpath if cpath.is_absolute() else base / cpath
        try:
            cfg = load_config(cpath)
        except MatchConfigFileError as exc:
            raise err(node, f"matching config: {exc}") from None
        if cfg.right_key is None or cfg.right_key not in target.standard.schema(False).names:
            raise err(node, f"matching config {cpath.name}: right.key must name a column of the "
                            f"standard {target.name!r}")
        cfg = dataclasses.replace(cfg, left_id=LEFT_KEY, left_key=LEFT_KEY, right_id=None)
        need = {"right": (target.source,),
                "left": (by_name[RESIDENT_TARGET].source, *(r.source for r in references))}
        for side, srcs in need.items():
            for src in srcs:
                names = sources[src].layout.arrow_schema("data").names
                missing = [c for c in _legacy_columns(cfg, side) if c not in names]
                if missing:
                    raise err(node, f"matching config {cpath.name}: source {src!r} has no "
                                    f"column {', '.join(map(repr, missing))}")
        out.append(MatchEntry(target.name, cfg, cpath, getattr(node, "line", 0)))
    return tuple(out)


def carried_columns(job) -> dict[str, tuple[str, ...]]:
    """Target source → the legacy columns its mapper carries (``_m.<column>``)."""
    by_target = {t.name: t for t in job.targets}
    out: dict[str, list[str]] = {}
    for m in getattr(job, "matching", ()):
        out.setdefault(by_target[m.target].source, []).extend(_legacy_columns(m.config, "right"))
        out.setdefault(by_target[RESIDENT_TARGET].source, []).extend(
            _legacy_columns(m.config, "left"))
    return {k: tuple(dict.fromkeys(v)) for k, v in out.items()}


class CarryingMapper:
    """A mapper that also carries legacy columns (``_m.<name>``) with the mapped rows (joined on
    the lineage ``_record``, unique within a block)."""

    def __init__(self, inner, columns, legacy_schema: pa.Schema):
        self.inner = inner
        self.columns = tuple(columns)
        schema = inner.schema
        for c in self.columns:
            schema = schema.append(pa.field(CARRY + c, legacy_schema.field(c).type))
        self.schema = schema

    def __call__(self, table):
        mapped, rejects = self.inner(table)
        rec = table.column("_record").to_numpy()
        order = np.argsort(rec, kind="stable")
        pos = order[np.searchsorted(rec, mapped.column("_record").to_numpy(), sorter=order)]
        take = pa.array(pos, pa.int64())
        for c in self.columns:
            mapped = mapped.append_column(CARRY + c, table.column(c).take(take))
        return mapped, rejects


# --- after staging ---------------------------------------------------------------------------


def original_field(schema: pa.Schema, key: str) -> pa.Field:
    """The column that keeps a resolved key's original value (null where the key stayed)."""
    name = (schema.field(key).metadata or {}).get(b"ikou.name", key.encode()).decode()
    return pa.field(f"_{key}_original", schema.field(key).type, metadata={
        b"ikou.role": b"match", b"ikou.name": f"{name}（名寄せ前）".encode()})


def _read(path) -> pa.Table:
    return arrowio.read_table(path)


def _write(table: pa.Table, path) -> None:
    """Write (65,536-row batches) to a new file, then rename: readers of the old file (memory
    maps, e.g. the table being rewritten) keep theirs."""
    table = table.combine_chunks()
    arrowio.write_file(str(path), table.to_batches(max_chunksize=OUTPUT_BATCH_ROWS),
                       table.schema)


_PAD = 64  # the IPC writer writes a sliced value buffer up to 64-byte padding when it can


def _is_var(t: pa.DataType) -> bool:
    return (pa.types.is_string(t) or pa.types.is_binary(t) or pa.types.is_large_string(t)
            or pa.types.is_large_binary(t))


def _bytes(col) -> int:
    return int(pc.sum(pc.binary_length(col)).as_py() or 0) if len(col) else 0


def _lookahead(batch: pa.Table, rest: pa.Table) -> int | None:
    """The fewest leading rows of ``rest`` holding, in every string/binary column, the bytes
    that pad the column's data in ``batch`` to ``_PAD`` (looked for in doubling prefixes), or
    None when all of ``rest`` holds fewer (the writer then stops at the end of the data)."""
    need = {i: -_bytes(batch.column(i)) % _PAD for i, f in enumerate(batch.schema)
            if _is_var(f.type)}
    need = {i: n for i, n in need.items() if n}
    if not need:
        return 0
    k = _PAD
    while True:
        head = rest.slice(0, k)
        if all(_bytes(head.column(i)) >= n for i, n in need.items()):
            return min(k, rest.num_rows)
        if k >= rest.num_rows:
            return None
        k *= 2


def _rebatched(tables, rows: int = OUTPUT_BATCH_ROWS):
    """Tables (in order) → record batches of ``rows`` rows (the last one shorter): the bytes
    :func:`_write` writes for their concatenation, with about one batch in memory at a time.

    ``_write`` slices one combined table; the IPC writer writes a slice's string data up to
    64-byte padding, i.e. the next rows' first bytes, so a batch is cut from its rows plus the
    following rows that hold those bytes (or all that follow)."""
    it = iter(tables)
    queue: list[pa.Table] = []  # input not yet written, in order (slices, not copies)
    queued = 0
    exhausted = False

    def pull() -> bool:
        nonlocal queued, exhausted
        for t in it:
            if t.num_rows:
                queue.append(t)
                queued += t.num_rows
                return True
        exhausted = True
        return False

    while True:
        while queued < rows and pull():
            pass
        if queued == 0:
            return
        take = min(rows, queued)
        head = pa.concat_tables(queue).slice(0, take)
        while True:  # the rows after the batch that the writer's padding reads
            rest = pa.concat_tables(queue).slice(take)
            extra = _lookahead(head, rest)
            if extra is not None or exhausted or not pull():
                break
        queued_all = pa.concat_tables(queue)
        upto = take + (rest.num_rows if extra is None else extra)
        window = queued_all.slice(0, upto)  # copied: its buffers end where its rows do
        window = pa.concat_tables([window, window.slice(0, 0)]).combine_chunks()
        yield from window.slice(0, take).to_batches()
        rest = queued_all.slice(take)
        queue = [rest] if rest.num_rows else []
        queued = rest.num_rows


def _rewrite(src, dest, piece) -> int:
    """Write ``piece(table, first row)`` of each record batch of the Arrow IPC file ``src``
    (read from the file, not memory-mapped: never the whole table in memory) to ``dest`` (a new
    file, then renamed; ``dest`` may be ``src``); the bytes ``_write`` gives for the
    concatenation of the pieces. Returns the rows written."""
    written = 0
    with pa.OSFile(str(src)) as fh:
        reader = pa.ipc.open_file(fh)
        schema = piece(reader.schema.empty_table(), 0).schema

        def pieces():
            start = 0
            for i in range(reader.num_record_batches):
                t = pa.Table.from_batches([reader.get_batch(i)])
                yield piece(t, start)
                start += t.num_rows

        with arrowio.writer(str(dest), schema) as w:
            for batch in _rebatched(pieces()):
                w.write_batch(batch)
                written += batch.num_rows
    return written


def _strip_file(path) -> None:
    """Drop the carried ``_m.`` columns of an Arrow IPC file, batch by batch (the big residents'
    table is never held whole); same bytes as ``_write(_strip(_read(path)))``."""
    with pa.memory_map(str(path)) as src:
        names = pa.ipc.open_file(src).schema.names
    if any(c.startswith(CARRY) for c in names):
        _rewrite(path, path, lambda t, _start: _strip(t))


class _ResidentsStrip:
    """Drop the residents' carried columns while matching runs: the matching tasks read a hard
    link of the staged file (the old inode, whatever the rewrite renames over the path), and a
    thread rewrites the file meanwhile. Without hard links (another file system), the rewrite
    waits for the matching (``start`` does nothing, ``finish`` rewrites)."""

    def __init__(self, path: Path, work: Path):
        self.path = path
        self.read_path = path
        self.seconds = 0.0
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        try:
            os.link(path, work / "residents.arrow")
            self.read_path = work / "residents.arrow"
        except OSError:
            pass

    def _run(self) -> None:
        t0 = time.perf_counter()
        try:
            _strip_file(self.path)
        except BaseException as exc:  # re-raised by finish()
            self.error = exc
        self.seconds = time.perf_counter() - t0

    def start(self) -> None:
        if self.read_path != self.path:
            self.thread = threading.Thread(target=self._run, name="ikou-strip-residents",
                                           daemon=True)
            self.thread.start()

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join()

    def finish(self) -> None:
        if self.thread is None:
            self._run()
        else:
            self.thread.join()
        if self.error is not None:
            raise self.error


def _strip(table: pa.Table) -> pa.Table:
    return table.drop_columns([c for c in table.column_names if c.startswith(CARRY)])


def _carried(table: pa.Table, cols) -> dict[str, pa.Array]:
    return {c: table.column(CARRY + c).combine_chunks() for c in cols}


def _left_parts(job, cfg, staged_paths) -> tuple[TablePart, ...]:
    """Residents + reference sources: atena_no and the compared legacy columns (the residents'
    carried ``_m.`` columns, the references' own), in that order."""
    cols = _legacy_columns(cfg, "left")
    parts = [TablePart(str(staged_paths[RESIDENT_TARGET]),
                       ((LEFT_KEY, LEFT_KEY), *((c, CARRY + c) for c in cols)))]
    parts += [TablePart(str(staged_paths[ref.source]),
                        ((LEFT_KEY, LEFT_KEY), *((c, c) for c in cols)),
                        ((LEFT_KEY, pa.string()),)) for ref in job.references]
    return tuple(parts)


def _right_parts(m: MatchEntry, path) -> tuple[TablePart, ...]:
    cols = _legacy_columns(m.config, "right")
    return (TablePart(str(path), ((m.key, m.key), *((c, CARRY + c) for c in cols))),)


def _truth_by_row(truth_path, table: pa.Table, files) -> tuple[dict[int, str], int]:
    """Right row → true 宛名番号 from the generator's truth.jsonl (file, record, atena_no), and
    how many truth lines of ``files`` (the target's input file names) are ``"quarantined":
    true`` — records made corrupt, never standard rows: left out of the truth set, so recall is
    measured over the records matching could see, and reported separately."""
    want, quarantined = {}, 0
    files = set(files)
    with open(truth_path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                t = json.loads(line)
                if t.get("quarantined"):
                    quarantined += t["file"] in files
                    continue
                want[(t["file"], t["record"])] = t["atena_no"]
    src = table.column("_source").to_pylist()
    rec = table.column("_record").to_pylist()
    return ({i: want.get((s, r)) for i, (s, r) in enumerate(zip(src, rec, strict=True))},
            quarantined)


def _rounded(v):
    if isinstance(v, dict):
        return {k: _rounded(x) for k, x in v.items()}
    return round(v, 3)


def run_matching(job, summary: dict[str, Any], staging: Path, beam_args=(),
                 truth: str | os.PathLike | None = None) -> dict[str, Any]:
    """Match every configured target against the residents and rewrite the staged files (see
    the module docstring); updates ``summary['outputs']`` and returns the manifest section."""
    entries = getattr(job, "matching", ())
    outs = summary["outputs"]
    staged = {t.name: Path(outs[f"{t.name}.arrow"]["path"]) for t in job.targets}
    staged.update({r.source: Path(outs[f"reference/{r.source}.arrow"]["path"])
                   for r in job.references})
    report: dict[str, Any] = {"targets": {}, "reconciliation": {}}
    problems: list[str] = []
    by_target = {t.name: t for t in job.targets}
    work = staging / ".match"
    t_start = time.perf_counter()
    timing: dict[str, Any] = {"targets": {}}
    # every target in ONE pipeline: one element per target, linked by the engine in one call
    # on the staged files (memory-mapped; nothing copied to a work file)
    tasks = []
    work.mkdir(parents=True, exist_ok=True)
    strip = _ResidentsStrip(staged[RESIDENT_TARGET], work) if entries else None
    read_from = {**staged, RESIDENT_TARGET: strip.read_path} if strip else staged
    variants: dict[tuple, dict] = {}  # the variant tables, loaded once per distinct list
    for m in entries:
        folder = work / m.target
        folder.mkdir(parents=True, exist_ok=True)
        if m.config.variants not in variants:
            variants[m.config.variants] = variant_map(m.config)
        tasks.append(LinkTask(m.target, m.config, variants[m.config.variants],
                              _left_parts(job, m.config, read_from),
                              _right_parts(m, staged[m.target]), str(folder)))
    if strip is not None:
        strip.start()  # overlaps the matching when the tasks read a hard link
    if tasks:
        try:
            info = run_pipeline(lambda p: p | "Match" >> LinkTables(tasks), beam_args)
        except BaseException:
            if strip is not None:
                strip.join()  # the caller removes the staging folder: no writer may be left
            raise
        report["pipeline"] = {"pipelines": 1, "targets": [t.name for t in tasks],
                              "metrics": info["metrics"]}
    timing["pipeline_s"] = time.perf_counter() - t_start
    pause_point("matching")
    for m in entries:
        t_target = time.perf_counter()
        cfg, target = m.config, by_target[m.target]
        folder = work / m.target
        right = _read(staged[m.target])
        n = right.num_rows
        match_summary = json.loads((folder / SUMMARY_FILE).read_text(encoding="utf-8"))
        links = _read(folder / "links.arrow")
        rows = links.column("right_row").to_numpy()
        method = links.column("method").combine_chunks().indices.to_numpy()  # 0 key, 1 fuzzy
        decision = links.column("decision").combine_chunks().indices.to_numpy()  # 0 match
        left_id = links.column("left_id").combine_chunks()
        keep = np.zeros(n, bool)
        keep[rows[decision == 0]] = True
        fuzzy = (decision == 0) & (method == 1)
        new_key = right.column(m.key).combine_chunks()
        original = pa.nulls(n, new_key.type)
        if fuzzy.any():
            idx = np.full(n, -1, np.int64)
            idx[rows[fuzzy]] = np.flatnonzero(fuzzy)
            resolved = idx >= 0
            mask = pa.array(resolved)
            cand = left_id.take(pa.array(np.maximum(idx, 0), pa.int64())).cast(new_key.type)
            was = new_key
            if pa.types.is_string(was.type):  # a blank key was read as null: keep it as ""
                was = pc.fill_null(was, "")
            original = pc.if_else(mask, was, original)
            new_key = pc.if_else(mask, cand, new_key)
        keep_arr = pa.array(keep)
        key_at = _strip(right.schema.empty_table()).column_names.index(m.key)

        def kept_piece(t, start, keep_arr=keep_arr, new_key=new_key, original=original,
                       key=m.key, key_at=key_at):
            t = _strip(t)
            k = keep_arr.slice(start, t.num_rows)
            t = t.set_column(key_at, t.schema.field(key), new_key.slice(start, t.num_rows))
            return t.filter(k).append_column(original_field(t.schema, key),
                                             original.slice(start, t.num_rows).filter(k))

        # review: what matching could not resolve, with its best candidate when there is one
        best = np.full(n, -1, np.int64)
        best[rows] = np.arange(len(rows))
        dec = np.full(n, 2, np.int8)
        dec[rows] = decision
        score = np.full(n, np.nan)
        score[rows] = links.column("score").to_numpy()

        def review_piece(t, start, keep=keep, dec=dec, score=score, best=best, left_id=left_id):
            local = np.flatnonzero(~keep[start:start + t.num_rows])
            at = local + start
            out = _strip(t).take(pa.array(local, pa.int64()))
            out = out.append_column("_match_decision", pa.DictionaryArray.from_arrays(
                pa.array(dec[at], pa.int8()), pa.array(REVIEW_DECISIONS)))
            out = out.append_column("_match_score", pa.array(score[at], pa.float64(),
                                                             mask=best[at] < 0))
            has = best[at] >= 0
            return out.append_column("_match_candidate", pc.if_else(
                pa.array(has), left_id.take(pa.array(np.maximum(best[at], 0), pa.int64())).cast(
                    pa.string()) if len(left_id) else pa.nulls(len(at), pa.string()),
                pa.scalar(None, pa.string())))

        (staging / REVIEW_DIR).mkdir(exist_ok=True)
        (staging / MATCH_DIR).mkdir(exist_ok=True)
        rpath = staging / REVIEW_DIR / f"{m.target}.arrow"
        n_review = _rewrite(staged[m.target], rpath, review_piece)
        n_kept = _rewrite(staged[m.target], staged[m.target], kept_piece)
        lpath = staging / MATCH_DIR / f"{m.target}.links.arrow"
        shutil.copy(folder / "links.arrow", lpath)
        name = f"{m.target}.arrow"
        outs[name]["rows"] = n_kept
        summary["sources"][target.source]["outputs"][name]["rows"] = n_kept
        outs[f"{REVIEW_DIR}/{m.target}.arrow"] = {
            "path": str(rpath), "kind": "review", "rows": n_review,
            "source": target.source, "role": "review"}
        outs[f"{MATCH_DIR}/{m.target}.links.arrow"] = {
            "path": str(lpath), "kind": "links", "rows": links.num_rows,
            "source": target.source, "role": "match"}
        s = summary["sources"][target.source]
        rec = {"data_records": s["data_records"], "standard_rows": n_kept,
               "review": n_review, "quarantined": s["data_quarantined"]}
        rec["ok"] = rec["data_records"] == n_kept + n_review + rec["quarantined"]
        if not rec["ok"]:
            problems.append(f"{target.source}: data records read ({rec['data_records']}) != "
                            f"standard rows ({n_kept}) + review ({n_review}) + "
                            f"quarantined ({rec['quarantined']})")
        report["reconciliation"][target.source] = rec
        entry = {"config": str(m.config_path), "key": m.key, "counts": match_summary["counts"],
                 "resolved": int(fuzzy.sum()), "review": n_review,
                 "model_notes": match_summary["model"]["notes"]}
        if truth is not None:
            files = [p.name for p in job.sources[target.source].inputs]
            by_row, quarantined = _truth_by_row(truth, right, files)
            left_ids = read_parts(tuple(dataclasses.replace(
                part, columns=part.columns[:1]) for part in _left_parts(job, cfg, staged)))
            entry["accuracy"] = accuracy(links, by_row, list(range(n)),
                                         left_ids.column(LEFT_KEY).to_pylist())
            entry["accuracy"]["quarantined_right_records"] = quarantined
        report["targets"][m.target] = entry
        seconds = match_summary["seconds"]
        timing["targets"][m.target] = {
            "read_s": seconds["read"], "link_s": seconds["link"], "write_s": seconds["write"],
            "rewrite_s": time.perf_counter() - t_target}
    if strip is not None:
        t_wait = time.perf_counter()
        strip.finish()
        timing["strip_residents_s"] = strip.seconds
        timing["strip_residents_wait_s"] = time.perf_counter() - t_wait
    shutil.rmtree(work, ignore_errors=True)  # copies of personal columns: never published
    timing["total_s"] = time.perf_counter() - t_start
    report["timing"] = {k: _rounded(v) for k, v in timing.items()}
    if problems:
        raise ReconciliationError(problems)
    return report
