"""The matching engine (名寄せ) as plain functions over Arrow tables and numpy arrays.

:mod:`ikou.pipeline.config.matching` loads and validates the configuration (YAML) and the variant
tables and calls :func:`link` in one process; :mod:`ikou.transforms.match.beam` runs the same
functions on Beam, one shard of records at a time. Steps (details in the pipeline module):

1. :func:`normalize_side` / :func:`prepared_from` (= :func:`prepare`): normalise the compared
   columns (row by row, so any slice of a table can be normalised apart) and decode them once
   for comparison;
2. :func:`block`: candidate pairs per blocking rule by a sort-based equi-join on key codes
   (:func:`part_array` gives one side's values of a rule's part), the union over the rules;
3. :func:`key_pairs`: pairs whose keys agree (a right key naming exactly one left record);
4. :func:`comparison_levels`: comparison vectors of pairs (the comparison kernel);
5. :func:`random_pairs` + :func:`model_from_levels` (= :func:`estimate_model`): the
   Fellegi–Sunter model from the vectors of random pairs (u) and of the key pairs or the
   candidates (m); the vectors' order does not matter, so shards may deliver them;
6. :func:`decide`: key links first, then the best fuzzy candidate per right record;
   :func:`links_table` / :func:`unmatched_table` build the outputs sorted by right row.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ikou.kernels._match_common import LEVEL_NULL, MatchConfigError, NormalizeOptions
from ikou.kernels.compare import (
    CodedStrings,
    DateColumn,
    coded_levels,
    date_levels,
    exact_codes,
    exact_levels,
)
from ikou.kernels.normalize import Normalizer
from ikou.transforms import arrowio

__all__ = [
    "COUNT_ORDER",
    "Blocks",
    "Decisions",
    "FieldSpec",
    "KeyPart",
    "MIN_KEY_PAIRS",
    "MatchConfig",
    "MatchResult",
    "Model",
    "FULL_NAME",
    "Prepared",
    "block",
    "comparison_levels",
    "contest",
    "decide",
    "estimate_model",
    "key_pairs",
    "left_term_frequencies",
    "link",
    "link_tf_weights",
    "links_table",
    "make_normalizers",
    "model_from_levels",
    "model_mode",
    "normalize_side",
    "order_counts",
    "part_array",
    "prepare",
    "prepared_from",
    "random_pairs",
    "review_table",
    "side_ids",
    "split_names",
    "split_positions",
    "term_frequencies",
    "tf_weights",
    "unmatched_table",
    "write_arrow",
    "write_outputs",
]


@dataclass(frozen=True)
class FieldSpec:
    name: str
    left: str
    right: str
    method: str
    thresholds: tuple[float, ...] = ()
    normalize: NormalizeOptions | None = None
    m: tuple[float, ...] | None = None
    u: tuple[float, ...] | None = None
    date_levels: str = "basic"  # date: "basic" (4 levels) or "fine" (6: FINE_*)
    part: str | None = None  # "surname" / "given": compare that part of a name (split)
    tf: bool = False  # term-frequency adjustment of the exact level (left-side frequencies)
    tf_minimum: float = 0.0  # floor of a value's frequency in the adjustment
    # `match` only where this field speaks for it (weight > 0); "strict": a missing value
    # does not either (the link is at most `possible`)
    required: bool | str = False
    remove: str | None = None  # a regular expression removed from both sides' values first

    @property
    def n_levels(self) -> int:
        if self.method == "exact":
            return 2
        if self.method == "date":
            return 6 if self.date_levels == "fine" else 4
        return len(self.thresholds) + 1

    @property
    def options(self) -> NormalizeOptions | None:
        """The normalisation the field's column gets: a split field keeps (collapsed) spaces
        for the split; its parts have none left."""
        if self.part is None:
            return self.normalize
        return replace(self.normalize or NormalizeOptions(), whitespace="collapse")


@dataclass(frozen=True)
class KeyPart:
    field: str | None  # a compared field (its normalised values) ...
    left: str | None  # ... or two raw columns
    right: str | None
    prefix: int | None = None


@dataclass(frozen=True)
class MatchConfig:
    name: str
    fields: tuple[FieldSpec, ...]
    blocking: tuple[tuple[KeyPart, ...], ...]
    left_id: str | None = None
    right_id: str | None = None
    left_key: str | None = None
    right_key: str | None = None
    left_path: str | None = None
    right_path: str | None = None
    match_probability: float = 0.99
    possible_probability: float = 0.5
    variants: tuple[str, ...] = ("default",)
    em: bool = True
    max_iterations: int = 40
    tolerance: float = 1e-5
    u_random_pairs: int = 200_000
    em_max_pairs: int = 2_000_000  # accepted, unused: EM runs on all candidates' patterns
    max_block_pairs: int = 10_000
    expected_match_rate: float = 1.0
    seed: int = 0
    m_from: str = "auto"  # "keys" (pairs linked by key), "em", or "auto" (keys when enough)
    margin: float = 5.0  # bits: a match is ambiguous when the runner-up is within this of it
    one_to_one: bool = False  # a left record two matches take within margin: both possible
    surnames: tuple[str, ...] = ()  # listed surnames (kanji and readings) for unspaced names


# --- preparation and blocking ----------------------------------------------------------------


@dataclass
class Prepared:
    """Both tables' columns ready for blocking and comparison."""

    n_left: int
    n_right: int
    left: dict[str, pa.Array]  # field name → normalised (or raw) column
    right: dict[str, pa.Array]
    strings: dict[str, CodedStrings] = field(default_factory=dict)
    codes: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    dates: dict[str, tuple[DateColumn, DateColumn]] = field(default_factory=dict)
    tf: dict[str, np.ndarray] = field(default_factory=dict)  # per left row: its value's share


def _column(table: pa.Table, name: str, side: str) -> pa.Array:
    if name not in table.column_names:
        raise MatchConfigError(f"{side} table has no column {name!r}")
    col = table.column(name)
    return col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)


def make_normalizers(cfg: MatchConfig, variants: dict[int, int]) -> dict:
    """One :class:`Normalizer` per distinct normalisation of the config's fields."""
    normalizers: dict = {}
    for f in cfg.fields:
        opts = f.options
        if opts is not None and opts not in normalizers:
            normalizers[opts] = Normalizer(opts, variants)
        if f.part is not None and ("surnames", opts) not in normalizers:
            listed = pa.array(list(cfg.surnames), pa.string())
            normalizers[("surnames", opts)] = (normalizers[opts](listed) if opts is not None
                                               else listed)
    return normalizers


_SPACED = r"^(?P<s>[^ ]+) (?P<g>.+)$"

#: Suffix of the normalised whole name of a ``part`` field in :func:`normalize_side`'s output
#: (the field's own name holds the part): the comparison splits the whole name per pair.
FULL_NAME = "~name"


def split_positions(names: pa.Array, surnames: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Per normalised name (spaces collapsed): the code-point index of its first space and,
    for a name without one, the index after the longest of ``surnames`` it starts with that
    leaves at least one character (int32, -1 where none; null names -1). Computed on the
    distinct names only (Arrow compute), then spread to the rows."""
    names = _as_string(names, "name")
    encoded = names.dictionary_encode()
    values = encoded.dictionary
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    spaced = pc.extract_regex(values, _SPACED)
    has_space = pc.fill_null(pc.is_valid(spaced), False).to_numpy(zero_copy_only=False)
    sur_len = pc.utf8_length(pc.struct_field(spaced, "s")).fill_null(-1).to_numpy(
        zero_copy_only=False).astype(np.int32)
    space = np.where(has_space, sur_len, -1).astype(np.int32)
    listed_pos = np.full(len(values), -1, np.int32)
    listed = pc.unique(surnames.filter(pc.is_valid(surnames)))
    longest = int(pc.max(pc.utf8_length(listed)).as_py() or 0) if len(listed) else 0
    length = pc.utf8_length(values).to_numpy(zero_copy_only=False)
    for n in range(1, longest + 1):  # longest last: the longest listed prefix wins
        pre = pc.utf8_slice_codeunits(values, 0, n)
        hit = pc.fill_null(pc.is_in(pre, value_set=listed), False).to_numpy(
            zero_copy_only=False)
        listed_pos[hit & (length > n) & ~has_space] = n
    if len(values) == 0:
        none = np.full(len(codes), -1, np.int32)
        return none, none.copy()
    code = np.maximum(codes, 0)
    sp, lp = space[code], listed_pos[code]
    sp[codes < 0] = -1
    lp[codes < 0] = -1
    return sp, lp


def _part_of(names: pa.Array, space: np.ndarray, listed: np.ndarray, part: str) -> pa.Array:
    """The ``part`` of each name from its own split positions (:func:`split_positions`):
    null where the name has neither. One Arrow slice per distinct position (few, for names)."""
    names = _as_string(names, part)
    cut = np.where(space >= 0, space, listed)
    begin = np.where(space >= 0, space + 1, listed)
    pos = cut if part == "surname" else begin
    out = pa.nulls(len(names), pa.string())
    for p in np.unique(pos[cut >= 0]).tolist():
        piece = (pc.utf8_slice_codeunits(names, 0, p) if part == "surname"
                 else pc.utf8_slice_codeunits(names, p))
        out = pc.if_else(pa.array((pos == p) & (cut >= 0)), piece, out)
    return out.combine_chunks() if isinstance(out, pa.ChunkedArray) else out


def split_names(names: pa.Array, surnames: pa.Array, part: str) -> pa.Array:
    """The ``part`` (``"surname"`` or ``"given"``) of each normalised name (spaces collapsed).

    Split at the first space; a name without one is split after the longest of ``surnames``
    (normalised alike) it starts with, leaving at least one character for the given name;
    a name without a space and without a listed surname gives null for both parts (no
    evidence of its own: the comparison then splits it as the other name of the pair is
    split, :func:`ikou.kernels.compare.coded_levels`). Vectorised over the distinct names."""
    names = _as_string(names, part)
    space, listed = split_positions(names, surnames)
    return _part_of(names, space, listed, part)


def normalize_side(cfg: MatchConfig, table: pa.Table, side: str,
                   normalizers: dict) -> dict[str, pa.Array]:
    """The compared columns of one side (``"left"``/``"right"``), normalised, by field name;
    a ``part`` field also gives its whole normalised name (``name + FULL_NAME``).

    Row by row: any slice of a table gives the slice of the whole table's result.
    """
    out = {}
    done: dict = {}  # (column, remove, options) → normalised column (shared by name parts)
    for f in cfg.fields:
        name = f.left if side == "left" else f.right
        key = (name, f.remove, f.options)
        if key not in done:
            col = _column(table, name, side)
            if f.remove is not None:
                col = pc.replace_substring_regex(_as_string(col, f.name), f.remove, "")
            opts = f.options
            if opts is not None:
                col = normalizers[opts](_as_string(col, f.name))
            done[key] = col
        col = done[key]
        if f.part is not None:
            skey = (key, "split")
            if skey not in done:
                done[skey] = split_positions(col, normalizers[("surnames", f.options)])
            out[f.name + FULL_NAME] = col
            col = _part_of(col, *done[skey], f.part)
        out[f.name] = col
    return out


def prepared_from(cfg: MatchConfig, left: dict[str, pa.Array],
                  right: dict[str, pa.Array]) -> Prepared:
    """A :class:`Prepared` from both sides' normalised columns (:func:`normalize_side`)."""
    n_left = len(next(iter(left.values()))) if left else 0
    n_right = len(next(iter(right.values()))) if right else 0
    prep = Prepared(n_left, n_right, dict(left), dict(right))
    coded: dict = {}  # one dictionary per pair of columns (a name's surname and given parts)
    for f in cfg.fields:
        a, b = left[f.name], right[f.name]
        if f.method in ("jaro_winkler", "levenshtein"):
            whole_a, whole_b = ((a, b) if f.part is None else
                                (left[f.name + FULL_NAME], right[f.name + FULL_NAME]))
            key = (id(whole_a), id(whole_b))
            if key not in coded:
                coded[key] = CodedStrings(_as_string(whole_a, f.name),
                                          _as_string(whole_b, f.name))
            strings = prep.strings[f.name] = coded[key]
            if f.part is not None and strings.space is None:
                strings.set_parts(*_dictionary_splits(strings, a, b, f.part))
        elif f.method == "exact":
            prep.codes[f.name] = exact_codes(_blank_to_null(a), _blank_to_null(b))
        elif f.method == "date":
            prep.dates[f.name] = (DateColumn(a), DateColumn(b))
        if f.tf:
            prep.tf[f.name] = term_frequencies(a)
    return prep


def _dictionary_splits(strings: CodedStrings, part_left: pa.Array, part_right: pa.Array,
                       part: str) -> tuple[np.ndarray, np.ndarray]:
    """Per dictionary name: its space and listed-surname positions (:func:`split_positions`),
    the latter read off the rows' own parts (no surname list needed here)."""
    values = strings.values
    spaced = pc.extract_regex(values, _SPACED)
    has_space = pc.fill_null(pc.is_valid(spaced), False).to_numpy(zero_copy_only=False)
    sur_len = pc.utf8_length(pc.struct_field(spaced, "s")).fill_null(-1).to_numpy(
        zero_copy_only=False)
    space = np.where(has_space, sur_len, -1).astype(np.int32)
    listed = np.full(len(values), -1, np.int32)
    length = pc.utf8_length(values).to_numpy(zero_copy_only=False).astype(np.int64)
    for codes, own in ((strings.codes_left, part_left), (strings.codes_right, part_right)):
        own_len = pc.utf8_length(_as_string(own, part)).fill_null(-1).to_numpy(
            zero_copy_only=False).astype(np.int64)
        ok = (codes >= 0) & (own_len >= 0)
        ok[ok] = ~has_space[codes[ok]]
        c = codes[ok]
        listed[c] = own_len[ok] if part == "surname" else length[c] - own_len[ok]
    return space, listed


def term_frequencies(values: pa.Array) -> np.ndarray:
    """Per row, the share of the (non-blank) rows holding its value (NaN for null/blank):
    the chance that a random record agrees with it, as splink's term frequencies."""
    codes, _ = exact_codes(_blank_to_null(values), values.slice(0, 0))
    valid = codes >= 0
    out = np.full(len(codes), np.nan)
    if valid.any():
        counts = np.bincount(codes[valid])
        out[valid] = counts[codes[valid]] / valid.sum()
    return out


def prepare(cfg: MatchConfig, left: pa.Table, right: pa.Table,
            variants: dict[int, int]) -> Prepared:
    """Normalise the compared columns of both tables (``variants``: the variant map)."""
    normalizers = make_normalizers(cfg, variants)
    # the two sides on two threads (the normalisation kernel and Arrow release the GIL)
    with ThreadPoolExecutor(2) as pool:
        sides = list(pool.map(lambda ts: normalize_side(cfg, ts[0], ts[1], normalizers),
                              [(left, "left"), (right, "right")]))
    return prepared_from(cfg, *sides)


def _as_string(arr: pa.Array, name: str) -> pa.Array:
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        try:
            arr = arr.cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise MatchConfigError(f"field {name}: cannot use {arr.type} as text") from None
    return arr


def _blank_to_null(arr: pa.Array) -> pa.Array:
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        return pc.if_else(pc.equal(arr, ""), pa.scalar(None, arr.type), arr)
    return arr


def part_array(part: KeyPart, cols: dict[str, pa.Array], table: pa.Table, side: str):
    """One side's values of a blocking part (normalised field or raw column, prefix applied;
    blank → null). ``cols``: that side's normalised columns."""
    if part.field is not None:
        a = cols[part.field]
    else:
        a = _column(table, part.left if side == "left" else part.right, side)
    if part.prefix is not None:
        a = pc.utf8_slice_codeunits(_as_string(a, "blocking"), 0, part.prefix)
    return _blank_to_null(a)


def _part_arrays(part: KeyPart, prep: Prepared, left: pa.Table, right: pa.Table):
    return (part_array(part, prep.left, left, "left"),
            part_array(part, prep.right, right, "right"))


def _rule_codes(rule, prep: Prepared, left: pa.Table, right: pa.Table):
    """One int64 code per row and side for a rule's combined key (-1: a part is null/blank)."""
    lc = rc = None
    for part in rule:
        a, b = exact_codes(*_part_arrays(part, prep, left, right))
        if lc is None:
            lc, rc = a, b
            continue
        width = int(max(a.max(initial=-1), b.max(initial=-1))) + 1
        bad_l, bad_r = (lc < 0) | (a < 0), (rc < 0) | (b < 0)
        span = (int(max(lc.max(initial=-1), rc.max(initial=-1))) + 1) * width
        lc, rc = lc * width + a, rc * width + b
        if span > 4 * (len(lc) + len(rc)) + 1024:  # compact before the next part
            _, inv = np.unique(np.concatenate([lc, rc]), return_inverse=True)
            inv = inv.astype(np.int64)
            lc, rc = inv[: len(lc)], inv[len(lc):]
        lc[bad_l] = -1
        rc[bad_r] = -1
    return lc, rc


@dataclass
class _RuleJoin:
    """A blocking rule's equi-join, planned: pairs of any subset of right rows on demand."""

    rc: np.ndarray  # right codes (-1: no key)
    order_l: np.ndarray  # left rows sorted by code
    start_l: np.ndarray  # per code: its first position in order_l
    reps: np.ndarray  # per right row: its number of pairs (0 in a block over the cap)
    skipped: int

    @classmethod
    def plan(cls, lc: np.ndarray, rc: np.ndarray, max_block_pairs: int) -> _RuleJoin:
        k = int(max(lc.max(initial=-1), rc.max(initial=-1))) + 1
        if k == 0:
            e = np.zeros(0, np.int64)
            return cls(rc, e, e, np.zeros(len(rc), np.int64), 0)
        count_l = np.bincount(lc[lc >= 0], minlength=k)
        count_r = np.bincount(rc[rc >= 0], minlength=k)
        size = count_l.astype(np.int64) * count_r
        too_big = size > max_block_pairs
        skipped = int(size[too_big].sum())
        order_l = np.argsort(lc, kind="stable")
        start_l = np.concatenate([[0], np.cumsum(count_l)])[:-1] + int((lc < 0).sum())
        code = np.maximum(rc, 0)
        reps = np.where((rc >= 0) & ~too_big[code], count_l[code], 0).astype(np.int64)
        return cls(rc, order_l, start_l, reps, skipped)

    def pairs(self, rows_r: np.ndarray):
        """(left rows, right rows) of the pairs of ``rows_r`` (ascending), sorted by (right,
        left)."""
        rows_r = rows_r[self.reps[rows_r] > 0]
        reps = self.reps[rows_r]
        ri = np.repeat(rows_r, reps)
        first = np.repeat(self.start_l[self.rc[rows_r]], reps)
        within = np.arange(len(ri), dtype=np.int64) - np.repeat(np.cumsum(reps) - reps, reps)
        li = self.order_l[first + within]
        return li.astype(np.int64, copy=False), ri.astype(np.int64, copy=False)


def _join_codes(lc: np.ndarray, rc: np.ndarray, max_block_pairs: int):
    """All (left, right) row pairs with equal non-negative codes; blocks over the cap skipped."""
    join = _RuleJoin.plan(lc, rc, max_block_pairs)
    li, ri = join.pairs(np.arange(len(rc), dtype=np.int64))
    return li, ri, join.skipped


BLOCK_CHUNK_PAIRS = 4_000_000  # per-rule pairs made at once (bounds the memory of blocking)


@dataclass
class Blocks:
    li: np.ndarray  # candidate pairs (union over rules), sorted by (right, left)
    ri: np.ndarray
    per_rule: list[int]  # pairs per rule
    skipped_pairs: int
    levels: np.ndarray | None = None  # comparison levels of (li, ri), once computed
    n_pairs: int | None = None  # candidate pairs in all (with those not kept: ``skip_right``)

    @property
    def candidate_pairs(self) -> int:
        return len(self.li) if self.n_pairs is None else self.n_pairs


def block(cfg: MatchConfig, prep: Prepared, left: pa.Table, right: pa.Table,
          skip_right: np.ndarray | None = None,
          chunk_pairs: int = BLOCK_CHUNK_PAIRS) -> Blocks:
    """Candidate pairs: the union over blocking rules of pairs that agree on the rule's key.

    Made for a range of right rows at a time (about ``chunk_pairs`` pairs per rule): the union
    of a right record's pairs is within its range, so the result does not depend on the ranges.
    ``skip_right`` (bool per right row): pairs of those rows are counted (``n_pairs``) but not
    kept — e.g. right records already linked by key, never scored."""
    joins = [_RuleJoin.plan(*_rule_codes(rule, prep, left, right), cfg.max_block_pairs)
             for rule in cfg.blocking]
    skipped = sum(j.skipped for j in joins)
    n_l, n_r = max(prep.n_left, 1), prep.n_right
    per_rule = [int(j.reps.sum()) for j in joins]
    kept, n_pairs = [], 0
    if joins and sum(per_rule):
        cum = np.cumsum(np.sum([j.reps for j in joins], axis=0))
        lo, done = 0, 0
        while lo < n_r:
            hi = min(max(int(np.searchsorted(cum, done + max(chunk_pairs, 1), side="right")),
                         lo + 1), n_r)
            rows = np.arange(lo, hi, dtype=np.int64)
            keys = np.concatenate([ri * n_l + li for li, ri in (j.pairs(rows) for j in joins)])
            # each rule's pairs come sorted by (right, left) and unique: the union is a merge
            if len(joins) > 1 and len(keys):
                keys.sort(kind="stable")  # timsort: linear on the sorted runs
                keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]
            n_pairs += len(keys)
            if skip_right is not None and len(keys):
                keys = keys[~skip_right[keys // n_l]]
            kept.append(keys)
            done, lo = int(cum[hi - 1]), hi
    keys = np.concatenate(kept) if kept else np.zeros(0, np.int64)
    return Blocks(keys % n_l, keys // n_l, per_rule, skipped, n_pairs=n_pairs)


# --- comparison and the Fellegi–Sunter model --------------------------------------------------


COMPARE_CHUNK_PAIRS = 1 << 19  # pairs per task of the comparison threads


def compare_workers() -> int:
    """Threads comparing pairs (the kernels release the GIL): ``IKOU_MATCH_THREADS`` or the
    number of cores. The levels do not depend on it."""
    value = os.environ.get("IKOU_MATCH_THREADS", "")
    return max(1, int(value)) if value.strip() else max(1, os.cpu_count() or 1)


def comparison_levels(cfg: MatchConfig, prep: Prepared, li, ri,
                      workers: int | None = None) -> np.ndarray:
    """Comparison vectors: an int8 matrix (pairs × fields) of levels, -1 where a value is null.

    Ranges of ``COMPARE_CHUNK_PAIRS`` pairs are compared on ``workers`` threads (default
    :func:`compare_workers`), each range by the GIL-free kernels; every pair's levels depend on
    that pair alone, so the result does not depend on the threads."""
    li = np.ascontiguousarray(li, dtype=np.int64)
    ri = np.ascontiguousarray(ri, dtype=np.int64)
    out = np.empty((len(li), len(cfg.fields)), dtype=np.int8)

    def chunk(lo: int) -> None:
        hi = min(lo + COMPARE_CHUNK_PAIRS, len(li))
        a, b = li[lo:hi], ri[lo:hi]
        for j, f in enumerate(cfg.fields):
            if f.method in ("jaro_winkler", "levenshtein"):
                out[lo:hi, j] = coded_levels(prep.strings[f.name], a, b, f.method,
                                             f.thresholds, part=f.part)
            elif f.method == "exact":
                lc, rc = prep.codes[f.name]
                out[lo:hi, j] = exact_levels(lc, rc, a, b)
            else:
                ld, rd = prep.dates[f.name]
                out[lo:hi, j] = date_levels(ld, rd, a, b, fine=f.date_levels == "fine")

    starts = range(0, len(li), COMPARE_CHUNK_PAIRS)
    workers = compare_workers() if workers is None else workers
    if workers <= 1 or len(starts) <= 1:
        for lo in starts:
            chunk(lo)
    else:
        with ThreadPoolExecutor(min(workers, len(starts))) as pool:
            list(pool.map(chunk, starts))
    return out


@dataclass
class Model:
    """m and u per field and level (index = level), and the prior of a random pair matching."""

    fields: tuple[str, ...]
    m: list[np.ndarray]
    u: list[np.ndarray]
    prior: float
    notes: list[str] = field(default_factory=list)
    iterations: int | None = None  # EM iterations (all rules), None when EM did not run

    def weights(self) -> list[np.ndarray]:
        return [np.log2(m / u) for m, u in zip(self.m, self.u, strict=True)]

    @property
    def prior_weight(self) -> float:
        return math.log2(self.prior / (1.0 - self.prior))

    def to_dict(self) -> dict:
        return {
            "prior": self.prior,
            "fields": {
                name: {"m": m.round(6).tolist(), "u": u.round(6).tolist(),
                       "weight": np.log2(m / u).round(4).tolist()}
                for name, m, u in zip(self.fields, self.m, self.u, strict=True)
            },
            "em_iterations": self.iterations,
            "notes": list(self.notes),
        }


_FLOOR = 1e-6


def _normalise(p: np.ndarray) -> np.ndarray:
    p = np.maximum(p, _FLOOR)
    return p / p.sum()


def _initial_m(n: int) -> np.ndarray:
    return _normalise(4.0 ** np.arange(n))


DENSE_PATTERNS = 1 << 22  # at most this many possible comparison vectors: counted densely


def _radices(levels: np.ndarray) -> np.ndarray | None:
    """Per field, the number of codes its levels take (level + 1, null → 0): the mixed radix
    of :func:`pattern_codes`, or None when the vectors' code space is too large to count."""
    if levels.shape[1] == 0 or (len(levels) and levels.min() < LEVEL_NULL):
        return None
    radix = levels.max(axis=0).astype(np.int64) + 2 if len(levels) else np.ones(
        levels.shape[1], np.int64)
    size = 1
    for r in radix.tolist():
        size *= r
        if size > DENSE_PATTERNS:
            return None
    return radix


def pattern_codes(levels: np.ndarray, radix: np.ndarray) -> np.ndarray:
    """One int64 per comparison vector, ordered as the vectors are lexicographically."""
    code = np.zeros(len(levels), np.int64)
    for j, r in enumerate(radix.tolist()):
        code *= r
        code += levels[:, j] + 1
    return code


def _patterns(levels: np.ndarray, n_levels=None):
    """Unique comparison vectors (in lexicographic order) and their counts: a bincount of the
    vectors' codes (a sort when the code space is too large). ``n_levels``: per field its
    number of levels, when known (else read off the levels)."""
    if len(levels) == 0:
        return levels, np.zeros(0, np.int64)
    radix = (_radices(levels) if n_levels is None
             else np.array([n + 1 for n in n_levels], np.int64))
    if radix is not None and np.prod(radix.astype(float)) > DENSE_PATTERNS:
        radix = None
    if radix is None:
        return merge_patterns([(levels, np.ones(len(levels), np.int64))])
    counts = np.bincount(pattern_codes(levels, radix), minlength=int(np.prod(radix)))
    code = np.flatnonzero(counts)
    pat = np.empty((len(code), levels.shape[1]), np.int8)
    rest = code.copy()
    for j in range(levels.shape[1] - 1, -1, -1):
        pat[:, j] = rest % radix[j] - 1
        rest //= radix[j]
    return pat, counts[code].astype(np.int64)


def merge_patterns(parts) -> tuple[np.ndarray, np.ndarray]:
    """Patterns and counts of several sets (``(patterns, counts)`` each) added up, in
    lexicographic order (as :func:`_patterns`): the same whatever the sets and their order."""
    parts = [(p, c) for p, c in parts if len(p)]
    if not parts:
        return np.zeros((0, 0), np.int8), np.zeros(0, np.int64)
    pat = np.concatenate([p for p, _ in parts])
    counts = np.concatenate([c for _, c in parts]).astype(np.int64)
    order = np.lexsort(pat.T[::-1])
    pat, counts = pat[order], counts[order]
    new = np.concatenate([[True], np.any(pat[1:] != pat[:-1], axis=1)])
    starts = np.flatnonzero(new)
    return pat[starts], np.add.reduceat(counts, starts)


def _log_probs(pat: np.ndarray, probs: list[np.ndarray]) -> np.ndarray:
    total = np.zeros(len(pat))
    for j, p in enumerate(probs):
        lv = pat[:, j].astype(np.int64)
        total += np.where(lv >= 0, np.log(p[np.maximum(lv, 0)]), 0.0)
    return total


def _em(pat, counts, m, u, free_m, lam, max_iter, tol):
    """EM over comparison vectors (splink's expectation–maximisation), on the counts of the
    distinct vectors ``pat`` (:func:`_patterns`): each iteration is a pass over the patterns,
    never over the pairs.

    Updates m of the ``free_m`` fields, u of every field and the match share ``lam``. u here
    describes the non-matches *among the candidates* (blocking makes them agree more often than
    random pairs); the caller scores with the u of random pairs.
    """
    if len(pat) == 0:
        return m, u, lam, 0
    counts = counts.astype(np.float64)
    m = [x.copy() for x in m]
    u = [x.copy() for x in u]
    it = 0
    while it < max_iter:
        it += 1
        lm = math.log(lam) + _log_probs(pat, m)
        lu = math.log(1 - lam) + _log_probs(pat, u)
        g = 1.0 / (1.0 + np.exp(np.clip(lu - lm, -700, 700)))  # P(match | pattern)
        wm, wu = counts * g, counts * (1.0 - g)
        new_lam = float(np.clip(wm.sum() / counts.sum(), 1e-9, 1 - 1e-9))
        change = abs(new_lam - lam)
        for j in range(pat.shape[1]):
            lv = pat[:, j].astype(np.int64)
            ok = lv >= 0
            for probs, weights, update in ((m, wm, j in free_m), (u, wu, True)):
                if not update:
                    continue
                num = np.bincount(lv[ok], weights=weights[ok], minlength=len(probs[j]))
                if num.sum() > 0:
                    new = _normalise(num / num.sum())
                    change = max(change, float(np.abs(new - probs[j]).max()))
                    probs[j] = new
        lam = new_lam
        if change < tol:
            break
    return m, u, lam, it


MIN_KEY_PAIRS = 30


def _m_from_pairs(levels: np.ndarray, fields, m0):
    m = []
    for j, f in enumerate(fields):
        if f.m is not None:
            m.append(m0[j])
            continue
        lv = levels[:, j]
        counts = np.bincount(lv[lv >= 0].astype(np.int64), minlength=f.n_levels)
        m.append(_normalise((counts + 0.5) / (counts.sum() + 0.5 * f.n_levels)))
    return m


def model_mode(cfg: MatchConfig, n_key: int) -> str:
    """How m is found: ``fixed`` (given / no EM), ``keys`` (pairs linked by key) or ``em``."""
    if not cfg.em or all(f.m is not None for f in cfg.fields):
        return "fixed"
    if cfg.m_from == "keys" or (cfg.m_from == "auto" and n_key >= MIN_KEY_PAIRS):
        return "keys"
    return "em"


def random_pairs(cfg: MatchConfig, n_left: int, n_right: int):
    """``(rng, li, ri)``: the random pairs u is estimated from (``li``/``ri`` None when none are
    needed) and the generator, positioned after them."""
    rng = np.random.default_rng(cfg.seed)
    n_u = cfg.u_random_pairs if n_left and n_right else 0
    if n_u and any(f.u is None for f in cfg.fields):
        li = rng.integers(0, n_left, n_u, dtype=np.int64)
        ri = rng.integers(0, n_right, n_u, dtype=np.int64)
        return rng, li, ri
    return rng, None, None


def model_from_levels(cfg: MatchConfig, n_left: int, n_right: int, rand_levels, mode: str,
                      key_levels=None, candidate_levels=None, candidate_patterns=None) -> Model:
    """The model from comparison vectors: of the random pairs (u), of the pairs linked by key
    (``mode == "keys"``) or of the candidate pairs EM runs on (``mode == "em"``, all of
    them: their vectors, or ``candidate_patterns`` = their distinct vectors and counts, as
    :func:`merge_patterns` gives). Row order does not matter."""
    names = tuple(f.name for f in cfg.fields)
    notes: list[str] = []
    u = []
    for j, f in enumerate(cfg.fields):
        if f.u is not None:
            u.append(np.array(f.u))
        elif rand_levels is not None:
            lv = rand_levels[:, j]
            counts = np.bincount(lv[lv >= 0].astype(np.int64), minlength=f.n_levels)
            u.append(_normalise((counts + 0.5) / (counts.sum() + 0.5 * f.n_levels)))
        else:
            u.append(_normalise(4.0 ** -np.arange(f.n_levels)))
            notes.append(f"{f.name}: no random pairs, default u")
    m0 = [np.array(f.m) if f.m is not None else _initial_m(f.n_levels) for f in cfg.fields]
    expected = cfg.expected_match_rate * min(n_left, n_right)
    pairs_total = max(n_left * n_right, 1)
    prior = float(np.clip(expected / pairs_total, 1e-12, 0.5))
    if mode == "fixed":
        return Model(names, m0, u, prior, notes)
    if mode == "keys":
        n_key = 0 if key_levels is None else len(key_levels)
        if n_key == 0:
            notes.append("no pairs linked by key: m not estimated (default)")
            return Model(names, m0, u, prior, notes)
        model = Model(names, _m_from_pairs(key_levels, cfg.fields, m0), u, prior, notes)
        score, _ = _score(model, key_levels)
        keep = score >= _logit2(cfg.possible_probability)
        model.m = _m_from_pairs(key_levels[keep], cfg.fields, m0)
        notes.append(f"m from {int(keep.sum())} of {n_key} pairs linked by key")
        return model
    if candidate_patterns is None and candidate_levels is not None:
        candidate_patterns = _patterns(candidate_levels, [f.n_levels for f in cfg.fields])
    if candidate_patterns is None or int(candidate_patterns[1].sum()) == 0:
        notes.append("no candidate pairs: m not estimated (default)")
        return Model(names, m0, u, prior, notes)
    pat, counts = candidate_patterns
    n_pairs = int(counts.sum())
    free = [j for j, f in enumerate(cfg.fields) if f.m is None]
    lam0 = float(np.clip(min(n_left, n_right) / n_pairs, 1e-6, 0.5))
    per_rule = _rule_em(cfg, pat, counts, m0, u, free, notes)
    if per_rule is not None:
        m, it = per_rule
        return Model(names, m, u, prior, notes, it)
    m, _, lam, it = _em(pat, counts, m0, u, free, lam0, cfg.max_iterations, cfg.tolerance)
    notes.append(f"EM: {n_pairs} candidate pairs, {it} iterations, match share {lam:.4f}")
    return Model(names, m, u, prior, notes, it)


MIN_RULE_PAIRS = 50


def _rule_fields(cfg: MatchConfig, rule) -> list[int] | None:
    """The field indexes a blocking rule fixes (its pairs agree on them: top level), or None
    when a part is a raw column or a prefix (agreement not readable from the levels)."""
    index = {f.name: j for j, f in enumerate(cfg.fields)}
    out = []
    for part in rule:
        if part.field is None or part.prefix is not None:
            return None
        out.append(index[part.field])
    return out


def _rule_em(cfg: MatchConfig, pat: np.ndarray, counts: np.ndarray, m0, u, free, notes):
    """splink's estimation: EM on each blocking rule's pairs (the candidates at the top level of
    every field the rule is made of) with that rule's fields held fixed — they agree by
    construction, so they cannot tell matches from non-matches there — and each field's m the
    mean over the rules that left it free. None when a rule cannot be read from the levels,
    too few pairs, or a free field is left free by no rule (then EM runs on all candidates)."""
    rules = [_rule_fields(cfg, rule) for rule in cfg.blocking]
    if not rules or any(r is None for r in rules):
        return None
    estimates: dict[int, list[np.ndarray]] = {j: [] for j in free}
    total_it = 0
    for r, fixed in enumerate(rules):
        sel = np.ones(len(pat), bool)
        for j in fixed:
            sel &= pat[:, j] == cfg.fields[j].n_levels - 1
        n_sel = int(counts[sel].sum())
        rule_free = [j for j in free if j not in fixed]
        if n_sel < MIN_RULE_PAIRS or not rule_free:
            continue
        m, _, lam, it = _em(pat[sel], counts[sel], m0, u, rule_free, 0.5, cfg.max_iterations,
                            cfg.tolerance)
        total_it += it
        notes.append(f"EM rule {r + 1}: {n_sel} pairs, {it} iterations, match share {lam:.4f}")
        for j in rule_free:
            estimates[j].append(m[j])
    if any(not estimates[j] for j in free):
        notes[:] = [n for n in notes if not n.startswith("EM rule")]
        return None
    m = [_normalise(np.mean(estimates[j], axis=0)) if j in estimates else m0[j]
         for j in range(len(m0))]
    return m, total_it


def estimate_model(cfg: MatchConfig, prep: Prepared, blocks: Blocks,
                   key_pairs: tuple[np.ndarray, np.ndarray] | None = None) -> Model:
    """u from random pairs; m from the pairs linked by key, or by EM over the candidates.

    With ``m_from: keys`` (or ``auto`` and at least ``MIN_KEY_PAIRS`` key pairs) m is the level
    distribution of the pairs whose keys agree — labelled data, as splink's
    ``estimate_m_from_label_column`` — re-estimated once without the key pairs the first model
    rejects (keys typed wrongly). Otherwise EM:

    As in splink, u comes from random pairs, which are almost all non-matches. m comes from
    EM over the union of the blocking rules' candidates, where matches are frequent; EM also
    fits a u for the non-matching candidates, so that agreement caused by blocking is not
    mistaken for evidence of a match. Scores use m from EM and u from random pairs. EM runs
    on the unique comparison patterns of *all* candidates (as the Beam path, which gathers
    them per shard), so both paths estimate the same model; ``em_max_pairs`` is accepted in
    configurations but no longer samples.
    (:func:`model_from_levels` does the arithmetic; the Beam path feeds it the same vectors.)
    """
    _, ul, ur = random_pairs(cfg, prep.n_left, prep.n_right)
    rand_levels = None if ul is None else comparison_levels(cfg, prep, ul, ur)
    n_key = 0 if key_pairs is None else len(key_pairs[0])
    mode = model_mode(cfg, n_key)
    key_levels = candidate_levels = None
    if mode == "keys" and n_key:
        key_levels = comparison_levels(cfg, prep, *key_pairs)
    elif mode == "em" and len(blocks.li):
        candidate_levels = (comparison_levels(cfg, prep, blocks.li, blocks.ri)
                            if blocks.levels is None else blocks.levels)
    return model_from_levels(cfg, prep.n_left, prep.n_right, rand_levels, mode, key_levels,
                             candidate_levels)


# --- linking ---------------------------------------------------------------------------------


@dataclass
class MatchResult:
    links: pa.Table
    review: pa.Table
    unmatched: pa.Table
    counts: dict
    model: Model


def _field_weights(model: Model, levels: np.ndarray) -> np.ndarray:
    """Per pair and field, the weight log2(m/u) of its level (0 for a null)."""
    per_field = np.zeros(levels.shape, dtype=np.float64)
    for j, wj in enumerate(model.weights()):
        table = np.append(wj, 0.0)  # index -1 (null) reads the appended 0
        per_field[:, j] = table[levels[:, j]]
    return per_field


def _score(model: Model, levels: np.ndarray):
    """Match weight of each pair: log2 prior odds + the sum of the field weights. Read from a
    table of the weights of every possible comparison vector (one lookup per pair) when there
    are few enough of them; the same sums in the same order either way."""
    weights = [np.append(wj, 0.0) for wj in model.weights()]  # index -1 (null) reads 0
    radix = np.array([len(wj) for wj in weights], np.int64)  # levels -1 .. n-1
    if len(levels) > 4096 and int(np.prod(radix.astype(float))) <= DENSE_PATTERNS:
        grid = np.indices(tuple(radix.tolist())).reshape(len(radix), -1).T - 1
        table = np.full(len(grid), model.prior_weight)
        for j, wj in enumerate(weights):
            table += wj[grid[:, j]]
        return table[pattern_codes(levels, radix)], None
    total = np.full(len(levels), model.prior_weight)
    for j, wj in enumerate(weights):
        total += wj[levels[:, j]]
    return total, None


def _logit2(p: float) -> float:
    return math.log2(p / (1.0 - p))


def tf_weights(cfg: MatchConfig, model: Model, tf: dict[str, np.ndarray] | None,
               levels: np.ndarray, li: np.ndarray) -> np.ndarray | None:
    """Term-frequency adjustments (pairs × fields, bits; None when no field asks for them):
    for a pair at a ``tf`` field's exact level, ``log2(u_exact / tf(value))`` where ``tf`` is
    the share of left records holding the left record's value (at least ``tf_minimum``), as
    splink's term-frequency adjustments: agreeing on a common surname or a shared address is
    weaker evidence than agreeing on a rare one. Vectorised over the pairs."""
    if not tf or not any(f.tf for f in cfg.fields):
        return None
    out = np.zeros(levels.shape, dtype=np.float64)
    for j, f in enumerate(cfg.fields):
        if not f.tf or f.name not in tf:
            continue
        top = f.n_levels - 1
        at_top = levels[:, j] == top
        freq = tf[f.name][li[at_top]]
        floor = max(f.tf_minimum, 1e-12)
        freq = np.where(np.isnan(freq), model.u[j][top], np.maximum(freq, floor))
        out[at_top, j] = np.log2(model.u[j][top] / freq)
    return out


def link_tf_weights(cfg: MatchConfig, model: Model, tf, d) -> np.ndarray | None:
    """The term-frequency adjustments of the links in ``d`` (0 for links by key, which are
    checked without them), for :func:`links_table`."""
    adj = tf_weights(cfg, model, tf, d.levels, d.left)
    if adj is not None:
        adj[d.method == 0] = 0.0
    return adj


def left_term_frequencies(cfg: MatchConfig, left: pa.Table, normalizers: dict) -> dict:
    """Per ``tf`` field, the term frequencies of the left table's (normalised) values
    (:attr:`Prepared.tf`): what the sharded Beam path computes once, before sharding."""
    fields = tuple(f for f in cfg.fields if f.tf)
    if not fields:
        return {}
    cols = normalize_side(replace(cfg, fields=fields), left, "left", normalizers)
    return {f.name: term_frequencies(cols[f.name]) for f in fields}


def _scores(cfg: MatchConfig, model: Model, levels: np.ndarray, li: np.ndarray,
            tf: dict[str, np.ndarray] | None) -> np.ndarray:
    score, _ = _score(model, levels)
    if not tf:
        return score
    for j, f in enumerate(cfg.fields):
        if not f.tf or f.name not in tf:
            continue
        top = f.n_levels - 1
        u_top = model.u[j][top]
        freq = tf[f.name]
        per_row = np.where(np.isnan(freq), 0.0,
                           np.log2(u_top / np.maximum(np.nan_to_num(freq, nan=1.0),
                                                      max(f.tf_minimum, 1e-12))))
        at_top = levels[:, j] == top
        score[at_top] += per_row[li[at_top]]
    return score


def side_ids(table: pa.Table, column: str | None, rows: np.ndarray, side: str) -> pa.Array:
    """The ids of ``rows`` (the ``column`` values, or the row numbers when no id column)."""
    if column is None:
        return pa.array(rows, pa.int64())
    return _column(table, column, side).take(pa.array(rows, pa.int64()))


def _best_per_run(ri: np.ndarray, score: np.ndarray):
    """For each run of equal ``ri`` (sorted): index of the best score (first on ties), the run's
    right row, the best score, the runner-up score (-inf when the run has one pair) and the
    runner-up's index (the best pair other than the best; first on ties; -1 when none)."""
    if len(ri) == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0), np.zeros(0), empty
    change = ri[1:] != ri[:-1]
    starts = np.flatnonzero(np.concatenate([[True], change]))
    lengths = np.diff(np.append(starts, len(ri)))
    top = np.maximum.reduceat(score, starts)
    big = len(ri)
    idx = np.arange(big, dtype=np.int64)
    best = np.minimum.reduceat(np.where(score == np.repeat(top, lengths), idx, big), starts)
    rest = score.copy()
    rest[best] = -np.inf
    runner = np.maximum.reduceat(rest, starts)
    pick = (rest == np.repeat(runner, lengths)) & (rest > -np.inf)
    second = np.minimum.reduceat(np.where(pick, idx, big), starts)
    second = np.where(second < big, second, -1).astype(np.int64)
    return best, ri[starts], top, runner, second


def key_pairs(cfg: MatchConfig, left: pa.Table, right: pa.Table):
    """Pairs whose keys agree: right rows whose key names exactly one left row.

    Returns ``(left rows, right rows, number of right keys naming several left rows)``.
    """
    key_l = np.zeros(0, np.int64)
    key_r = np.zeros(0, np.int64)
    key_ambiguous = 0
    if cfg.left_key is not None:
        lk, rk = exact_codes(_blank_to_null(_column(left, cfg.left_key, "left")),
                             _blank_to_null(_column(right, cfg.right_key, "right")))
        k = int(max(lk.max(initial=-1), rk.max(initial=-1))) + 1
        count_l = np.bincount(lk[lk >= 0], minlength=k)
        row_of = np.full(k, -1, np.int64)
        row_of[lk[lk >= 0]] = np.nonzero(lk >= 0)[0]
        has = rk >= 0
        unique = has & (count_l[np.maximum(rk, 0)] == 1)
        key_ambiguous = int((has & (count_l[np.maximum(rk, 0)] > 1)).sum())
        key_r = np.nonzero(unique)[0].astype(np.int64)
        key_l = row_of[rk[key_r]]
    return key_l, key_r, key_ambiguous


@dataclass
class Decisions:
    """The links of some right records (aligned arrays, in no particular order) and the right
    records left without one. :func:`decide` makes them; :meth:`concat` joins disjoint sets of
    right records (shards), :func:`links_table` / :func:`unmatched_table` turn them into tables."""

    right: np.ndarray  # int64 right rows
    left: np.ndarray  # int64 left rows
    levels: np.ndarray  # int8, pairs × fields
    score: np.ndarray  # float64 match weight
    method: np.ndarray  # int8: 0 key, 1 fuzzy
    decision: np.ndarray  # int8: 0 match, 1 possible
    ambiguous: np.ndarray  # bool
    unmatched: np.ndarray  # int64 right rows without a link
    unmatched_best: np.ndarray  # float64: their best candidate's score, NaN when none
    key_rejected: int = 0
    runner: np.ndarray | None = None  # int64 left row of the runner-up candidate, -1 none
    runner_score: np.ndarray | None = None  # float64 its match weight, NaN none

    @classmethod
    def concat(cls, parts: list[Decisions], n_fields: int) -> Decisions:
        if not parts:
            e = np.zeros(0, np.int64)
            return cls(e, e, np.zeros((0, n_fields), np.int8), np.zeros(0), e.astype(np.int8),
                       e.astype(np.int8), e.astype(bool), e, np.zeros(0), 0, e, np.zeros(0))
        cat = {name: np.concatenate([getattr(p, name) for p in parts])
               for name in ("right", "left", "levels", "score", "method", "decision",
                            "ambiguous", "unmatched", "unmatched_best", "runner",
                            "runner_score")}
        return cls(**cat, key_rejected=sum(p.key_rejected for p in parts))

    def counts(self) -> dict:
        n_match = int((self.decision == 0).sum())
        return {
            "key_links": int((self.method == 0).sum()),
            "key_rejected": int(self.key_rejected),
            "match": n_match,
            "possible": int(len(self.decision) - n_match),
            "ambiguous": int(self.ambiguous.sum()),
            "unmatched": int(len(self.unmatched)),
        }


def _positions(right_rows: np.ndarray):
    """A function giving the positions of rows in the sorted ``right_rows`` (an offset when
    they are a range, as in one process; a binary search otherwise)."""
    if len(right_rows) and int(right_rows[-1]) - int(right_rows[0]) + 1 == len(right_rows):
        first = int(right_rows[0])
        return lambda rows: np.asarray(rows, np.int64) - first
    return lambda rows: np.searchsorted(right_rows, rows)


def decide(cfg: MatchConfig, model: Model, right_rows: np.ndarray,
           key_l: np.ndarray, key_r: np.ndarray, key_levels: np.ndarray,
           li: np.ndarray, ri: np.ndarray, levels, tf=None) -> Decisions:
    """Link the right records ``right_rows`` (sorted; all rows of ``key_r`` and ``ri`` are
    among them): exact key linkage first — a key pair whose score is not below the ``possible``
    threshold links its right record — then, for the other right records, the best fuzzy
    candidate. ``li``/``ri``: the candidate pairs, sorted by (right, left) and unique;
    ``levels``: their comparison vectors, or a function ``levels(li, ri)`` called only for the
    candidates of right records not linked by key. ``tf``: the left rows' term frequencies
    of the ``tf`` fields (:attr:`Prepared.tf`).

    A fuzzy best candidate at or above ``match`` is a ``match`` unless the runner-up's weight
    is within ``cfg.margin`` bits of it (ambiguous → ``possible``), or a ``required`` field
    does not speak for it: its level's weight is not positive (→ ``possible``: agreement
    elsewhere cannot make up for a disagreement there; a missing value is no evidence either
    way). Each link records its runner-up and weight. With ``cfg.one_to_one`` the right
    records' links are then checked against each other (:func:`contest`) once all are made."""
    w_match = _logit2(cfg.match_probability)
    w_possible = _logit2(cfg.possible_probability)
    n_r = len(right_rows)
    key_score, _ = _score(model, key_levels)  # key pairs: checked without tf adjustments
    ok = key_score >= w_possible
    key_rejected = int((~ok).sum())
    key_l, key_r, key_levels, key_score = key_l[ok], key_r[ok], key_levels[ok], key_score[ok]
    resolved = np.zeros(n_r, bool)
    pos = _positions(right_rows)
    resolved[pos(key_r)] = True

    # fuzzy linkage for the rest: best candidate per right record
    keep = ~resolved[pos(ri)]
    if not keep.all():
        li, ri = li[keep], ri[keep]
        levels = levels if callable(levels) else levels[keep]
    levels = levels(li, ri) if callable(levels) else levels
    score = _scores(cfg, model, levels, li, tf)
    # Pairs are sorted by (right, left): per right record (a run), the best score (ties: the
    # lowest left row) and the runner-up, by segment reductions instead of a sort.
    best, group_r, top, runner, second = _best_per_run(ri, score)
    keep_best = top >= w_possible
    best, b_top, b_runner, second = best[keep_best], top[keep_best], runner[keep_best], \
        second[keep_best]
    b_li, b_ri, b_lv, b_sc = li[best], ri[best], levels[best], b_top
    ambiguous = (b_sc >= w_match) & (b_sc - b_runner < cfg.margin)
    blocked = np.zeros(len(b_sc), bool)
    for j, (f, wj) in enumerate(zip(cfg.fields, model.weights(), strict=True)):
        if f.required:  # a level that speaks against a match, however weakly (null: strict)
            blocked |= ~np.append(wj > 0, f.required != "strict")[b_lv[:, j]]
    decision_fuzzy = np.where((b_sc >= w_match) & ~ambiguous & ~blocked, 0, 1).astype(np.int8)
    r_left = np.where(second >= 0, li[np.maximum(second, 0)], -1).astype(np.int64)
    r_score = np.where(second >= 0, b_runner, np.nan)

    all_r = np.concatenate([key_r, b_ri])
    linked = np.zeros(n_r, bool)
    linked[pos(all_r)] = True
    best_any = np.full(n_r, np.nan)
    best_any[pos(group_r)] = top
    return Decisions(
        right=all_r,
        left=np.concatenate([key_l, b_li]),
        levels=np.concatenate([key_levels, b_lv]),
        score=np.concatenate([key_score, b_sc]),
        method=np.concatenate([np.zeros(len(key_r), np.int8), np.ones(len(b_ri), np.int8)]),
        decision=np.concatenate([np.zeros(len(key_r), np.int8), decision_fuzzy]),
        ambiguous=np.concatenate([np.zeros(len(key_r), bool), ambiguous]),
        unmatched=np.asarray(right_rows, np.int64)[~linked],
        unmatched_best=best_any[~linked],
        key_rejected=key_rejected,
        runner=np.concatenate([np.full(len(key_r), -1, np.int64), r_left]),
        runner_score=np.concatenate([np.full(len(key_r), np.nan), r_score]),
    )


def contest(cfg: MatchConfig, d: Decisions) -> Decisions:
    """With ``cfg.one_to_one``: a fuzzy ``match`` whose left record another ``match`` of ``d``
    also takes, and whose weight is not ``cfg.margin`` bits above every other such claim,
    becomes ``possible`` (``ambiguous`` stays about its own runner-up). A 住登外 namesake of a resident whose birth date is
    missing agrees with that resident as well as the resident's own tax record does: neither
    is a ``match``. Depends only on the set of links (any shard order gives the same)."""
    if not cfg.one_to_one or len(d.left) == 0:
        return d
    claim = np.flatnonzero(d.decision == 0)
    order = claim[np.lexsort((d.right[claim], d.left[claim]))]
    lefts, scores = d.left[order], d.score[order]
    new = np.concatenate([[True], lefts[1:] != lefts[:-1]])
    starts = np.flatnonzero(new)
    size = np.diff(np.append(starts, len(order)))
    many = np.repeat(size > 1, size)
    if not many.any():
        return d
    # per claim, the best other claim on its left record: the group's best, or its second
    top = np.maximum.reduceat(scores, starts)
    group = np.repeat(np.arange(len(starts)), size)
    first = np.minimum.reduceat(np.where(scores == top[group], np.arange(len(order)),
                                         len(order)), starts)
    rest = scores.copy()
    rest[first] = -np.inf
    second = np.maximum.reduceat(rest, starts)
    other = np.where(np.arange(len(order)) == first[group], second[group], top[group])
    lose = many & (d.method[order] == 1) & (scores - other < cfg.margin)
    decision = d.decision.copy()
    decision[order[lose]] = 1
    return replace(d, decision=decision)


def links_table(cfg: MatchConfig, model: Model, d: Decisions, right_ids: pa.Array,
                left_ids: pa.Array, runner_ids: pa.Array | None = None,
                tf: np.ndarray | None = None) -> pa.Table:
    """``links``: one row per linked right record, sorted by right row; ``right_ids`` /
    ``left_ids`` / ``runner_ids`` are aligned with ``d.right`` / ``d.left`` / ``d.runner``
    (``runner_ids`` of rows without a runner-up are ignored); ``tf``: the term-frequency
    adjustments of the links (:func:`tf_weights`, aligned with ``d.left``), added to the
    fields' weights.

    Beside the ids, decision and weights: ``runner_up_row`` / ``runner_up_id`` /
    ``runner_up_score`` (the best other candidate; null when there was none or the link is
    by key) and ``runner_up_gap`` (the link's weight minus the runner-up's), so that a reviewer
    sees why a link was or was not ambiguous (``cfg.margin``)."""
    order = np.argsort(d.right, kind="stable")
    take = pa.array(order, pa.int64())
    lv_all = d.levels[order]
    sc = d.score[order]
    all_fw = _field_weights(model, lv_all)
    if tf is not None:
        all_fw = all_fw + tf[order]
    runner = (np.full(len(d.right), -1, np.int64) if d.runner is None else d.runner)[order]
    r_score = (np.full(len(d.right), np.nan) if d.runner_score is None
               else d.runner_score)[order]
    none = runner < 0
    if runner_ids is None:
        runner_ids = pa.nulls(len(d.right), left_ids.type)
    r_ids = runner_ids.take(take)
    r_ids = pc.if_else(pa.array(none), pa.scalar(None, r_ids.type), r_ids)
    cols = {
        "right_row": pa.array(d.right[order], pa.int64()),
        "left_row": pa.array(d.left[order], pa.int64()),
        "right_id": right_ids.take(take),
        "left_id": left_ids.take(take),
        "method": pa.DictionaryArray.from_arrays(d.method[order], pa.array(["key", "fuzzy"])),
        "decision": pa.DictionaryArray.from_arrays(d.decision[order],
                                                   pa.array(["match", "possible"])),
        "ambiguous": pa.array(d.ambiguous[order]),
        "score": pa.array(sc, pa.float64()),
        "probability": pa.array(1.0 / (1.0 + np.exp2(-np.clip(sc, -1000, 1000)))),
        "runner_up_row": pa.array(runner, pa.int64(), mask=none),
        "runner_up_id": r_ids,
        "runner_up_score": pa.array(r_score, pa.float64(), mask=none),
        "runner_up_gap": pa.array(sc - r_score, pa.float64(), mask=none),
    }
    for j, f in enumerate(cfg.fields):
        lv = lv_all[:, j]
        cols[f"level_{f.name}"] = pa.array(lv, pa.int8(), mask=lv == LEVEL_NULL)
        cols[f"weight_{f.name}"] = pa.array(all_fw[:, j], pa.float64())
    links = pa.table(cols)
    return links.replace_schema_metadata({"ikou.match.name": cfg.name})


def review_table(links: pa.Table) -> pa.Table:
    """``review``: the ``possible`` links, for a person to review."""
    return links.filter(pc.equal(links["decision"].combine_chunks().dictionary_decode(),
                                 "possible"))


def unmatched_table(d: Decisions, right_ids: pa.Array) -> pa.Table:
    """``unmatched``: right records without a link, sorted; ``right_ids`` aligned with
    ``d.unmatched``."""
    order = np.argsort(d.unmatched, kind="stable")
    best = d.unmatched_best[order]
    return pa.table({
        "right_row": pa.array(d.unmatched[order], pa.int64()),
        "right_id": right_ids.take(pa.array(order, pa.int64())),
        "best_score": pa.array(best, pa.float64(), mask=np.isnan(best)),
    })


def _no_blocks() -> Blocks:
    e = np.zeros(0, np.int64)
    return Blocks(e, e, [], 0, n_pairs=0)


def link(cfg: MatchConfig, left: pa.Table, right: pa.Table, variants: dict[int, int],
         model: Model | None = None) -> MatchResult:
    """Link each right record to at most one left record, in this process (``variants``: the
    variant map; ``ikou.pipeline.config.matching.link`` loads the config's tables)."""
    prep = prepare(cfg, left, right, variants)
    # 1. exact key linkage (pairs whose keys agree), checked by the model below
    key_l, key_r, key_ambiguous = key_pairs(cfg, left, right)
    if len(key_r) == 0 or (model is None and model_mode(cfg, len(key_r)) == "em"):
        # every candidate is scored below (no key pairs) or feeds EM: compare them once
        blocks = block(cfg, prep, left, right)
        blocks.levels = comparison_levels(cfg, prep, blocks.li, blocks.ri)
        if model is None:
            model = estimate_model(cfg, prep, blocks, (key_l, key_r))
        key_levels = comparison_levels(cfg, prep, key_l, key_r)
    else:
        # m from the key pairs (or given): the candidates of right records the key pairs link
        # (as decide does: score not below `possible`) are counted, never kept or scored
        if model is None:
            model = estimate_model(cfg, prep, _no_blocks(), (key_l, key_r))
        key_levels = comparison_levels(cfg, prep, key_l, key_r)
        linked = np.zeros(prep.n_right, bool)
        linked[key_r[_score(model, key_levels)[0] >= _logit2(cfg.possible_probability)]] = True
        blocks = block(cfg, prep, left, right, skip_right=linked)
    # 2. fuzzy linkage for the rest
    levels = blocks.levels
    if levels is None:
        def levels(li, ri):
            return comparison_levels(cfg, prep, li, ri)
    d = contest(cfg, decide(cfg, model, np.arange(prep.n_right, dtype=np.int64), key_l, key_r,
                            key_levels, blocks.li, blocks.ri, levels, prep.tf))
    links = links_table(cfg, model, d, side_ids(right, cfg.right_id, d.right, "right"),
                        side_ids(left, cfg.left_id, d.left, "left"),
                        side_ids(left, cfg.left_id, np.maximum(d.runner, 0), "left"),
                        link_tf_weights(cfg, model, prep.tf, d))
    unmatched = unmatched_table(d, side_ids(right, cfg.right_id, d.unmatched, "right"))
    counts = {"left_records": prep.n_left, "right_records": prep.n_right,
              "key_ambiguous": key_ambiguous, "candidate_pairs": int(blocks.candidate_pairs),
              "skipped_block_pairs": blocks.skipped_pairs, **d.counts()}
    return MatchResult(links, review_table(links), unmatched, order_counts(counts), model)


COUNT_ORDER = ("left_records", "right_records", "key_links", "key_rejected", "key_ambiguous",
               "candidate_pairs", "skipped_block_pairs", "match", "possible", "ambiguous",
               "unmatched")


def order_counts(counts: dict) -> dict:
    """The counts in their documented order."""
    return {k: counts[k] for k in COUNT_ORDER}


def write_outputs(result: MatchResult, folder: str | Path) -> dict:
    """Write ``links.arrow``, ``review.arrow`` and ``unmatched.arrow`` (Arrow IPC files) into
    ``folder``; returns a summary for a manifest (counts, model, file names)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, table in (("links", result.links), ("review", result.review),
                        ("unmatched", result.unmatched)):
        path = folder / f"{name}.arrow"
        write_arrow(table, path)
        files[name] = {"file": path.name, "rows": table.num_rows}
    return {"counts": dict(result.counts), "model": result.model.to_dict(), "files": files}


def write_arrow(table: pa.Table, path: str | Path) -> None:
    """Write ``table`` as an Arrow IPC file (the bytes depend only on the table)."""
    arrowio.write_file(str(path), table)
