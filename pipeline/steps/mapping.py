"""Applying a mapping: decoded legacy rows → 中間標準レイアウト rows, per block, in ``pyarrow.compute``
on whole columns (:func:`apply_mapping`), and :class:`MappingStep`, the mapper the decoding
DoFn calls. A row is rejected only when a value cannot be converted — an unknown legacy code
(``MAPPING_UNKNOWN_CODE``), a non-integer for an int item (``MAPPING_NOT_INTEGER``) — and its
reasons are structured (field, code, message), the message naming the item and the legacy field,
plus the offending value for code lookups only.
"""

from __future__ import annotations

import unicodedata
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ikou.pipeline.config.mapping import _TRIM, FULL_SPACE, Mapping, MappingError, Rule
from ikou.pipeline.config.standard import DATE_STATUSES, LINEAGE_FIELDS, status_type

__all__ = ["MAPPING_NOT_INTEGER", "MAPPING_UNKNOWN_CODE", "REJECT_SCHEMA", "MappingResult",
           "MappingStep", "apply_mapping", "widen_kana"]

MAPPING_UNKNOWN_CODE = "MAPPING_UNKNOWN_CODE"
MAPPING_NOT_INTEGER = "MAPPING_NOT_INTEGER"
REASONS_TYPE = pa.list_(pa.struct([("field", pa.string()), ("code", pa.string()),
                                   ("message", pa.string())]))
REJECT_SCHEMA = pa.schema([
    ("_row", pa.int64()), ("_source", pa.string()), ("_record", pa.int64()),
    ("_offset", pa.int64()), ("reason", pa.string()), ("reasons", REASONS_TYPE),
])



class MappingResult(NamedTuple):
    table: pa.Table      # standard rows (accepted)
    rejected: pa.Table   # REJECT_SCHEMA: input row, lineage, reasons joined with "; "


# ----------------------------------------------------------------------------- loading


def _build_kana_table() -> list[tuple[str, str]]:
    """Replacement pairs half-width → full-width, voiced pairs (ｶﾞ → ガ) first."""
    singles = [chr(c) for c in range(0xFF61, 0xFFA0)]
    pairs: list[tuple[str, str]] = []
    for ch in singles:
        for mark in ("\uff9e", "\uff9f"):
            composed = unicodedata.normalize("NFKC", ch + mark)
            if len(composed) == 1:
                pairs.append((ch + mark, composed))
    pairs += [(ch, unicodedata.normalize("NFKC", ch)) for ch in singles]
    # A lone voiced mark becomes the spacing full-width mark, not a combining one.
    pairs = [(a, {"\u3099": "\u309b", "\u309a": "\u309c"}.get(b, b)) for a, b in pairs]
    pairs.append((" ", FULL_SPACE))
    return pairs


_KANA_PAIRS = _build_kana_table()
_HALF_KANA_RE = "[\uff61-\uff9f ]"


def _widen_by_pairs(arr: pa.Array) -> pa.Array:
    for half, full in _KANA_PAIRS:
        arr = pc.replace_substring(arr, half, full)
    return arr


def _build_byte_tables() -> tuple[np.ndarray, np.ndarray]:
    """(half-width U+FF61..U+FF9F → full-width code point, with ﾞ/ﾟ → combining U+3099/U+309A;
    katakana U+30A0..U+30FF × {U+3099, U+309A} → composed code point or 0)."""
    half = np.array([ord(unicodedata.normalize("NFKC", chr(c))) for c in range(0xFF61, 0xFFA0)],
                    dtype=np.int64)
    compose = np.zeros((0x60, 2), dtype=np.int64)
    for c in range(0x30A0, 0x3100):
        for k, mark in enumerate(("\u3099", "\u309a")):
            composed = unicodedata.normalize("NFC", chr(c) + mark)
            if len(composed) == 1:
                compose[c - 0x30A0, k] = ord(composed)
    return half, compose


_HALF_TO_FULL, _COMPOSE = _build_byte_tables()


def _cp3(data: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return (((data[pos].astype(np.int64) & 0x0F) << 12) | ((data[pos + 1].astype(np.int64) & 0x3F)
            << 6) | (data[pos + 2].astype(np.int64) & 0x3F))


def _put3(data: np.ndarray, pos: np.ndarray, cp: np.ndarray) -> None:
    data[pos] = 0xE0 | (cp >> 12)
    data[pos + 1] = 0x80 | ((cp >> 6) & 0x3F)
    data[pos + 2] = 0x80 | (cp & 0x3F)


def _widen_by_bytes(arr: pa.Array) -> pa.Array:
    """Vectorised widening on the UTF-8 bytes with numpy: every half-width kana and its
    full-width form are 3 bytes, so step 1 rewrites in place; step 2 merges a base kana with a
    following voiced mark (deleting 3 bytes) and gives lone marks their spacing form; offsets
    are then shifted by the bytes deleted before them."""
    arr = pc.replace_substring(arr, " ", FULL_SPACE)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    validity, offs_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offs_buf, dtype=np.int32, count=n + 1, offset=4 * arr.offset)
    data = np.frombuffer(data_buf, dtype=np.uint8)[offsets[0]:offsets[-1]].copy()
    offsets = (offsets - offsets[0]).astype(np.int64)
    if len(data) < 3:
        return arr
    lead = np.flatnonzero(data[:-2] == 0xEF)
    cp = _cp3(data, lead)
    sel = (cp >= 0xFF61) & (cp <= 0xFF9F)
    _put3(data, lead[sel], _HALF_TO_FULL[cp[sel] - 0xFF61])
    marks = np.flatnonzero((data[:-2] == 0xE3) & (data[1:-1] == 0x82)
                           & ((data[2:] == 0x99) | (data[2:] == 0x9A)))
    deleted = np.zeros(0, dtype=np.int64)
    if len(marks):
        kind = (data[marks + 2] == 0x9A).astype(np.int64)
        row_start = offsets[np.searchsorted(offsets, marks, side="right") - 1]
        has_base = marks - 3 >= row_start
        base = np.where(has_base, marks - 3, 0)
        base_cp = _cp3(data, base)
        in_block = has_base & (data[base] == 0xE3) & (base_cp >= 0x30A0) & (base_cp < 0x3100)
        composed = np.where(in_block, _COMPOSE[np.clip(base_cp - 0x30A0, 0, 0x5F), kind], 0)
        merge = composed > 0
        _put3(data, base[merge], composed[merge])
        deleted = marks[merge]  # sorted; 3 bytes each
        lone = marks[~merge]
        data[lone + 2] = np.where(data[lone + 2] == 0x99, 0x9B, 0x9C)
    if len(deleted):
        keep = np.ones(len(data), dtype=bool)
        keep[deleted] = keep[deleted + 1] = keep[deleted + 2] = False
        offsets = offsets - 3 * np.searchsorted(deleted, offsets, side="left")
        data = data[keep]
    return pa.Array.from_buffers(pa.string(), n, [validity, pa.py_buffer(
        offsets.astype(np.int32)), pa.py_buffer(data)], null_count=arr.null_count)


def widen_kana(arr: pa.Array | pa.ChunkedArray, method: str = "bytes"):
    """Half-width katakana (and ASCII spaces) → full-width, 濁点/半濁点 merged (ｶﾞ → ガ).

    Only rows that contain half-width kana are rewritten, with numpy on the UTF-8 bytes (a
    voiced mark already in combining form is merged too). ``method="pairs"`` uses one
    ``replace_substring`` pass per table entry instead (slow; the tests compare both).
    """
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    mask = pc.fill_null(pc.match_substring_regex(arr, _HALF_KANA_RE), False)
    if not pc.any(mask).as_py():
        return arr
    widen = _widen_by_pairs if method == "pairs" else _widen_by_bytes
    return pc.replace_with_mask(arr, mask, widen(pc.filter(arr, mask)))


# ----------------------------------------------------------------------------- applying

def _blank_to_null(arr):
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, arr.type), arr)


def _as_string(arr):
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    if not pa.types.is_string(arr.type):
        arr = pc.cast(arr, pa.string())
    return arr


def _const(value, n: int, typ: pa.DataType):
    return pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(n, dtype=np.int8)), pa.array([value], typ)).cast(typ)


def _date_columns(rule: Rule, table: pa.Table):
    src = rule.sources[0]
    col = table.column(src)
    st = status_type()
    if len(rule.sources) == 3:  # decoded wareki: keep date, raw and status as they are
        raw = _as_string(table.column(rule.sources[1]))
        status = table.column(rule.sources[2]).cast(st)
        return col.cast(pa.date32()), raw, status
    if pa.types.is_date32(col.type):
        raw = pc.strftime(col, format="%Y%m%d")
        status = pc.if_else(pc.is_null(col), "blank", "valid")
        return col, raw, status.cast(st)
    # YYYYMMDD strings: valid, blank, unknown (zeros / 99 / month-or-day 00) or impossible.
    raw = _as_string(col)
    trimmed = pc.utf8_trim(raw, _TRIM)
    parsed = pc.strptime(trimmed, format="%Y%m%d", unit="s", error_is_null=True).cast(
        pa.date32())
    # strptime rolls impossible days over (20230229 → 2023-03-01): keep only exact round trips.
    exact = pc.fill_null(pc.equal(pc.strftime(parsed, format="%Y%m%d"), trimmed), False)
    parsed = pc.if_else(exact, parsed, pa.scalar(None, pa.date32()))
    eight = pc.match_substring_regex(trimmed, "^[0-9]{8}$")
    unknown = pc.match_substring_regex(trimmed, "^(0{8}|[0-9]{4}(00[0-9]{2}|[0-9]{2}00)|"
                                                "[0-9]{2}9{6}|[0-9]{4}9999)$")
    blank = pc.or_kleene(pc.is_null(trimmed), pc.equal(trimmed, ""))
    status = pc.case_when(
        pc.make_struct(pc.fill_null(blank, True), pc.fill_null(unknown, False),
                       pc.is_valid(parsed), pc.fill_null(eight, False)),
        "blank", "unknown", "valid", "impossible", "impossible")
    date = pc.if_else(pc.equal(status, "valid"), parsed, pa.scalar(None, pa.date32()))
    return date, pc.if_else(blank, pa.scalar(None, pa.string()), raw), status.cast(st)


_STATUS_VALUES = pa.array(DATE_STATUSES, pa.string())


def _canonical_status(col) -> pa.DictionaryArray:
    """A date status column with the one fixed dictionary :data:`DATE_STATUSES` (in that
    order), whatever produced it: the outputs of different blocks must share one dictionary to
    be merged into one Arrow IPC file."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    idx = pc.index_in(col, value_set=_STATUS_VALUES)
    bad = pc.and_(pc.is_valid(col), pc.is_null(idx))
    if pc.any(bad).as_py():
        raise MappingError(f"unknown date status {pc.filter(col, bad)[0].as_py()!r} "
                           f"(expected one of {', '.join(DATE_STATUSES)})")
    return pa.DictionaryArray.from_arrays(idx.cast(pa.int8()), _STATUS_VALUES)


def apply_mapping(mapping: Mapping, table: pa.Table) -> MappingResult:
    """Map decoded legacy rows to the standard layout: (standard table, rejected rows)."""
    missing = sorted({s for r in mapping.rules for s in r.sources} - set(table.column_names))
    if missing:
        raise MappingError(f"{mapping.path}: legacy table lacks columns {', '.join(missing)}")
    table = table.combine_chunks()  # one chunk per column: a merged Beam output has many
    n = table.num_rows
    schema = mapping.standard.schema(lineage=True)
    columns: dict[str, Any] = {}
    problems: list[tuple[pa.Array, str, str, str]] = []  # (bad rows, field, code, message)
    for rule in mapping.rules:
        it = rule.item
        where_ = f"{it.field} ({it.name})"
        if rule.op == "date" or it.type == "date":
            d, raw, st = _date_columns(rule, table)
            columns[it.field], columns[it.field + "_raw"], columns[it.field + "_status"] = (
                d, raw, st)
            continue
        if rule.op == "const":
            columns[it.field] = _const(rule.value, n, it.arrow_type())
            continue
        if rule.op == "concat":
            parts = [_blank_to_null(pc.utf8_trim(_as_string(table.column(s)), _TRIM))
                     for s in rule.sources]
            joined = pc.binary_join_element_wise(*parts, rule.value, null_handling="skip")
            columns[it.field] = _blank_to_null(joined)
            continue
        src = table.column(rule.sources[0])
        if rule.op == "trim":
            columns[it.field] = _blank_to_null(pc.utf8_trim(_as_string(src), _TRIM))
        elif rule.op == "kana":
            columns[it.field] = _blank_to_null(
                pc.utf8_trim(widen_kana(_as_string(src)), _TRIM))
        elif rule.op == "code":
            codes = _blank_to_null(pc.utf8_trim(_as_string(src), " "))
            if rule.table is None:
                keys = pa.array(list(mapping.standard.codes(it).codes), pa.string())
                values = keys
            else:
                keys = pa.array(list(rule.table), pa.string())
                values = pa.array(list(rule.table.values()), pa.string())
            idx = pc.index_in(codes, value_set=keys)
            out = pc.take(values, idx)
            unknown = pc.and_(pc.is_valid(codes), pc.is_null(idx))
            if pc.any(unknown).as_py():
                bad = pc.filter(codes, unknown).unique().to_pylist()
                for code in bad[:20]:
                    problems.append((pc.and_(unknown, pc.fill_null(pc.equal(codes, code), False)),
                                     it.field, MAPPING_UNKNOWN_CODE,
                                     f"{where_}: unknown code {code!r} in legacy field "
                                     f"{rule.sources[0]}"))
                if len(bad) > 20:
                    rest = pc.and_(unknown, pc.invert(pc.is_in(codes, pa.array(bad[:20]))))
                    problems.append((rest, it.field, MAPPING_UNKNOWN_CODE,
                                     f"{where_}: unknown code in legacy field "
                                     f"{rule.sources[0]}"))
            columns[it.field] = out
        else:  # copy
            if it.type == "int":
                if pa.types.is_integer(src.type):
                    columns[it.field] = src.cast(pa.int64())
                elif pa.types.is_decimal(src.type):  # scale 0, ≤ 18 digits (checked)
                    columns[it.field] = src.cast(pa.int64())
                else:
                    s = pc.utf8_trim(_as_string(src), _TRIM)
                    ok = pc.match_substring_regex(s, r"^[+-]?[0-9]{1,18}$")
                    bad = pc.and_(pc.fill_null(pc.invert(ok), False),
                                  pc.fill_null(pc.not_equal(s, ""), False))
                    if pc.any(bad).as_py():
                        problems.append((bad, it.field, MAPPING_NOT_INTEGER,
                                         f"{where_}: legacy field {rule.sources[0]} is not "
                                         f"an integer"))
                    good = pc.if_else(pc.fill_null(ok, False), s, pa.scalar(None, pa.string()))
                    columns[it.field] = pc.cast(good, pa.int64())
            else:
                columns[it.field] = _blank_to_null(_as_string(src))
    for name, typ in LINEAGE_FIELDS:
        columns[name] = (table.column(name).cast(typ) if name in table.column_names
                         else pa.nulls(n, typ))
    arrays = []
    for f in schema:
        col = columns.get(f.name)
        if col is None and f.metadata.get(b"ikou.role") == b"status":
            col = _const("blank", n, pa.string())  # an unmapped date item is blank
        if col is None:
            col = pa.nulls(n, f.type)
        elif f.metadata.get(b"ikou.role") == b"status":
            col = _canonical_status(col)
        elif col.type != f.type:
            col = col.cast(f.type)
        arrays.append(col)
    out = pa.Table.from_arrays(arrays, schema=schema)
    if not problems:
        return MappingResult(out, REJECT_SCHEMA.empty_table())
    return MappingResult(*_split(out, problems))


def _split(out: pa.Table, problems) -> tuple[pa.Table, pa.Table]:
    n = out.num_rows
    any_bad = np.zeros(n, dtype=bool)
    masks = []
    for mask, field_name, code, message in problems:
        m = np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)
        any_bad |= m
        masks.append((m, {"field": field_name, "code": code, "message": message}))
    rows = np.flatnonzero(any_bad)
    # Reasons per bad row, in rule order (only the bad rows are touched in Python).
    reasons: dict[int, list[dict[str, str]]] = {int(r): [] for r in rows}
    for m, reason in masks:
        for r in np.flatnonzero(m):
            reasons[int(r)].append(reason)
    idx = pa.array(rows, pa.int64())
    rejected = pa.table({
        "_row": idx,
        "_source": out.column("_source").take(idx),
        "_record": out.column("_record").take(idx),
        "_offset": out.column("_offset").take(idx),
        "reason": pa.array(["; ".join(x["message"] for x in reasons[int(r)]) for r in rows],
                           pa.string()),
        "reasons": pa.array([reasons[int(r)] for r in rows], REASONS_TYPE),
    }, schema=REJECT_SCHEMA)
    return out.filter(pa.array(~any_bad)), rejected


class MappingStep:
    """The per-block mapper :mod:`ikou.transforms.decode.sources` calls: legacy rows → standard
    rows and the rejected rows' reasons (field, code, message). Picklable (it carries the loaded
    mapping)."""

    def __init__(self, mapping: Mapping):
        self.mapping = mapping
        self.schema = mapping.standard.schema(lineage=True)

    def __call__(self, table):
        res = apply_mapping(self.mapping, table)
        rejects = []
        if res.rejected.num_rows:
            rows = res.rejected.column("_row").to_pylist()
            reasons = res.rejected.column("reasons").to_pylist()
            rejects = [(r, [dict(x, position=None) for x in rs])
                       for r, rs in zip(rows, reasons, strict=True)]
        return res.table, rejects
