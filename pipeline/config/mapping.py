"""Mappings: how each 中間標準レイアウト item is filled from decoded legacy columns.

A mapping file (YAML) names its target definition and maps standard items (Japanese name or
ASCII field name) to exactly one operation::

    target: juki                       # a shipped definition name, or a path relative to this file
    tables:                            # named legacy code → standard code tables
      sex: {"1": "1", "2": "2", "0": "9"}
      zokugara: zokugara_map.csv       # CSV with columns legacy,standard (path relative to here)
    items:
      宛名番号: {copy: atena_no}
      氏名: {concat: [shi, mei]}         # blank parts skipped; sep defaults to U+3000
      氏名フリガナ: {kana: kana}          # half-width → full-width katakana, 濁点 merged
      住所: {trim: addr}                 # ASCII spaces and U+3000 trimmed at both ends
      性別: {code: sex, table: sex}      # table: a name under `tables`, an inline mapping or a CSV
      続柄コード: {code: zoku}           # no table: the legacy code must already be a standard code
      生年月日: {date: birth}            # wareki (birth, birth_raw, birth_status) or date32
      住民種別: {const: "1"}

:func:`load_mapping` checks the file against the target definition and the legacy columns and
raises :class:`MappingError` (a ``ValueError``) naming the file and line for an unknown legacy
field, an unknown standard item, an unfilled required item, a table value that is not in the
standard code table, and the like.

:func:`ikou.pipeline.steps.mapping.apply_mapping` turns a pyarrow Table of decoded legacy rows into a standard table (schema
from :meth:`Standard.schema`, lineage columns kept) plus a table of rejected rows with their
reasons; all work is done with ``pyarrow.compute`` on whole columns. A row is rejected only when a
value cannot be converted (an unknown legacy code, a non-integer for an int item); rule checks
(required, lengths, check digits, …) are the gates' job. Reasons never contain personal values:
they name the item and the legacy field, plus the offending value for code lookups only.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from ikou.pipeline.config.standard import (
    Item,
    Standard,
    StandardError,
    load_standard,
)
from ikou.pipeline.config.yamlio import ConfigError, LineDict, load_yaml, where

__all__ = [
    "OPS",
    "Mapping",
    "MappingError",
    "Rule",
    "load_mapping",
    "parse_mapping",
]

#: Operations and the extra keys each accepts.
OPS: dict[str, set[str]] = {
    "copy": set(),
    "trim": set(),
    "concat": {"sep"},
    "code": {"table"},
    "date": set(),
    "kana": set(),
    "const": set(),
}
FULL_SPACE = "\u3000"
_TRIM = " \u3000"
class MappingError(ConfigError):
    """A mapping file is invalid (message names the file and line)."""


@dataclass(frozen=True)
class Rule:
    """One standard item filled by one operation."""

    item: Item
    op: str
    sources: tuple[str, ...] = ()     # legacy fields read
    value: Any = None                 # const value / concat separator
    table: dict[str, str] | None = None  # code lookup legacy → standard (None: identity)
    line: int = 0


@dataclass(frozen=True)
class Mapping:
    standard: Standard
    rules: tuple[Rule, ...]
    path: Path | None = None
    legacy_fields: frozenset[str] = field(default_factory=frozenset)

    def rule(self, key: str) -> Rule:
        for r in self.rules:
            if key in (r.item.field, r.item.name):
                return r
        raise KeyError(key)


def _legacy_schema(legacy) -> tuple[frozenset[str], pa.Schema | None]:
    if isinstance(legacy, pa.Schema):
        return frozenset(legacy.names), legacy
    if hasattr(legacy, "arrow_schema"):  # ikou.pipeline.config.layout.Layout
        schema = legacy.arrow_schema("data")
        return frozenset(schema.names), schema
    if isinstance(legacy, Iterable) and not isinstance(legacy, (str, bytes)):
        return frozenset(legacy), None
    raise TypeError("legacy must be a pyarrow Schema, a Layout or an iterable of column names")


def load_mapping(path: str | Path, legacy, codes_dir: str | Path | None = None) -> Mapping:
    """Load and check a mapping YAML file against the decoded legacy columns.

    ``legacy``: the decoded legacy table's ``pa.Schema`` (types are checked too), a
    :class:`ikou.pipeline.config.layout.Layout` (its data kind) or an iterable of column names.
    """
    path = Path(path)
    doc = load_yaml(path, MappingError)
    return parse_mapping(doc, legacy, path, codes_dir)


def _err(path, node, msg) -> MappingError:
    return MappingError(f"{where(path, node)}: {msg}")


def parse_mapping(doc, legacy, path: str | Path = "<mapping>",
                  codes_dir: str | Path | None = None) -> Mapping:
    path = Path(path)
    names, schema = _legacy_schema(legacy)
    if not isinstance(doc, dict):
        raise _err(path, doc, "a mapping file must be a mapping with 'target' and 'items'")
    unknown = set(doc) - {"target", "tables", "items", "codes_dir", "label"}
    if unknown:
        raise _err(path, doc, f"unknown keys: {', '.join(sorted(map(str, unknown)))}")
    target = doc.get("target")
    if not isinstance(target, str) or not target:
        raise _err(path, doc, "'target' must name a standard definition")
    if codes_dir is None and doc.get("codes_dir"):
        codes_dir = path.parent / str(doc["codes_dir"])
    target_path = path.parent / target if target.endswith((".yaml", ".yml")) else target
    try:
        standard = load_standard(target_path, codes_dir)
    except StandardError as exc:
        raise _err(path, doc, f"target {target!r}: {exc}") from None
    tables_doc = doc.get("tables") or {}
    if not isinstance(tables_doc, dict):
        raise _err(path, doc, "'tables' must be a mapping of table names")
    tables = {name: _load_table(node, path, f"table {name!r}", tables_doc)
              for name, node in tables_doc.items()}
    items_doc = doc.get("items")
    if not isinstance(items_doc, dict) or not items_doc:
        raise _err(path, doc, "'items' must be a non-empty mapping of standard item → operation")
    rules: list[Rule] = []
    filled: dict[str, int] = {}
    for key, node in items_doc.items():
        line_node = node if isinstance(node, LineDict) else items_doc
        if not isinstance(key, str) or not standard.has_item(key):
            raise _err(path, line_node, f"unknown standard item {key!r} in {standard.name}")
        item = standard.item(key)
        if item.field in filled:
            raise _err(path, line_node, f"item {item.no} '{item.name}' is mapped twice "
                                        f"(also on line {filled[item.field]})")
        rule = _parse_rule(item, node, path, names, schema, tables, standard, items_doc)
        filled[item.field] = rule.line
        rules.append(rule)
    missing = [it for it in standard.required if it.field not in filled]
    if missing:
        listed = ", ".join(f"{it.no} '{it.name}' ({it.field})" for it in missing)
        raise _err(path, items_doc, f"required items not filled: {listed}")
    rules.sort(key=lambda r: r.item.no)
    return Mapping(standard=standard, rules=tuple(rules), path=path, legacy_fields=names)


def _load_table(node, path: Path, what: str, parent) -> dict[str, str]:
    if isinstance(node, dict):
        return {str(k).strip(): str(v).strip() for k, v in node.items()}
    if isinstance(node, str):
        csv_path = path.parent / node
        try:
            lines = csv_path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise _err(path, parent, f"{what}: cannot read {csv_path}: {exc}") from None
        rows = [(i, r) for i, r in enumerate(csv.reader(lines), start=1)
                if r and not r[0].startswith("#")]
        if not rows or [c.strip() for c in rows[0][1]] != ["legacy", "standard"]:
            raise _err(path, parent, f"{what}: {csv_path} must start with the header "
                                     f"'legacy,standard'")
        out: dict[str, str] = {}
        for i, r in rows[1:]:
            if len(r) != 2:
                raise MappingError(f"{csv_path}:{i}: expected 2 columns, got {len(r)}")
            if r[0].strip() in out:
                raise MappingError(f"{csv_path}:{i}: duplicate legacy code {r[0].strip()!r}")
            out[r[0].strip()] = r[1].strip()
        return out
    raise _err(path, parent, f"{what}: must be an inline mapping or a CSV path")


def _is_str(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or (
        pa.types.is_dictionary(t) and pa.types.is_string(t.value_type))


def _parse_rule(item: Item, node, path, names, schema, tables, standard, parent) -> Rule:
    label = f"item {item.no} '{item.name}'"
    if not isinstance(node, dict):
        raise _err(path, parent, f"{label}: expected a mapping like {{copy: field}}")
    ops = [k for k in node if k in OPS]
    if len(ops) != 1:
        raise _err(path, node, f"{label}: give exactly one of {', '.join(OPS)}")
    op = ops[0]
    extra = set(node) - {op} - OPS[op]
    if extra:
        raise _err(path, node, f"{label}: unknown keys for '{op}': {', '.join(sorted(extra))}")
    arg = node[op]
    line = getattr(node, "line", 0)

    def need(fname) -> str:
        if not isinstance(fname, str) or fname not in names:
            raise _err(path, node, f"{label}: unknown legacy field {fname!r}")
        return fname

    def ltype(fname) -> pa.DataType | None:
        return schema.field(fname).type if schema is not None else None

    if op == "const":
        value = _check_const(item, arg, path, node, label, standard)
        return Rule(item, op, (), value, None, line)
    if op == "concat":
        if not isinstance(arg, list) or len(arg) < 2:
            raise _err(path, node, f"{label}: 'concat' needs a list of at least 2 legacy fields")
        srcs = tuple(need(a) for a in arg)
        if item.type not in ("text", "kana"):
            raise _err(path, node, f"{label}: 'concat' fills text or kana items only")
        sep = node.get("sep", FULL_SPACE)
        if not isinstance(sep, str):
            raise _err(path, node, f"{label}: 'sep' must be a string")
        return Rule(item, op, srcs, sep, None, line)
    src = need(arg)
    t = ltype(src)
    if op == "date":
        if item.type != "date":
            raise _err(path, node, f"{label}: 'date' fills date items only")
        wareki = {src + "_raw", src + "_status"} <= names
        if t is not None and not (pa.types.is_date32(t) or _is_str(t)):
            raise _err(path, node, f"{label}: legacy field {src!r} is {t}, not a date, "
                                   f"wareki or YYYYMMDD string")
        srcs = (src, src + "_raw", src + "_status") if wareki else (src,)
        return Rule(item, op, srcs, None, None, line)
    if item.type == "date":
        raise _err(path, node, f"{label}: a date item is filled with 'date'")
    if op in ("trim", "kana"):
        if item.type not in ("text", "kana", "digits", "code"):
            raise _err(path, node, f"{label}: '{op}' fills string items only")
        if t is not None and not _is_str(t):
            raise _err(path, node, f"{label}: '{op}' needs a string legacy field, {src!r} is {t}")
        return Rule(item, op, (src,), None, None, line)
    if op == "code":
        if item.type != "code":
            raise _err(path, node, f"{label}: 'code' fills code items only")
        std_codes = standard.codes(item).codes
        tname = node.get("table")
        table = None
        if tname is not None:
            table = tables.get(tname) if isinstance(tname, str) and not tname.endswith(
                ".csv") else _load_table(tname, path, "table", node)
            if table is None:
                raise _err(path, node, f"{label}: unknown table {tname!r} (not under 'tables')")
            bad = sorted({v for v in table.values() if v not in std_codes})
            if bad:
                raise _err(path, node, f"{label}: table {tname!r} maps to codes not in the "
                                       f"standard table {item.codes!r}: {', '.join(bad[:5])}")
        if t is not None and not (_is_str(t) or pa.types.is_integer(t)):
            raise _err(path, node, f"{label}: 'code' needs a string or integer field")
        return Rule(item, op, (src,), None, table, line)
    # copy
    if t is not None:
        ok = (_is_str(t) or pa.types.is_integer(t)) if item.type != "int" else (
            pa.types.is_integer(t) or _is_str(t)
            or (pa.types.is_decimal(t) and t.scale == 0 and t.precision <= 18))  # zoned/packed
        if not ok:
            raise _err(path, node, f"{label}: cannot copy {src!r} ({t}) into a {item.type} item")
    return Rule(item, op, (src,), None, None, line)


def _check_const(item: Item, value, path, node, label, standard) -> Any:
    if item.type == "date":
        raise _err(path, node, f"{label}: a date item cannot be a constant")
    if item.type == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            raise _err(path, node, f"{label}: constant must be an integer")
        return value
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise _err(path, node, f"{label}: constant must be a string")
    value = str(value)
    if len(value) > item.length:
        raise _err(path, node, f"{label}: constant is longer than 桁数 {item.length}")
    if item.type == "code" and value not in standard.codes(item).codes:
        raise _err(path, node, f"{label}: constant {value!r} is not in code table {item.codes!r}")
    if item.type == "digits" and not (value.isascii() and value.isdigit()):
        raise _err(path, node, f"{label}: constant must be ASCII digits")
    return value


# ----------------------------------------------------------------------------- kana
