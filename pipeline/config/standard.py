"""Target definitions: the 中間標準レイアウト files ikou writes (see docs/standard-layouts.md).

A definition is a YAML file (``pipeline/data/standard/<name>.yaml``) listing items with an item
number, the Japanese item name (項目名称), an ASCII field name, a type, a length (桁数), a required
flag, an optional code table and a source note. Code tables are CSV files
(``pipeline/data/codes/<table>.csv``). A user holding the official V2.7 workbooks writes the same
two formats and points :func:`load_standard` at them.

``load_standard("juki")`` validates everything and returns a :class:`Standard`;
``Standard.schema()`` is the Arrow schema of the output file, with the Japanese name, item number,
type and length in every field's metadata. Errors raise :class:`StandardError` (a ``ValueError``)
naming the file and line, e.g. ``juki.yaml:14: item 3 '氏名': unknown type 'txt'``.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pyarrow as pa

from ikou.pipeline.config.yamlio import ConfigError, LineDict, load_yaml, where

__all__ = [
    "CHECKS",
    "CODES_DIR",
    "DATE_STATUSES",
    "ITEM_TYPES",
    "LINEAGE_FIELDS",
    "STANDARD_DIR",
    "CodeTable",
    "CodeTableError",
    "Item",
    "Standard",
    "StandardError",
    "load_code_table",
    "load_standard",
    "standard_names",
    "status_type",
]

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
STANDARD_DIR = DATA_DIR / "standard"
CODES_DIR = DATA_DIR / "codes"

#: Item types. ``text``: any string (桁数 = characters); ``kana``: full-width katakana string;
#: ``digits``: ASCII digits kept as a string (leading zeros matter); ``code``: a code-table value
#: (string); ``int``: int64 (桁数 = maximum number of digits); ``date``: 西暦 date32 plus the
#: ``_raw`` legacy value and the ``_status`` (see DATE_STATUSES) beside it.
ITEM_TYPES = ("text", "kana", "digits", "code", "int", "date")
#: Custom check-digit rules the gates know (ikou.expectations).
CHECKS = ("atena_mod11", "kojin_bango")
#: Status values of a date item (docs/architecture.md §3, the wareki statuses).
DATE_STATUSES = ("valid", "out_of_era", "impossible", "unknown", "blank")
#: Lineage columns appended to every output (docs/architecture.md §4).
LINEAGE_FIELDS = (("_source", pa.string()), ("_record", pa.int64()), ("_offset", pa.int64()))

_FIELD = re.compile(r"^[a-z][a-z0-9_]*$")
_TOP_KEYS = {"name", "label", "business", "spec", "source", "keys", "items", "codes_dir"}
_ITEM_KEYS = {"item_no", "name", "field", "type", "length", "required", "codes", "check", "pattern",
              "fixed", "references", "personal", "allow_blank", "source", "note"}
_REFERENCES = ("resident",)


class StandardError(ConfigError):
    """A target definition or code table is invalid (message names the file and line)."""


class CodeTableError(StandardError):
    """A code-table CSV file is invalid."""


def status_type() -> pa.DataType:
    """Arrow type of a date status column (the kernel's wareki status type)."""
    return pa.dictionary(pa.int8(), pa.string())


@dataclass(frozen=True)
class CodeTable:
    """A code table: ``codes`` maps code → name; ``meta`` holds the ``# key: value`` header lines
    (``label``, ``status``, ``source``); ``extra`` holds any further columns per code."""

    name: str
    codes: dict[str, str]
    meta: dict[str, str] = field(default_factory=dict)
    extra: dict[str, dict[str, str]] = field(default_factory=dict)
    path: Path | None = None

    @property
    def label(self) -> str:
        return self.meta.get("label", self.name)

    @property
    def verified(self) -> bool:
        """False when the file says ``# status: unverified`` (docs/domain.md#code-tables marks it so)."""
        return self.meta.get("status", "").strip().lower() != "unverified"


@dataclass(frozen=True)
class Item:
    no: int
    name: str          # 項目名称 (Japanese)
    field: str         # ASCII column name
    type: str
    length: int        # 桁数
    required: bool = False
    codes: str | None = None
    check: str | None = None
    pattern: str | None = None
    fixed: bool = False          # the value's length must equal 桁数
    references: str | None = None  # "resident": must exist in the resident or 住登外 output
    personal: bool = False       # personal value: never shown in reports
    allow_blank: bool = False    # a required date item may still have status "blank"
    source: str = ""
    line: int = 0

    @property
    def columns(self) -> tuple[str, ...]:
        """Arrow columns of this item (a date item has three)."""
        if self.type == "date":
            return (self.field, self.field + "_raw", self.field + "_status")
        return (self.field,)

    def arrow_type(self) -> pa.DataType:
        if self.type == "int":
            return pa.int64()
        if self.type == "date":
            return pa.date32()
        return pa.string()

    def metadata(self, role: str = "value") -> dict[bytes, bytes]:
        meta = {
            b"ikou.item_no": str(self.no).encode(),
            b"ikou.name": self.name.encode(),
            b"ikou.type": self.type.encode(),
            b"ikou.length": str(self.length).encode(),
            b"ikou.required": b"true" if self.required else b"false",
            b"ikou.role": role.encode(),
        }
        if self.codes:
            meta[b"ikou.codes"] = self.codes.encode()
        return meta

    def arrow_fields(self) -> list[pa.Field]:
        out = [pa.field(self.field, self.arrow_type(), metadata=self.metadata())]
        if self.type == "date":
            out.append(pa.field(self.field + "_raw", pa.string(), metadata=self.metadata("raw")))
            out.append(pa.field(self.field + "_status", status_type(),
                                metadata=self.metadata("status")))
        return out


@dataclass(frozen=True)
class Standard:
    name: str
    label: str
    items: tuple[Item, ...]
    keys: tuple[str, ...] = ()
    business: str = ""
    spec: str = ""
    source: str = ""
    path: Path | None = None
    code_tables: dict[str, CodeTable] = field(default_factory=dict)

    def item(self, key: str) -> Item:
        """The item whose ASCII field name or Japanese name is ``key`` (KeyError otherwise)."""
        for it in self.items:
            if key in (it.field, it.name):
                return it
        raise KeyError(key)

    def has_item(self, key: str) -> bool:
        return any(key in (it.field, it.name) for it in self.items)

    @property
    def required(self) -> tuple[Item, ...]:
        return tuple(it for it in self.items if it.required)

    def codes(self, item: Item | str) -> CodeTable | None:
        it = self.item(item) if isinstance(item, str) else item
        return self.code_tables.get(it.codes) if it.codes else None

    def schema(self, lineage: bool = True) -> pa.Schema:
        """The output's Arrow schema: items in item-number order, then the lineage columns."""
        fields: list[pa.Field] = []
        for it in self.items:
            fields.extend(it.arrow_fields())
        if lineage:
            fields.extend(pa.field(n, t, metadata={b"ikou.role": b"lineage"})
                          for n, t in LINEAGE_FIELDS)
        meta = {b"ikou.standard": self.name.encode(), b"ikou.label": self.label.encode(),
                b"ikou.spec": self.spec.encode()}
        return pa.schema(fields, metadata=meta)


# ----------------------------------------------------------------------------- code tables

def _resolve(name_or_path: str | Path, folder: Path, suffix: str) -> Path:
    p = Path(name_or_path)
    if p.suffix or p.is_absolute() or len(p.parts) > 1:
        return p
    return folder / f"{name_or_path}{suffix}"


def load_code_table(name_or_path: str | Path, codes_dir: str | Path | None = None) -> CodeTable:
    """Load a code table CSV: ``# key: value`` comment lines, then a header with ``code`` and
    ``name`` (and optional extra columns), then one row per code."""
    path = _resolve(name_or_path, Path(codes_dir) if codes_dir else CODES_DIR, ".csv")
    return _load_code_table_cached(str(path))


@lru_cache(maxsize=128)
def _load_code_table_cached(path_str: str) -> CodeTable:
    path = Path(path_str)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise CodeTableError(f"{path}: code table not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CodeTableError(f"{path}: cannot read: {exc}") from None
    meta: dict[str, str] = {}
    body_start = 0
    for i, line in enumerate(lines):
        if line.startswith("#"):
            key, sep, value = line[1:].partition(":")
            if sep:
                meta[key.strip()] = value.strip()
            continue
        if line.strip():
            body_start = i
            break
    else:
        raise CodeTableError(f"{path}: no header line (expected 'code,name')")
    rows = list(csv.reader(lines[body_start:]))
    header = [h.strip() for h in rows[0]]
    if "code" not in header or "name" not in header:
        raise CodeTableError(f"{path}:{body_start + 1}: header must have 'code' and 'name' "
                             f"columns, got {','.join(header)}")
    ci, ni = header.index("code"), header.index("name")
    codes: dict[str, str] = {}
    extra: dict[str, dict[str, str]] = {}
    for k, row in enumerate(rows[1:], start=body_start + 2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise CodeTableError(f"{path}:{k}: expected {len(header)} columns, got {len(row)}")
        code = row[ci].strip()
        if not code:
            raise CodeTableError(f"{path}:{k}: empty code")
        if code in codes:
            raise CodeTableError(f"{path}:{k}: duplicate code {code!r}")
        codes[code] = row[ni].strip()
        extra[code] = {h: row[j].strip() for j, h in enumerate(header) if j not in (ci, ni)}
    if not codes:
        raise CodeTableError(f"{path}: no codes")
    return CodeTable(name=path.stem, codes=codes, meta=meta, extra=extra, path=path)


# ----------------------------------------------------------------------------- definitions

def standard_names(folder: str | Path | None = None) -> list[str]:
    """Names of the shipped (or given folder's) definitions."""
    return sorted(p.stem for p in Path(folder or STANDARD_DIR).glob("*.yaml"))


def load_standard(name_or_path: str | Path, codes_dir: str | Path | None = None) -> Standard:
    """Load and validate a definition by name (shipped) or path; code tables are looked up in
    ``codes_dir`` (default: the file's ``codes_dir`` key, else the shipped code tables)."""
    path = _resolve(name_or_path, STANDARD_DIR, ".yaml")
    return _load_standard_cached(str(path), str(codes_dir) if codes_dir else "")


@lru_cache(maxsize=32)
def _load_standard_cached(path_str: str, codes_dir: str) -> Standard:
    path = Path(path_str)
    doc = load_yaml(path, StandardError)
    return parse_standard(doc, path, codes_dir or None)


def _err(path, node, msg) -> StandardError:
    return StandardError(f"{where(path, node)}: {msg}")


def parse_standard(doc, path: str | Path = "<definition>",
                   codes_dir: str | Path | None = None) -> Standard:
    """Validate a loaded definition document (see :func:`load_standard`)."""
    path = Path(path)
    if not isinstance(doc, dict):
        raise _err(path, doc, "a definition must be a mapping with 'name' and 'items'")
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise _err(path, doc, f"unknown keys: {', '.join(sorted(map(str, unknown)))}")
    name = doc.get("name")
    if not isinstance(name, str) or not _FIELD.match(name):
        raise _err(path, doc, f"'name' must be a lower-case ASCII identifier, got {name!r}")
    if codes_dir is None and doc.get("codes_dir"):
        codes_dir = path.parent / str(doc["codes_dir"])
    items_doc = doc.get("items")
    if not isinstance(items_doc, list) or not items_doc:
        raise _err(path, doc, "'items' must be a non-empty list")
    items: list[Item] = []
    tables: dict[str, CodeTable] = {}
    seen_no: dict[int, Item] = {}
    seen_name: dict[str, Item] = {}
    seen_col: dict[str, Item] = {}
    for node in items_doc:
        it = _parse_item(node, path)
        label = f"item {it.no} '{it.name}'"
        if it.no in seen_no:
            raise _err(path, node, f"{label}: item number {it.no} already used on line "
                                   f"{seen_no[it.no].line}")
        if it.name in seen_name:
            raise _err(path, node, f"{label}: name already used by item {seen_name[it.name].no}")
        for col in it.columns:
            if col in seen_col:
                raise _err(path, node, f"{label}: column {col!r} collides with item "
                                       f"{seen_col[col].no}")
        if it.codes:
            if it.codes not in tables:
                try:
                    tables[it.codes] = load_code_table(it.codes, codes_dir)
                except CodeTableError as exc:
                    raise _err(path, node, f"{label}: code table {it.codes!r}: {exc}") from None
            too_long = [c for c in tables[it.codes].codes if len(c) > it.length]
            if too_long:
                raise _err(path, node, f"{label}: codes longer than 桁数 {it.length} in table "
                                       f"{it.codes!r}: {', '.join(too_long[:5])}")
        seen_no[it.no] = it
        seen_name[it.name] = it
        for col in it.columns:
            seen_col[col] = it
        items.append(it)
    keys = doc.get("keys") or []
    if not isinstance(keys, list):
        raise _err(path, doc, "'keys' must be a list of field names")
    for k in keys:
        if k not in seen_col or seen_col[k].field != k:
            raise _err(path, keys, f"key {k!r} is not an item field")
    items.sort(key=lambda i: i.no)
    return Standard(
        name=name, label=str(doc.get("label", name)), items=tuple(items), keys=tuple(keys),
        business=str(doc.get("business", "")), spec=str(doc.get("spec", "")),
        source=str(doc.get("source", "")).strip(), path=path, code_tables=tables,
    )


def _parse_item(node, path: Path) -> Item:
    if not isinstance(node, LineDict):
        raise _err(path, node, "each item must be a mapping")
    label = f"item {node.get('item_no', '?')} '{node.get('name', '?')}'"
    unknown = set(node) - _ITEM_KEYS
    if unknown:
        raise _err(path, node, f"{label}: unknown keys: {', '.join(sorted(map(str, unknown)))}")
    for key in ("item_no", "name", "field", "type", "length"):
        if key not in node:
            raise _err(path, node, f"{label}: missing '{key}'")
    no, name, fld, typ, length = (node[k] for k in ("item_no", "name", "field", "type", "length"))
    if not isinstance(no, int) or isinstance(no, bool) or no < 1:
        raise _err(path, node, f"{label}: 'item_no' must be a positive integer")
    if not isinstance(name, str) or not name.strip():
        raise _err(path, node, f"{label}: 'name' (項目名称) must be a non-empty string")
    if not isinstance(fld, str) or not _FIELD.match(fld):
        raise _err(path, node, f"{label}: 'field' must be a lower-case ASCII identifier not "
                               f"starting with '_', got {fld!r}")
    if typ not in ITEM_TYPES:
        raise _err(path, node, f"{label}: unknown type {typ!r} (one of {', '.join(ITEM_TYPES)})")
    if not isinstance(length, int) or isinstance(length, bool) or length < 1:
        raise _err(path, node, f"{label}: 'length' (桁数) must be a positive integer")
    if typ == "int" and length > 18:
        raise _err(path, node, f"{label}: an int item holds at most 18 digits")
    for flag in ("required", "fixed", "personal", "allow_blank"):
        if not isinstance(node.get(flag, False), bool):
            raise _err(path, node, f"{label}: '{flag}' must be true or false")
    codes = node.get("codes")
    if (typ == "code") != (codes is not None):
        raise _err(path, node, f"{label}: a 'code' item needs 'codes' and only a 'code' item "
                               f"may have one")
    check = node.get("check")
    if check is not None and check not in CHECKS:
        raise _err(path, node, f"{label}: unknown check {check!r} (one of {', '.join(CHECKS)})")
    if check is not None and typ != "digits":
        raise _err(path, node, f"{label}: a check digit needs a 'digits' item")
    if node.get("allow_blank") and typ != "date":
        raise _err(path, node, f"{label}: 'allow_blank' applies to date items only")
    pattern = node.get("pattern")
    if pattern is not None:
        try:
            re.compile(pattern)
        except (re.error, TypeError) as exc:
            raise _err(path, node, f"{label}: invalid pattern: {exc}") from None
    refs = node.get("references")
    if refs is not None and refs not in _REFERENCES:
        raise _err(path, node, f"{label}: 'references' must be one of {', '.join(_REFERENCES)}")
    return Item(no=no, name=name.strip(), field=fld, type=typ, length=length,
                required=node.get("required", False), codes=codes, check=check, pattern=pattern,
                fixed=node.get("fixed", False), references=refs,
                personal=node.get("personal", False), allow_blank=node.get("allow_blank", False),
                source=str(node.get("source", "")),
                line=node.line)
