"""Record matching (名寄せ) on Beam: the engine of :mod:`ikou.transforms.match.engine`, sharded.

::

    InputSlice (side, path, first row, rows)      # a few tens of thousands of records each
      | PrepareSides      read the slice, normalise the compared columns (one Arrow table)
      | ShardSides        hash partitions of each prepared table (many records per element):
                            key      by a hash of the 宛名番号-like key           (exact linkage)
                            rule i   by a hash of blocking rule i's key         (fuzzy candidates)
                            rows     right records by right row                 (the final grouping)
                            sample   the rows the random pairs for u need
      | KeyLinkage        CoGroupByKey per key shard: pairs whose keys agree, their comparison vectors
      | EstimateModel     once, globally: u from random pairs, m from the key pairs (or EM over
                          the candidates' comparison patterns, when keys are too few) → side input
      | BlockCandidates   CoGroupByKey per (rule, shard): candidate pairs and their comparison
                          vectors (not computed for right records already linked by key)
      | LinkRecords       GroupByKey per right shard: key links first, then the best candidate
                          per right record (duplicates across rules removed first)
      | WriteLinks        gathered, sorted by right row, written: links.arrow, review.arrow,
                          unmatched.arrow and a summary

Everything that decides anything is a function of :mod:`ikou.transforms.match.engine`, the same the
in-process engine (``ikou.pipeline.config.matching.link``) runs: the Beam path gives the same links, and
the same bytes whatever the runner, the number of workers or shards. Shard hashes are computed
from the values' UTF-8 bytes (never Python's randomised ``hash``). EM (when m cannot come from
the key pairs) runs on the comparison patterns of all candidates in both paths.

:class:`LinkTables` is the other shape, for several matchings at once (the migration job's
targets): one element per matching, each linked by the engine in one call on its whole tables
(read from Arrow IPC files, columns chosen and renamed, several files concatenated) — no
slicing, shuffling or pickling of records; the model is estimated once per matching. Its
outputs are the engine's, so they equal :class:`MatchRecords`' for the same tables.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam import pvalue
from apache_beam.metrics import Metrics

from ikou.kernels._match_common import MatchConfigError
from ikou.transforms import METRICS_NAMESPACE, arrowio
from ikou.transforms.match import engine as lk

__all__ = [
    "DEFAULT_ROWS_PER_SLICE",
    "DEFAULT_SHARDS",
    "BlockCandidates",
    "EstimateModel",
    "FinalModel",
    "InputSlice",
    "KeyLinkage",
    "LinkRecords",
    "LinkTables",
    "LinkTask",
    "MatchRecords",
    "PrepareSides",
    "ShardSides",
    "TablePart",
    "WriteLinks",
    "check_columns",
    "plan_slices",
    "read_parts",
    "right_casts",
    "shard_of",
]

DEFAULT_ROWS_PER_SLICE = 65_536
DEFAULT_SHARDS = 16
ROW = "__row"  # global row number (0-based) in the prepared tables
NORM = "__n."  # prefix of the normalised compared columns
LEVEL_NOT_COMPARED = -2  # vectors of pairs whose right record is linked by key (never scored)
SUMMARY_FILE = "match-summary.json"
_NS = METRICS_NAMESPACE
LEFT, RIGHT = "left", "right"


# --- planning ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputSlice:
    side: str
    path: str
    start: int
    rows: int


def _open(path: str):
    try:
        return arrowio.open_reader(path)
    except FileNotFoundError:
        raise MatchConfigError(f"{path}: file not found") from None
    except pa.ArrowInvalid as exc:
        raise MatchConfigError(f"{path}: not an Arrow IPC file ({exc})") from None


def plan_slices(side: str, path: str, rows_per_slice: int = DEFAULT_ROWS_PER_SLICE):
    """Slices of ``rows_per_slice`` rows of an Arrow IPC file; returns (slices, rows, schema)."""
    reader = _open(path)
    n = sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))
    step = max(1, int(rows_per_slice))
    slices = [InputSlice(side, path, s, min(step, n - s)) for s in range(0, n, step)]
    return slices, n, reader.schema


def required_columns(cfg, side: str) -> list[str]:
    """The columns of one side's table the configuration uses (id, key, fields, blocking)."""
    is_left = side == LEFT
    cols = [cfg.left_id if is_left else cfg.right_id, cfg.left_key if is_left else cfg.right_key]
    cols += [f.left if is_left else f.right for f in cfg.fields]
    cols += [(p.left if is_left else p.right) for rule in cfg.blocking for p in rule
             if p.field is None]
    return list(dict.fromkeys(c for c in cols if c is not None))


def _carried_columns(cfg, side: str) -> list[str]:
    """Raw columns the shards need: the key and the raw parts of blocking rules (compared
    fields travel normalised, ids are read by the writer)."""
    is_left = side == LEFT
    cols = [cfg.left_key if is_left else cfg.right_key]
    cols += [(p.left if is_left else p.right) for rule in cfg.blocking for p in rule
             if p.field is None]
    return list(dict.fromkeys(c for c in cols if c is not None))


def right_casts(cfg, left: pa.Schema, right: pa.Schema) -> dict[str, pa.DataType]:
    """Prepared right columns to cast to the left column's type, as the engine's equality
    (``exact_codes``) does, so that equal keys hash to the same shard: the key, raw blocking
    parts and compared fields that are not normalised (normalised ones are strings)."""
    pairs = [(cfg.right_key, cfg.left_key, cfg.right_key)] if cfg.left_key else []
    pairs += [(p.right, p.left, p.right) for rule in cfg.blocking for p in rule
              if p.field is None]
    pairs += [(NORM + f.name, f.left, f.right) for f in cfg.fields if f.normalize is None]
    out = {}
    for name, lcol, rcol in pairs:
        lt, rt = left.field(lcol).type, right.field(rcol).type
        if lt != rt:
            out[name] = lt
    return out


def check_columns(cfg, side: str, schema: pa.Schema, path: str) -> None:
    """A missing column is a configuration mistake: say so before any pipeline runs."""
    missing = [c for c in required_columns(cfg, side) if c not in schema.names]
    if missing:
        raise MatchConfigError(f"{path}: the {side} table has no column "
                               + ", ".join(repr(c) for c in missing))
    for f in cfg.fields:
        col = f.left if side == LEFT else f.right
        t = schema.field(col).type
        if f.method == "date" and not (pa.types.is_date(t) or pa.types.is_timestamp(t)):
            raise MatchConfigError(f"{path}: field {f.name}: date comparison needs a date "
                                   f"column, {side} column {col!r} is {t}")


# --- stable hashing ------------------------------------------------------------------------------

_P = np.uint64(0x100000001B3)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (uint64, wrapping)."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def shard_of(values: pa.Array, shards: int) -> np.ndarray:
    """Shard (0 … shards-1) of each value from its text's UTF-8 bytes; -1 for a null.

    Deterministic across processes and machines (no Python ``hash``)."""
    arr = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    if not pa.types.is_string(arr.type):
        arr = pc.cast(arr, pa.string())
    n = len(arr)
    out = np.full(n, -1, np.int64)
    if n == 0:
        return out
    arr = pa.concat_arrays([arr])  # own buffers, offset 0
    offsets = np.frombuffer(arr.buffers()[1], np.int32, n + 1).astype(np.int64)
    data_buf = arr.buffers()[2]
    data = (np.frombuffer(data_buf, np.uint8, offsets[-1]) if data_buf is not None and offsets[-1]
            else np.zeros(0, np.uint8))
    lengths = np.diff(offsets)
    if len(data):
        pos = np.arange(len(data), dtype=np.int64) - np.repeat(offsets[:-1], lengths)
        powers = np.cumprod(np.full(int(lengths.max()), _P, np.uint64), dtype=np.uint64)
        terms = (data.astype(np.uint64) + np.uint64(1)) * powers[pos]
        cs = np.concatenate([np.zeros(1, np.uint64), np.cumsum(terms, dtype=np.uint64)])
        h = cs[offsets[1:]] - cs[offsets[:-1]]
    else:
        h = np.zeros(n, np.uint64)
    h = _mix(h ^ lengths.astype(np.uint64))
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    out[valid] = (h % np.uint64(shards)).astype(np.int64)[valid]
    return out


def _compact(table: pa.Table) -> pa.Table:
    """A copy that owns just its rows' bytes: a pickled slice would carry its parent's buffers,
    and Beam pickles every element it moves."""
    return pa.table({name: pa.concat_arrays(col.chunks) if col.num_chunks else
                     pa.array([], col.type) for name, col in zip(table.column_names,
                                                                 table.columns, strict=True)})


def _split(table: pa.Table, shard: np.ndarray):
    """(shard, sub-table) for each non-empty shard (fresh buffers); shard -1 rows dropped."""
    keep = np.flatnonzero(shard >= 0)
    if len(keep) == 0:
        return
    order = keep[np.argsort(shard[keep], kind="stable")]
    s = shard[order]
    bounds = np.flatnonzero(np.concatenate([[True], s[1:] != s[:-1], [True]]))
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        yield int(s[a]), table.take(pa.array(order[a:b], pa.int64()))


def _rule_key(rule, cols, table: pa.Table, side: str) -> pa.Array:
    """A rule's combined key as one string per row (null when a part is null or blank)."""
    parts = [pc.cast(lk.part_array(p, cols, table, side), pa.string()) for p in rule]
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, "\x1f")


def _cols(table: pa.Table, cfg) -> dict[str, pa.Array]:
    """The normalised columns of a prepared table, by field name."""
    return {name[len(NORM):]: table.column(name).combine_chunks()
            for name in table.column_names if name.startswith(NORM)}


def _concat(tables):
    tables = list(tables)
    return pa.concat_tables(tables).combine_chunks() if len(tables) != 1 else tables[0]


def _rows(table: pa.Table) -> np.ndarray:
    return table.column(ROW).to_numpy()


# --- elements ------------------------------------------------------------------------------------


@dataclass
class PairBatch:
    """Pairs (global rows) and their comparison vectors; ``kind`` key or candidate."""

    kind: str
    left: np.ndarray
    right: np.ndarray
    levels: np.ndarray
    key_ambiguous: int = 0
    skipped_pairs: int = 0

    def take(self, idx: np.ndarray) -> PairBatch:
        return PairBatch(self.kind, self.left[idx], self.right[idx], self.levels[idx])


@dataclass
class LinkPart:
    """What one right shard decided."""

    decisions: lk.Decisions
    candidate_pairs: int
    skipped_pairs: int
    key_ambiguous: int


# --- DoFns ---------------------------------------------------------------------------------------


class _PrepareFn(beam.DoFn):
    def __init__(self, cfg, variants, casts):
        self.cfg = cfg
        self.variants = variants
        self.casts = casts
        self.normalizers = None
        self.records = Metrics.counter(_NS, "match_records_read")

    def setup(self):
        self.normalizers = lk.make_normalizers(self.cfg, self.variants)

    def process(self, sl: InputSlice):
        table = _open(sl.path).read_all().slice(sl.start, sl.rows)
        cfg = self.cfg
        cols = lk.normalize_side(cfg, table, sl.side, self.normalizers)
        out = {ROW: pa.array(np.arange(sl.start, sl.start + sl.rows, dtype=np.int64))}
        for name in _carried_columns(cfg, sl.side):
            out[name] = table.column(name).combine_chunks()
        for name, col in cols.items():
            out[NORM + name] = col
        if sl.side == RIGHT:
            for name, type_ in self.casts.items():
                try:
                    out[name] = out[name].cast(type_)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise MatchConfigError(f"cannot compare {type_} with {out[name].type}: "
                                           f"{exc}") from None
        self.records.inc(sl.rows)
        yield sl.side, _compact(pa.table(out))


class PrepareSides(beam.PTransform):
    """``InputSlice`` → (side, prepared table): ``__row``, the key and raw blocking columns
    and the normalised compared columns ``__n.<field>`` (right columns cast as ``casts``
    says: :func:`right_casts`)."""

    def __init__(self, cfg, variants, casts=None):
        super().__init__()
        self.cfg = cfg
        self.variants = variants
        self.casts = dict(casts or {})

    def expand(self, slices):
        return slices | "Normalise" >> beam.ParDo(_PrepareFn(self.cfg, self.variants,
                                                             self.casts))


KEYS, ROWS, SAMPLE = "keys", "rows", "sample"


class _ShardFn(beam.DoFn):
    def __init__(self, cfg, shards, n_left, n_right):
        self.cfg = cfg
        self.shards = shards
        self.n = {LEFT: n_left, RIGHT: n_right}
        self.sample = None

    def setup(self):
        _, li, ri = lk.random_pairs(self.cfg, self.n[LEFT], self.n[RIGHT])
        self.sample = {LEFT: None if li is None else np.unique(li),
                       RIGHT: None if ri is None else np.unique(ri)}

    def process(self, element):
        side, table = element
        cfg = self.cfg
        cols = _cols(table, cfg)
        key = cfg.left_key if side == LEFT else cfg.right_key
        if key is not None:
            values = lk._blank_to_null(table.column(key).combine_chunks())
            for s, part in _split(table, shard_of(values, self.shards)):
                yield pvalue.TaggedOutput(KEYS, (s, (side, part)))
        for r, rule in enumerate(cfg.blocking):
            for s, part in _split(table, shard_of(_rule_key(rule, cols, table, side),
                                                  self.shards)):
                yield pvalue.TaggedOutput(f"rule{r}", ((r, s), (side, part)))
        rows = _rows(table)
        if side == RIGHT:
            for sh in np.unique(rows % self.shards):
                yield pvalue.TaggedOutput(ROWS, (int(sh), ("rows", rows[rows % self.shards
                                                                         == sh])))
        wanted = self.sample[side]
        if wanted is not None:
            hit = np.flatnonzero(np.isin(rows, wanted))
            if len(hit):
                keep = [ROW] + [c for c in table.column_names if c.startswith(NORM)]
                yield pvalue.TaggedOutput(SAMPLE, (side, table.select(keep).take(
                    pa.array(hit, pa.int64()))))


class ShardSides(beam.PTransform):
    """Prepared tables → hash partitions: ``keys``, ``rule<i>``, ``rows`` (right) and
    ``sample`` (the rows the random pairs for u use)."""

    def __init__(self, cfg, shards: int, n_left: int, n_right: int):
        super().__init__()
        self.cfg = cfg
        self.shards = shards
        self.n_left = n_left
        self.n_right = n_right

    def expand(self, prepared):
        tags = [KEYS, ROWS, SAMPLE] + [f"rule{r}" for r in range(len(self.cfg.blocking))]
        return prepared | "Partition" >> beam.ParDo(
            _ShardFn(self.cfg, self.shards, self.n_left, self.n_right)).with_outputs(*tags)


def _sides(grouped) -> tuple[pa.Table | None, pa.Table | None]:
    left = [t for side, t in grouped if side == LEFT]
    right = [t for side, t in grouped if side == RIGHT]
    return (_concat(left) if left else None), (_concat(right) if right else None)


def _by_right_shard(batch: PairBatch, shards: int):
    shard = batch.right % shards
    for s in np.unique(shard):
        yield int(s), (batch.kind, batch.take(np.flatnonzero(shard == s)))


class _KeyPairsFn(beam.DoFn):
    def __init__(self, cfg, shards):
        self.cfg = cfg
        self.shards = shards
        self.pairs = Metrics.counter(_NS, "match_key_pairs")

    def process(self, element):
        _, grouped = element
        left, right = _sides(grouped)
        if left is None or right is None:
            return
        cfg = self.cfg
        kl, kr, ambiguous = lk.key_pairs(cfg, left, right)
        prep = lk.prepared_from(cfg, _cols(left, cfg), _cols(right, cfg))
        levels = lk.comparison_levels(cfg, prep, kl, kr)
        batch = PairBatch("key", _rows(left)[kl], _rows(right)[kr], levels,
                          key_ambiguous=ambiguous)
        self.pairs.inc(len(kl))
        yield batch


class KeyLinkage(beam.PTransform):
    """Key shards → ``PairBatch`` of the pairs whose keys agree (a right key naming exactly one
    left record), with their comparison vectors."""

    def __init__(self, cfg, shards):
        super().__init__()
        self.cfg = cfg
        self.shards = shards

    def expand(self, keyed):
        return (keyed
                | "GroupByKeyShard" >> beam.GroupByKey()
                | "KeyPairs" >> beam.ParDo(_KeyPairsFn(self.cfg, self.shards)))


def _sample_levels(cfg, n_left, n_right, sample_tables):
    """Comparison vectors of the random pairs, from the sampled rows of both sides."""
    _, li, ri = lk.random_pairs(cfg, n_left, n_right)
    if li is None:
        return None
    left, right = _sides(sample_tables)
    rows_l, rows_r = _rows(left), _rows(right)
    ol, orr = np.argsort(rows_l, kind="stable"), np.argsort(rows_r, kind="stable")
    pl = ol[np.searchsorted(rows_l, li, sorter=ol)]
    pr = orr[np.searchsorted(rows_r, ri, sorter=orr)]
    prep = lk.prepared_from(cfg, _cols(left, cfg), _cols(right, cfg))
    return lk.comparison_levels(cfg, prep, pl, pr)


def _pre_model(key_batches, sample_tables, cfg, n_left, n_right):
    """The model when keys (or the config) fix it — with the right rows it links by key, so
    candidates of those rows need no comparison — else None (EM over the candidates)."""
    rand = _sample_levels(cfg, n_left, n_right, sample_tables)
    key_levels = (np.concatenate([b.levels for b in key_batches]) if key_batches
                  else np.zeros((0, len(cfg.fields)), np.int8))
    mode = lk.model_mode(cfg, len(key_levels))
    out = {"rand": rand, "mode": mode, "model": None, "resolved": None,
           "key_ambiguous": sum(b.key_ambiguous for b in key_batches)}
    if mode == "em":
        return out
    model = lk.model_from_levels(cfg, n_left, n_right, rand, mode, key_levels)
    score, _ = lk._score(model, key_levels)
    ok = score >= lk._logit2(cfg.possible_probability)
    rows = np.concatenate([b.right for b in key_batches]) if key_batches else np.zeros(0, int)
    resolved = np.zeros(n_right, bool)
    resolved[rows[ok]] = True
    out.update(model=model, resolved=resolved)
    return out


def _final_model(pre, patterns, cfg, n_left, n_right):
    if pre["model"] is not None:
        return pre["model"]
    return lk.model_from_levels(cfg, n_left, n_right, pre["rand"], "em",
                                candidate_patterns=lk.merge_patterns(patterns))


class EstimateModel(beam.PTransform):
    """Key pairs + the sampled rows → the first model (a singleton dict: ``model``, or None
    when m must come from EM over the candidates, ``resolved`` right rows, ``rand`` vectors);
    :class:`FinalModel` completes it when EM is needed."""

    def __init__(self, cfg, n_left, n_right):
        super().__init__()
        self.cfg = cfg
        self.n_left = n_left
        self.n_right = n_right

    def expand(self, inputs):
        key_batches, sample = inputs
        gathered = sample | "GatherSample" >> beam.combiners.ToList()
        return (key_batches
                | "GatherKeyPairs" >> beam.combiners.ToList()
                | "FirstModel" >> beam.Map(_pre_model, pvalue.AsSingleton(gathered), self.cfg,
                                           self.n_left, self.n_right))



def _final_model_of(patterns, pre, cfg, n_left, n_right):
    return _final_model(pre, patterns, cfg, n_left, n_right)


class FinalModel(beam.PTransform):
    """The first model when it is complete, else EM over the candidates' comparison patterns
    (``(patterns, counts)`` per right shard) → the model (a singleton)."""

    def __init__(self, cfg, n_left, n_right):
        super().__init__()
        self.cfg = cfg
        self.n_left = n_left
        self.n_right = n_right

    def expand(self, inputs):
        patterns, pre = inputs
        return (patterns
                | "GatherPatterns" >> beam.combiners.ToList()
                | "Model" >> beam.Map(_final_model_of, pvalue.AsSingleton(pre), self.cfg,
                                      self.n_left, self.n_right))


class _CandidatesFn(beam.DoFn):
    def __init__(self, cfg, shards):
        self.cfg = cfg
        self.shards = shards
        self.pairs = Metrics.counter(_NS, "match_candidate_pairs")
        self.compared = Metrics.counter(_NS, "match_pairs_compared")

    def process(self, element, pre):
        (r, _), grouped = element
        cfg = self.cfg
        left, right = _sides(grouped)
        if left is None or right is None:
            return
        rule = cfg.blocking[r]
        prep = lk.prepared_from(cfg, _cols(left, cfg), _cols(right, cfg))
        lc, rc = lk._rule_codes(rule, prep, left, right)
        li, ri, skipped = lk._join_codes(lc, rc, cfg.max_block_pairs)
        g_l, g_r = _rows(left)[li], _rows(right)[ri]
        levels = np.full((len(li), len(cfg.fields)), LEVEL_NOT_COMPARED, np.int8)
        todo = (np.ones(len(li), bool) if pre["resolved"] is None
                else ~pre["resolved"][g_r])
        levels[todo] = lk.comparison_levels(cfg, prep, li[todo], ri[todo])
        self.pairs.inc(len(li))
        self.compared.inc(int(todo.sum()))
        batch = PairBatch("cand", g_l, g_r, levels, skipped_pairs=skipped)
        if skipped:  # the count must reach the writer even when no pair is left
            yield 0, ("skipped", skipped)
        yield from _by_right_shard(batch, self.shards)


class BlockCandidates(beam.PTransform):
    """(rule, shard) groups → candidate pairs keyed by right shard, with comparison vectors
    (left at ``LEVEL_NOT_COMPARED`` for right records linked by key: never scored)."""

    def __init__(self, cfg, shards, rule: int):
        super().__init__()
        self.cfg = cfg
        self.shards = shards
        self.rule = rule

    def expand(self, inputs):
        keyed, pre = inputs
        return (keyed
                | "GroupByRuleShard" >> beam.GroupByKey()
                | "Candidates" >> beam.ParDo(_CandidatesFn(self.cfg, self.shards),
                                             pvalue.AsSingleton(pre)))


@dataclass
class ShardInput:
    """Everything one right shard needs to decide: its right rows, key pairs and candidates."""

    rows: np.ndarray
    key: PairBatch
    cand: PairBatch
    skipped_pairs: int


def _merge(batches: list[PairBatch], kind: str, n_fields: int) -> PairBatch:
    if not batches:
        e = np.zeros(0, np.int64)
        return PairBatch(kind, e, e, np.zeros((0, n_fields), np.int8))
    return PairBatch(kind, np.concatenate([b.left for b in batches]),
                     np.concatenate([b.right for b in batches]),
                     np.concatenate([b.levels for b in batches]))


def _assemble(element, cfg) -> ShardInput:
    _, items = element
    rows = [r for kind, r in items if kind == "rows"]
    keys = [b for kind, b in items if kind == "key"]
    cands = [b for kind, b in items if kind == "cand"]
    skipped = sum(n for kind, n in items if kind == "skipped")
    n_f = len(cfg.fields)
    rows = np.sort(np.concatenate(rows)) if rows else np.zeros(0, np.int64)
    key = _merge(keys, "key", n_f)
    key = key.take(np.argsort(key.right, kind="stable"))
    cand = _merge(cands, "cand", n_f)
    if len(cand.left):  # the union over rules: sorted by (right, left), each pair once
        cand = cand.take(np.lexsort((cand.left, cand.right)))
        first = np.concatenate([[True], (cand.right[1:] != cand.right[:-1])
                                | (cand.left[1:] != cand.left[:-1])])
        cand = cand.take(np.flatnonzero(first))
    return ShardInput(rows, key, cand, skipped)


def _patterns(shard: ShardInput, pre):
    if pre["model"] is not None or len(shard.cand.levels) == 0:
        return
    pat, counts = lk._patterns(shard.cand.levels)
    yield pat, counts


def _link(shard: ShardInput, model, cfg, tf=None) -> LinkPart:
    key, cand = shard.key, shard.cand
    d = lk.decide(cfg, model, shard.rows, key.left, key.right, key.levels,
                  cand.left, cand.right, cand.levels, tf)
    return LinkPart(d, len(cand.left), shard.skipped_pairs, 0)


class LinkRecords(beam.PTransform):
    """Pairs keyed by right shard (+ the right rows) → ``LinkPart`` per shard, with the model
    (side input) — and the candidates' comparison patterns for EM (tag ``patterns``)."""

    def __init__(self, cfg, n_left, n_right, tf=None):
        super().__init__()
        self.cfg = cfg
        self.n_left = n_left
        self.n_right = n_right
        self.tf = tf or None

    def expand(self, inputs):
        keyed, pre = inputs
        shards = (keyed
                  | "GroupByRightShard" >> beam.GroupByKey()
                  | "Assemble" >> beam.Map(_assemble, self.cfg))
        patterns = shards | "Patterns" >> beam.FlatMap(_patterns, pvalue.AsSingleton(pre))
        model = (patterns, pre) | "FinalModel" >> FinalModel(self.cfg, self.n_left, self.n_right)
        parts = shards | "Decide" >> beam.Map(_link, pvalue.AsSingleton(model), self.cfg,
                                              self.tf)
        return parts, model


def _read_ids(path: str, column, rows: np.ndarray, side: str) -> pa.Array:
    if column is None:
        return pa.array(rows, pa.int64())
    table = _open(path).read_all().select([column])
    return lk.side_ids(table, column, rows, side)


def term_frequencies_of(cfg, variants, left_path: str) -> dict | None:
    """The left side's term frequencies of the ``tf`` fields (None when there are none), read
    and computed once when the transform is built: they need the whole left table."""
    if not any(f.tf for f in cfg.fields):
        return None
    cols = list(dict.fromkeys(f.left for f in cfg.fields if f.tf))
    table = _open(left_path).read_all().select(cols)
    return lk.left_term_frequencies(cfg, table, lk.make_normalizers(cfg, variants))


def _write(parts: list[LinkPart], model, pre, cfg, n_left, n_right, paths, out_dir,
           tf=None) -> dict:
    d = lk.contest(cfg, lk.Decisions.concat([p.decisions for p in parts], len(cfg.fields)))
    left_path, right_path = paths
    links = lk.links_table(cfg, model, d, _read_ids(right_path, cfg.right_id, d.right, RIGHT),
                           _read_ids(left_path, cfg.left_id, d.left, LEFT),
                           _read_ids(left_path, cfg.left_id, np.maximum(d.runner, 0), LEFT),
                           lk.link_tf_weights(cfg, model, tf, d))
    unmatched = lk.unmatched_table(d, _read_ids(right_path, cfg.right_id, d.unmatched, RIGHT))
    counts = {"left_records": n_left, "right_records": n_right,
              "key_ambiguous": pre["key_ambiguous"],
              "candidate_pairs": sum(p.candidate_pairs for p in parts),
              "skipped_block_pairs": sum(p.skipped_pairs for p in parts), **d.counts()}
    result = lk.MatchResult(links, lk.review_table(links), unmatched, lk.order_counts(counts),
                            model)
    summary = lk.write_outputs(result, out_dir)
    with open(os.path.join(out_dir, SUMMARY_FILE), "w", encoding="utf-8") as fh:
        json.dump(summary, fh, ensure_ascii=False, indent=1)
    return summary


class WriteLinks(beam.PTransform):
    """``LinkPart``s → ``links.arrow``, ``review.arrow``, ``unmatched.arrow`` and
    ``match-summary.json`` in ``out_dir`` (sorted by right row: the bytes do not depend on the
    runner, the workers or the shards); returns the summary (counts, model, files)."""

    def __init__(self, cfg, n_left, n_right, paths: tuple[str, str], out_dir, tf=None):
        super().__init__()
        self.cfg = cfg
        self.n_left = n_left
        self.n_right = n_right
        self.paths = paths
        self.out_dir = out_dir
        self.tf = tf

    def expand(self, inputs):
        parts, model, pre = inputs
        return (parts
                | "GatherLinks" >> beam.combiners.ToList()
                | "Write" >> beam.Map(_write, pvalue.AsSingleton(model), pvalue.AsSingleton(pre),
                                      self.cfg, self.n_left, self.n_right, self.paths,
                                      self.out_dir, self.tf))


class MatchRecords(beam.PTransform):
    """The whole matching, applied to the pipeline: two Arrow IPC files → the summary (a
    singleton dict: counts, model, files); the outputs are written into ``out_dir``.

    ``cfg``: a ``MatchConfig``; ``variants``: its variant map; ``shards``: hash partitions per
    grouping; ``slice_rows``: records per input element. The inputs are planned (row counts
    read from their footers) when the transform is built."""

    def __init__(self, cfg, variants, left_path: str, right_path: str, out_dir: str,
                 shards: int = DEFAULT_SHARDS, slice_rows: int = DEFAULT_ROWS_PER_SLICE):
        super().__init__()
        if shards < 1 or slice_rows < 1:
            raise MatchConfigError(f"shards and slice rows must be positive, got {shards} and "
                                   f"{slice_rows}")
        self.cfg = cfg
        self.variants = variants
        self.paths = (str(left_path), str(right_path))
        self.slices = []
        rows, schemas = [], []
        for side, path in zip((LEFT, RIGHT), self.paths, strict=True):
            sl, n, schema = plan_slices(side, path, slice_rows)
            check_columns(cfg, side, schema, path)
            self.slices += sl
            rows.append(n)
            schemas.append(schema)
        self.n_left, self.n_right = rows
        self.casts = right_casts(cfg, *schemas)
        self.out_dir = str(out_dir)
        self.shards = shards
        self.tf = term_frequencies_of(cfg, variants, self.paths[0])

    def expand(self, pbegin):
        cfg, shards = self.cfg, self.shards
        parted = (pbegin
                  | "Slices" >> beam.Create(self.slices)
                  | "Prepare" >> PrepareSides(cfg, self.variants, self.casts)
                  | "Shard" >> ShardSides(cfg, shards, self.n_left, self.n_right))
        key_pairs = parted[KEYS] | "KeyLinkage" >> KeyLinkage(cfg, shards)
        pre = (key_pairs, parted[SAMPLE]) | "EstimateModel" >> EstimateModel(
            cfg, self.n_left, self.n_right)
        to_right = [
            parted[ROWS],
            key_pairs | "KeyPairsByRightShard" >> beam.FlatMap(_by_right_shard, shards),
        ]
        for r in range(len(cfg.blocking)):
            to_right.append((parted[f"rule{r}"], pre)
                            | f"Rule{r}" >> BlockCandidates(cfg, shards, r))
        keyed = tuple(to_right) | "ByRightShard" >> beam.Flatten()
        parts, model = (keyed, pre) | "Link" >> LinkRecords(cfg, self.n_left, self.n_right,
                                                           self.tf)
        return (parts, model, pre) | "WriteLinks" >> WriteLinks(
            cfg, self.n_left, self.n_right, self.paths, self.out_dir, self.tf)



# --- several matchings, each in one call of the engine ------------------------------------------


@dataclass(frozen=True)
class TablePart:
    """Columns of one Arrow IPC file that make (part of) one side's table: ``columns`` is
    ``((table column, file column), ...)``; ``casts`` ``((table column, type), ...)``."""

    path: str
    columns: tuple[tuple[str, str], ...]
    casts: tuple[tuple[str, pa.DataType], ...] = ()


def read_parts(parts) -> pa.Table:
    """One side's table: each part's columns (memory-mapped; a column copied only when it has
    several chunks or is cast), the parts concatenated (types promoted) in the given order."""
    tables = []
    for part in parts:
        src = _open(part.path).read_all()
        casts = dict(part.casts)
        cols = {}
        for name, column in part.columns:
            if column not in src.column_names:
                raise MatchConfigError(f"{part.path}: no column {column!r}")
            col = src.column(column)
            arr = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
            cols[name] = arr.cast(casts[name]) if name in casts else arr
        tables.append(pa.table(cols))
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="permissive").combine_chunks()


@dataclass(frozen=True)
class LinkTask:
    """One matching of :class:`LinkTables`: its configuration and variant map, the parts of
    both sides' tables and the folder its outputs go to."""

    name: str
    cfg: object
    variants: dict
    left: tuple[TablePart, ...]
    right: tuple[TablePart, ...]
    out_dir: str


class _LinkTaskFn(beam.DoFn):
    def __init__(self):
        self.tasks = Metrics.counter(_NS, "match_tasks")
        self.records = Metrics.counter(_NS, "match_records_read")

    def process(self, task: LinkTask):
        t0 = time.perf_counter()
        left, right = read_parts(task.left), read_parts(task.right)
        for side, table in ((LEFT, left), (RIGHT, right)):
            check_columns(task.cfg, side, table.schema, f"{task.name} ({side})")
        t1 = time.perf_counter()
        result = lk.link(task.cfg, left, right, task.variants)
        t2 = time.perf_counter()
        summary = lk.write_outputs(result, task.out_dir)
        t3 = time.perf_counter()
        summary["seconds"] = {"read": t1 - t0, "link": t2 - t1, "write": t3 - t2}
        with open(os.path.join(task.out_dir, SUMMARY_FILE), "w", encoding="utf-8") as fh:
            json.dump(summary, fh, ensure_ascii=False, indent=1)
        self.tasks.inc()
        self.records.inc(left.num_rows + right.num_rows)
        yield task.name, summary["counts"]


class LinkTables(beam.PTransform):
    """Several matchings in one pipeline: ``LinkTask`` elements (one per matching, each a
    whole table pair: never one record) → ``(name, counts)``; each task's ``links.arrow``,
    ``review.arrow``, ``unmatched.arrow`` and ``match-summary.json`` (with the seconds spent
    reading, linking and writing) go to its ``out_dir``. The engine (:func:`lk.link`) links
    each pair in one call: the bytes are the in-process engine's whatever the runner."""

    def __init__(self, tasks):
        super().__init__()
        self.tasks = list(tasks)
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise MatchConfigError(f"matching names must be unique: {names}")

    def expand(self, pbegin):
        return (pbegin
                | "Tasks" >> beam.Create(self.tasks)
                | "Link" >> beam.ParDo(_LinkTaskFn()))
