"""Layout files: how a user describes a legacy fixed-length export (see docs/architecture.md §1).

``load_layout(path)`` reads and validates a YAML layout and returns a :class:`Layout`. Every error
is a :class:`LayoutError` whose message names the file (and line), the record kind and the field,
for example::

    juki.layout.yaml:23: kind 'data', field 'birth': bytes 51-58 overlap field 'sex' (bytes 50-50)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from ikou.pipeline.config.yamlio import ConfigError, load_yaml, where

__all__ = [
    "FIELD_TYPES",
    "KINDS",
    "Field",
    "Kind",
    "Layout",
    "LayoutError",
    "RECORD_FORMATS",
    "RecordFraming",
    "load_layout",
    "parse_layout",
]


class LayoutError(ConfigError):
    """A layout file is invalid."""


#: The record kinds with a fixed meaning; any other identifier names a row kind (its good
#: records become rows of ``<layout>.<kind>.arrow``; ``data`` → ``<layout>.arrow``).
KINDS = ("header", "data", "trailer")
#: Kinds whose records are not rows (read for their values and counts).
FRAME_KINDS = ("header", "trailer")
#: Field types known to the decoding kernel (docs/architecture.md §3).
FIELD_TYPES = (
    "text", "digits", "int", "date", "wareki", "filler",
    "zoned", "packed", "decimal", "bytes", "dbcs", "binary",
    "float", "edited", "national",
)
#: Types whose bytes depend on the layout's encoding (they take its ``encoding`` unless the
#: field names its own).
ENCODED_TYPES = ("text", "dbcs", "digits", "int", "date", "wareki", "decimal", "edited")
#: Types that can hold the trailer's record count.
COUNT_TYPES = ("int", "digits", "zoned", "packed", "decimal", "binary")
SEPARATORS = {"none": b"", "": b"", "\n": b"\n", "\r\n": b"\r\n", "lf": b"\n", "crlf": b"\r\n"}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_TOP_KEYS = {"name", "label", "description", "encoding", "record_length", "record_separator",
             "record_type", "kinds", "fields", "structure", "shape", "occurs_shrink"}
#: output shapes: flat columns (what mappings and gates read) or, from a copybook's structure,
#: groups as struct columns and OCCURS as list columns (``ikou.transforms.decode.shape``)
SHAPES = ("flat", "nested")
#: the record-format keys (F, FB, V, VB): parsed by :func:`_parse_record_format`
_RECORD_FORMAT_KEYS = {"record_format", "rdw", "bdw", "extra_bytes"}
RECORD_FORMATS = ("F", "FB", "V", "VB")
_KIND_KEYS = {"code", "label", "fields", "count_field", "structure"}
#: Field keys that are not kernel options: the place, the type, and metadata (the COBOL
#: picture and usage, 88-level values, the REDEFINES alternative a field belongs to).
_FIELD_BASE_KEYS = {"name", "offset", "length", "type", "label", "picture", "usage", "values",
                    "redefines", "alternative"}


@dataclass(frozen=True)
class Field:
    name: str
    offset: int
    length: int
    type: str
    label: str = ""
    options: dict = field(default_factory=dict)
    line: int = 0
    #: metadata from a copybook: the PIC and USAGE as written, 88-level values, and for an item
    #: of a REDEFINES alternative the redefined item and the alternative
    picture: str | None = None
    usage: str | None = None
    values: object = None
    redefines: str | None = None
    alternative: str | None = None

    @property
    def end(self) -> int:
        """One past the field's last byte."""
        return self.offset + self.length


@dataclass(frozen=True)
class Kind:
    name: str
    code: bytes | None
    fields: tuple[Field, ...]
    count_field: str | None = None
    label: str = ""
    structure: tuple = ()

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


@dataclass(frozen=True)
class Layout:
    path: str
    name: str
    label: str
    encoding: str
    record_length: int
    separator: bytes
    record_type: tuple[int, int] | None
    kinds: dict[str, Kind]
    #: F / FB (fixed length; the same for a file) or V / VB (variable length behind RDWs, VB
    #: in blocks behind BDWs): :class:`RecordFraming`
    framing: RecordFraming = field(default_factory=lambda: RecordFraming())

    @property
    def record_format(self) -> str:
        return self.framing.record_format

    @property
    def variable(self) -> bool:
        """V or VB: records of varying length behind record descriptor words."""
        return self.framing.variable

    #: the copybook tree of a single-kind layout (kinds have their own), see docs/copybooks.md
    structure: tuple = ()
    #: ``flat`` or ``nested`` (struct / list columns rebuilt from ``structure``)
    shape: str = "flat"
    #: V / VB records hold only the counter's elements of their OCCURS … DEPENDING ON table
    occurs_shrink: bool = False

    def structure_of(self, kind: str) -> tuple:
        """The copybook tree of ``kind``'s rows (its own, or the layout's)."""
        return self.kinds[kind].structure or self.structure

    @property
    def row_kinds(self) -> list[str]:
        """Kinds whose good records become rows (every kind but header and trailer)."""
        return [k for k in self.kinds if k not in FRAME_KINDS]

    @property
    def stride(self) -> int:
        """Bytes from one record's start to the next (record plus separator)."""
        return self.record_length + len(self.separator)

    @property
    def codes(self) -> dict[bytes, str]:
        """Record-type code → kind name (empty for a single-kind file)."""
        return {k.code: k.name for k in self.kinds.values() if k.code is not None}

    def kind_for_code(self, code: bytes) -> str | None:
        if self.record_type is None:
            return self.row_kinds[0]
        return self.codes.get(bytes(code))

    def plan(self, kind: str, gaiji: dict | None = None, gaiji_fallback: bool = False):
        """The kernel's :class:`~ikou.kernels.DecodePlan` for one record kind. ``gaiji`` as
        :func:`~ikou.pipeline.config.gaiji.load_gaiji` returns it; ``gaiji_fallback`` writes the 外字
        table's fallback characters instead of the primary ones (a field's own
        ``gaiji_fallback`` option overrides it)."""
        from ikou.kernels import DecodePlan

        return DecodePlan(
            record_length=self.record_length,
            fields=[_field_spec(f) for f in self.kinds[kind].fields],
            gaiji=dict(gaiji or {}),
            gaiji_fallback=gaiji_fallback,
        )

    def arrow_schema(self, kind: str = "data", gaiji: dict | None = None) -> pa.Schema:
        """Arrow schema of the decoded columns of ``kind``, as the kernel produces them, with the
        legacy item's label (Japanese name), offset, length and type in each field's metadata."""
        schema = self.plan(kind, gaiji).schema
        by_name = {f.name: f for f in self.kinds[kind].fields}
        fields = []
        for arrow_field in schema:
            base, role = arrow_field.name, "value"
            if base not in by_name and "_" in base:
                stem, _, suffix = base.rpartition("_")
                if stem in by_name:
                    base, role = stem, suffix
            src = by_name.get(base)
            meta = {"role": role}
            if src is not None:
                meta.update(
                    label=src.label,
                    legacy_offset=str(src.offset),
                    legacy_length=str(src.length),
                    legacy_type=src.type,
                )
                if src.picture is not None:
                    meta["legacy_picture"] = src.picture
                if src.usage is not None:
                    meta["legacy_usage"] = src.usage
                if src.values is not None:
                    meta["values"] = json.dumps(src.values, ensure_ascii=False, sort_keys=True)
                if src.redefines is not None:
                    meta["legacy_redefines"] = src.redefines
            fields.append(arrow_field.with_metadata({k: v.encode() for k, v in meta.items()}))
        return pa.schema(fields, metadata={
            b"layout": self.name.encode(),
            b"layout_label": self.label.encode(),
            b"kind": kind.encode(),
        })


def _field_spec(f: Field):
    from ikou.kernels import FieldSpec

    return FieldSpec(f.name, offset=f.offset, length=f.length, type=f.type, **f.options)


def load_layout(path: str | Path) -> Layout:
    """Read and validate a layout YAML file. A layout with a ``copybook:`` key is built from
    that COBOL copybook at load time (``copybook_options:``; fields given next to it override
    the imported ones by name: docs/copybooks.md)."""
    doc = load_yaml(path, LayoutError)
    if isinstance(doc, dict) and "copybook" in doc:
        from ikou.pipeline.config.copybook import layout_from_reference

        doc = layout_from_reference(doc, path)
    return parse_layout(doc, str(path))


def _int(value, what: str, at: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise LayoutError(f"{at}: {what} must be an integer, got {value!r}")
    if value < minimum:
        raise LayoutError(f"{at}: {what} must be at least {minimum}, got {value}")
    return value


def _unknown_keys(node: dict, allowed: set, at: str, what: str) -> None:
    extra = sorted(str(k) for k in node if k not in allowed)
    if extra:
        raise LayoutError(
            f"{at}: unknown key(s) {', '.join(extra)} in {what} (allowed: {', '.join(sorted(allowed))})"
        )


def parse_layout(doc, path: str = "<layout>") -> Layout:
    """Validate an already-loaded layout document (as returned by :func:`load_yaml`)."""
    if not isinstance(doc, dict):
        raise LayoutError(f"{path}: a layout must be a YAML mapping")
    at = where(path, doc)
    _unknown_keys(doc, _TOP_KEYS | _RECORD_FORMAT_KEYS, at, "the layout")

    name = doc.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise LayoutError(f"{at}: 'name' must be an identifier (letters, digits, _), got {name!r}")
    from ikou.kernels import EncodingError, canonical_encoding

    try:
        encoding = canonical_encoding(doc.get("encoding", "cp932"))
    except EncodingError as exc:
        raise LayoutError(f"{at}: {exc}") from None
    if "record_length" not in doc:
        raise LayoutError(f"{at}: 'record_length' is required")
    record_length = _int(doc["record_length"], "record_length", at, 1)
    sep_value = doc.get("record_separator", "none")
    sep_key = "none" if sep_value is None else str(sep_value).lower()
    if sep_key not in SEPARATORS:
        raise LayoutError(
            f"{at}: record_separator must be none, \"\\n\" or \"\\r\\n\", got {sep_value!r}"
        )
    separator = SEPARATORS[sep_key]

    record_type = None
    if doc.get("record_type") is not None:
        rt = doc["record_type"]
        rt_at = where(path, rt)
        if not isinstance(rt, dict):
            raise LayoutError(f"{rt_at}: record_type must be a mapping with offset and length")
        _unknown_keys(rt, {"offset", "length"}, rt_at, "record_type")
        rt_off = _int(rt.get("offset"), "record_type offset", rt_at, 0)
        rt_len = _int(rt.get("length"), "record_type length", rt_at, 1)
        if rt_off + rt_len > record_length:
            raise LayoutError(
                f"{rt_at}: record_type bytes {rt_off}-{rt_off + rt_len - 1} lie outside the "
                f"record (record_length {record_length})"
            )
        record_type = (rt_off, rt_len)

    if "kinds" in doc and "fields" in doc:
        raise LayoutError(f"{at}: give either 'kinds' or top-level 'fields', not both")
    if "kinds" in doc:
        kinds_doc = doc["kinds"]
        if not isinstance(kinds_doc, dict) or not kinds_doc:
            raise LayoutError(f"{where(path, kinds_doc)}: 'kinds' must be a non-empty mapping")
    elif "fields" in doc:
        kinds_doc = {"data": {"fields": doc["fields"]}}
    else:
        raise LayoutError(f"{at}: the layout has no 'kinds' and no 'fields'")
    for kind_name in kinds_doc:
        if not isinstance(kind_name, str) or not _NAME.match(kind_name):
            raise LayoutError(
                f"{where(path, kinds_doc)}: record kind {kind_name!r} must be an identifier "
                f"(header, trailer, data or any other row kind)"
            )
    if not [k for k in kinds_doc if k not in FRAME_KINDS]:
        raise LayoutError(f"{where(path, kinds_doc)}: the layout has no row kind ('data' or "
                          f"another kind besides header and trailer)")
    if record_type is None and len(kinds_doc) > 1:
        raise LayoutError(
            f"{at}: several record kinds need a 'record_type' field (offset, length) to tell them apart"
        )

    kinds: dict[str, Kind] = {}
    seen_codes: dict[bytes, str] = {}
    order = (["header"] if "header" in kinds_doc else []) + [
        k for k in kinds_doc if k not in FRAME_KINDS] + (
        ["trailer"] if "trailer" in kinds_doc else [])
    for kind_name in order:
        kind = _parse_kind(kinds_doc[kind_name], kind_name, path, record_length, record_type,
                           encoding)
        if kind.code is not None:
            if kind.code in seen_codes:
                raise LayoutError(
                    f"{where(path, kinds_doc[kind_name])}: kind {kind_name!r}: record-type code "
                    f"{kind.code.decode()!r} is also the code of kind {seen_codes[kind.code]!r}"
                )
            seen_codes[kind.code] = kind_name
        kinds[kind_name] = kind

    layout = Layout(
        path=path,
        name=name,
        label=str(doc.get("label", "")),
        encoding=encoding,
        record_length=record_length,
        separator=separator,
        record_type=record_type,
        kinds=kinds,
        framing=_parse_record_format(doc, path, record_length, separator),
        structure=_structure(doc.get("structure"), path),
        shape=_shape(doc, path),
        occurs_shrink=_occurs_shrink(doc, path),
    )
    _check_with_kernel(layout)
    return layout


# -- record formats (F, FB, V, VB) ------------------------------------------------------------

@dataclass(frozen=True)
class RecordFraming:
    """How the records of a file are framed (docs/copybooks.md, "Record formats").

    ``F`` / ``FB``: fixed length (``record_length`` bytes, optional separator). ``V`` / ``VB``:
    each record behind a 4-byte RDW (``rdw_byte_order``, ``rdw_includes_header``: the length
    counts the RDW's own 4 bytes, as IBM writes it); VB groups records in blocks behind a
    4-byte BDW (``bdw_*``; ``bdw_max_length`` is the largest block, BDW included).
    ``max_length``: the largest payload an RDW may give (default: the layout's
    ``record_length``); ``min_length`` the smallest. ``extra_bytes``: what happens to a record
    longer than ``record_length`` (``error``: quarantined as ``LONG_RECORD``; ``ignore``:
    its first ``record_length`` bytes decoded, the record counted).
    """

    record_format: str = "F"
    rdw_byte_order: str = "big"
    rdw_includes_header: bool = True
    min_length: int = 1
    max_length: int = 0
    bdw_byte_order: str = "big"
    bdw_includes_header: bool = True
    bdw_max_length: int = 32760
    extra_bytes: str = "error"

    @property
    def variable(self) -> bool:
        return self.record_format in ("V", "VB")

    @property
    def blocked(self) -> bool:
        return self.record_format == "VB"

    def kernel_format(self):
        """The index pass's :class:`~ikou.kernels.RecordFormat` (V / VB only)."""
        from ikou.kernels import RecordFormat

        return RecordFormat(blocked=self.blocked,
                            little_endian=self.rdw_byte_order == "little",
                            includes_header=self.rdw_includes_header,
                            min_length=self.min_length, max_length=self.max_length,
                            bdw_little_endian=self.bdw_byte_order == "little",
                            bdw_includes_header=self.bdw_includes_header,
                            bdw_max_length=self.bdw_max_length)


_RDW_KEYS = {"byte_order", "includes_header", "max_length", "min_length"}
_BDW_KEYS = {"byte_order", "includes_header", "max_length"}


def _descriptor_word(node, path: str, what: str, allowed: set) -> dict:
    """The ``rdw:`` / ``bdw:`` mapping, checked (values as given, defaults not filled in)."""
    at = where(path, node)
    if not isinstance(node, dict):
        raise LayoutError(f"{at}: '{what}' must be a mapping ({', '.join(sorted(allowed))})")
    _unknown_keys(node, allowed, at, f"'{what}'")
    out = {}
    if "byte_order" in node:
        order = node["byte_order"]
        if order not in ("big", "little"):
            raise LayoutError(f"{at}: {what}.byte_order must be big or little, got {order!r}")
        out["byte_order"] = order
    if "includes_header" in node:
        value = node["includes_header"]
        if not isinstance(value, bool):
            raise LayoutError(f"{at}: {what}.includes_header must be true or false (does the "
                              f"length count the word's own 4 bytes?), got {value!r}")
        out["includes_header"] = value
    for key in ("max_length", "min_length"):
        if key in node:
            out[key] = _int(node[key], f"{what}.{key}", at, 0 if key == "min_length" else 1)
    return out


def _parse_record_format(doc: dict, path: str, record_length: int,
                         separator: bytes) -> RecordFraming:
    """The layout's ``record_format``, ``rdw``, ``bdw`` and ``extra_bytes`` keys."""
    at = where(path, doc)
    fmt = doc.get("record_format", "F")
    fmt_text = str(fmt).upper() if isinstance(fmt, str) else fmt
    if fmt_text not in RECORD_FORMATS:
        raise LayoutError(f"{at}: record_format must be one of {', '.join(RECORD_FORMATS)}, "
                          f"got {fmt!r}")
    variable = fmt_text in ("V", "VB")
    for key in ("rdw", "extra_bytes") if not variable else ():
        if key in doc:
            raise LayoutError(f"{at}: '{key}' applies to record_format V or VB, not {fmt_text}")
    if "bdw" in doc and fmt_text != "VB":
        raise LayoutError(f"{at}: 'bdw' applies to record_format VB (blocked), not {fmt_text}")
    if not variable:
        return RecordFraming(record_format=fmt_text)
    if separator:
        raise LayoutError(f"{at}: record_format {fmt_text} frames records by their RDWs: "
                          f"record_separator must be none")
    rdw = _descriptor_word(doc["rdw"], path, "rdw", _RDW_KEYS) if "rdw" in doc else {}
    bdw = _descriptor_word(doc["bdw"], path, "bdw", _BDW_KEYS) if "bdw" in doc else {}
    max_length = rdw.get("max_length", record_length)
    min_length = rdw.get("min_length", 1)
    rdw_at = where(path, doc.get("rdw", doc))
    if max_length < record_length:
        raise LayoutError(f"{rdw_at}: rdw.max_length ({max_length}) is below record_length "
                          f"({record_length}): the layout's records could not be read")
    limit = 0xFFFF - (4 if rdw.get("includes_header", True) else 0)
    if max_length > limit:
        raise LayoutError(f"{rdw_at}: a record of {max_length} bytes does not fit an RDW "
                          f"(at most {limit}); record_length / rdw.max_length too large")
    if min_length > max_length:
        raise LayoutError(f"{rdw_at}: rdw.min_length ({min_length}) is above the maximum "
                          f"({max_length})")
    bdw_max = bdw.get("max_length", max(32760, max_length + 8))
    if bdw_max < max_length + 8:
        raise LayoutError(f"{where(path, doc.get('bdw', doc))}: bdw.max_length ({bdw_max}) "
                          f"cannot hold a record of {max_length} bytes with its RDW and BDW")
    extra = doc.get("extra_bytes", "error")
    if extra not in ("error", "ignore"):
        raise LayoutError(f"{at}: extra_bytes must be error or ignore, got {extra!r}")
    if extra == "ignore" and max_length == record_length:
        raise LayoutError(f"{at}: extra_bytes: ignore needs rdw.max_length above "
                          f"record_length (no record can be longer than {record_length})")
    return RecordFraming(record_format=fmt_text,
                         rdw_byte_order=rdw.get("byte_order", "big"),
                         rdw_includes_header=rdw.get("includes_header", True),
                         min_length=min_length, max_length=max_length,
                         bdw_byte_order=bdw.get("byte_order", "big"),
                         bdw_includes_header=bdw.get("includes_header", True),
                         bdw_max_length=bdw_max, extra_bytes=extra)


def encode_code(text: str, encoding: str) -> bytes:
    """A record-type code (ASCII in the layout file) as it is written in the file's encoding."""
    if encoding == "cp932":
        return text.encode("ascii")
    from ikou.kernels import get_encoding

    single = get_encoding(encoding).single
    out = []
    for ch in text:
        if ch not in single:
            raise UnicodeEncodeError(encoding, text, 0, len(text), f"{ch!r} has no single byte")
        out.append(single.index(ch))
    return bytes(out)


def _parse_kind(node, kind_name, path, record_length, record_type, encoding="cp932") -> Kind:
    at = where(path, node)
    ctx = f"kind {kind_name!r}"
    if not isinstance(node, dict):
        raise LayoutError(f"{at}: {ctx} must be a mapping with 'fields'")
    _unknown_keys(node, _KIND_KEYS, at, ctx)

    code = None
    if record_type is not None:
        if "code" not in node:
            raise LayoutError(f"{at}: {ctx} needs a record-type 'code'")
        raw_code = node["code"]
        code_text = str(raw_code)
        if isinstance(raw_code, int) and not isinstance(raw_code, bool):
            code_text = code_text.zfill(record_type[1])
        elif len(code_text) < record_type[1]:
            code_text = code_text.ljust(record_type[1])  # a PIC X code: padded with spaces
        try:
            code_text.encode("ascii")
            code = encode_code(code_text, encoding)
        except UnicodeEncodeError:
            raise LayoutError(f"{at}: {ctx}: record-type code {code_text!r} must be ASCII "
                              f"letters and digits of the file's encoding") from None
        if len(code) != record_type[1]:
            raise LayoutError(
                f"{at}: {ctx}: record-type code {code_text!r} has {len(code)} bytes, "
                f"the record_type field has {record_type[1]}"
            )
    elif "code" in node:
        raise LayoutError(f"{at}: {ctx} has a 'code' but the layout has no 'record_type'")

    fields_doc = node.get("fields")
    if not isinstance(fields_doc, list) or not fields_doc:
        raise LayoutError(f"{at}: {ctx} needs a non-empty list of 'fields'")
    fields: list[Field] = []
    names: set[str] = set()
    for fnode in fields_doc:
        f = _parse_field(fnode, path, ctx, record_length, encoding)
        for produced in _column_names(f):
            if produced in names:
                raise LayoutError(
                    f"{where(path, fnode)}: {ctx}, field {f.name!r}: column name {produced!r} "
                    f"is used twice"
                )
            names.add(produced)
        fields.append(f)

    _check_overlaps(fields, path, ctx)

    count_field = node.get("count_field")
    if count_field is not None:
        if kind_name != "trailer":
            raise LayoutError(f"{at}: {ctx}: only the trailer can have a 'count_field'")
        match = [f for f in fields if f.name == count_field]
        if not match:
            raise LayoutError(f"{at}: {ctx}: count_field {count_field!r} is not a field of the trailer")
        if match[0].type not in COUNT_TYPES:
            raise LayoutError(
                f"{at}: {ctx}: count_field {count_field!r} has type {match[0].type!r}; "
                f"it must be one of {', '.join(COUNT_TYPES)}"
            )
    return Kind(kind_name, code, tuple(fields), count_field, str(node.get("label", "")),
                _structure(node.get("structure"), path))


def _check_overlaps(fields: list[Field], path: str, ctx: str) -> None:
    """Fields must not share bytes, except the items of different REDEFINES alternatives: a
    field with ``redefines: R`` may overlap a field of another alternative of R (key
    ``alternative``) or a field without ``redefines`` (the redefined item's bytes)."""
    def alt(f: Field):
        return None if f.redefines is None else (f.redefines, f.alternative)

    ordered = sorted(fields, key=lambda f: (f.offset, f.end))
    active: list[Field] = []
    for cur in ordered:
        active = [f for f in active if f.end > cur.offset]
        for prev in active:
            a, b = alt(prev), alt(cur)
            if a != b and (a is not None or b is not None):
                continue
            raise LayoutError(
                f"{_at(path, cur.line)}: {ctx}, field {cur.name!r}: bytes "
                f"{cur.offset}-{cur.end - 1} overlap field {prev.name!r} "
                f"(bytes {prev.offset}-{prev.end - 1})"
            )
        active.append(cur)


def _occurs_shrink(doc: dict, path: str) -> bool:
    value = doc.get("occurs_shrink", False)
    if not isinstance(value, bool):
        raise LayoutError(f"{where(path, doc)}: occurs_shrink must be true or false")
    if value and str(doc.get("record_format", "F")).upper() not in ("V", "VB"):
        raise LayoutError(f"{where(path, doc)}: occurs_shrink: records that shrink with their "
                          f"OCCURS … DEPENDING ON counter need record_format V or VB")
    return value


def _shape(doc: dict, path: str) -> str:
    shape = doc.get("shape", "flat")
    if shape not in SHAPES:
        raise LayoutError(f"{where(path, doc)}: shape must be flat or nested, got {shape!r}")
    if shape == "nested" and not (doc.get("structure") or any(
            isinstance(k, dict) and k.get("structure") for k in (doc.get("kinds") or {}).values())):
        raise LayoutError(f"{where(path, doc)}: shape: nested needs a 'structure' (the copybook "
                          f"tree, written by ikou layout import)")
    return shape


def _structure(node, path: str) -> tuple:
    """The copybook tree (``structure:``): kept as given, checked for shape only."""
    if node is None:
        return ()
    if not isinstance(node, list) or not all(isinstance(n, dict) and "name" in n for n in node):
        raise LayoutError(f"{where(path, node)}: 'structure' must be a list of nodes "
                          f"(mappings with a name)")
    return tuple(node)


def _at(path: str, line: int) -> str:
    return f"{path}:{line}" if line else path


def _column_names(f: Field) -> list[str]:
    if f.type == "filler":
        return []
    if f.type == "wareki":
        return [f.name, f.name + "_raw", f.name + "_status"]
    return [f.name]


def _parse_field(node, path, ctx, record_length, encoding="cp932") -> Field:
    at = where(path, node)
    if not isinstance(node, dict):
        raise LayoutError(f"{at}: {ctx}: each field must be a mapping (name, offset, length, type)")
    name = node.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise LayoutError(
            f"{at}: {ctx}: field name {name!r} must be an ASCII identifier starting with a letter"
        )
    fctx = f"{ctx}, field {name!r}"
    for key in ("offset", "length", "type"):
        if key not in node:
            raise LayoutError(f"{at}: {fctx}: '{key}' is required")
    offset = _int(node["offset"], "offset", f"{at}: {fctx}", 0)
    length = _int(node["length"], "length", f"{at}: {fctx}", 1)
    ftype = node["type"]
    known = _known_types()
    if ftype not in known:
        raise LayoutError(
            f"{at}: {fctx}: unknown type {ftype!r} (types: {', '.join(known)})"
        )
    if offset + length > record_length:
        raise LayoutError(
            f"{at}: {fctx}: bytes {offset}-{offset + length - 1} lie outside the record "
            f"(record_length {record_length})"
        )
    if ftype == "date" and length != 8:
        raise LayoutError(f"{at}: {fctx}: a date (YYYYMMDD) has length 8, not {length}")
    if ftype == "wareki" and length not in (7, 8):
        raise LayoutError(
            f"{at}: {fctx}: a wareki date is an era code of 1 or 2 digits + YYMMDD "
            f"(length 7 or 8), not {length}"
        )
    if ftype == "int" and length > 20:
        raise LayoutError(f"{at}: {fctx}: an int field holds at most 20 bytes (int64), not {length}")
    options = {k: v for k, v in node.items() if k not in _FIELD_BASE_KEYS}
    if ftype == "edited" and "picture" in node:
        options["picture"] = node["picture"]  # the kernel formats by the picture
    if ftype in ENCODED_TYPES and encoding != "cp932" and "encoding" not in options:
        options["encoding"] = encoding
    if "encoding" in options and ftype not in ENCODED_TYPES:
        raise LayoutError(f"{at}: {fctx}: a {ftype} field takes no encoding")
    if "encoding" in options:
        from ikou.kernels import EncodingError, canonical_encoding

        try:
            options["encoding"] = canonical_encoding(options["encoding"])
        except EncodingError as exc:
            raise LayoutError(f"{at}: {fctx}: {exc}") from None
    meta = {}
    for key in ("picture", "usage", "redefines", "alternative"):
        if node.get(key) is not None:
            if not isinstance(node[key], (str, int)) or isinstance(node[key], bool):
                raise LayoutError(f"{at}: {fctx}: '{key}' must be a string")
            meta[key] = str(node[key])
    if node.get("values") is not None:
        meta["values"] = node["values"]
    return Field(name, offset, length, ftype, str(node.get("label", "")), options,
                 getattr(node, "line", 0), **meta)


def _known_types() -> tuple[str, ...]:
    """The layout's field types and any the kernel knows besides."""
    from ikou.kernels._decode_common import FIELD_TYPES as KERNEL_TYPES

    return FIELD_TYPES + tuple(t for t in KERNEL_TYPES if t not in FIELD_TYPES)


def _check_with_kernel(layout: Layout) -> None:
    """Let the kernel validate each field's type options, naming the field on error."""
    from ikou.kernels import FieldSpec

    for kind in layout.kinds.values():
        for f in kind.fields:
            try:
                FieldSpec(f.name, offset=f.offset, length=f.length, type=f.type, **f.options)
            except (TypeError, ValueError) as exc:
                raise LayoutError(
                    f"{_at(layout.path, f.line)}: kind {kind.name!r}, field {f.name!r}: {exc}"
                ) from None
