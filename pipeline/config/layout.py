"""Layout files: how a user describes a legacy fixed-length export (see docs/architecture.md §1).

``load_layout(path)`` reads and validates a YAML layout and returns a :class:`Layout`. Every error
is a :class:`LayoutError` whose message names the file (and line), the record kind and the field,
for example::

    juki.layout.yaml:23: kind 'data', field 'birth': bytes 51-58 overlap field 'sex' (bytes 50-50)
"""

from __future__ import annotations

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
    "load_layout",
    "parse_layout",
]


class LayoutError(ConfigError):
    """A layout file is invalid."""


KINDS = ("header", "data", "trailer")
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
             "record_type", "kinds", "fields"}
_KIND_KEYS = {"code", "label", "fields", "count_field"}
_FIELD_BASE_KEYS = {"name", "offset", "length", "type", "label"}


@dataclass(frozen=True)
class Field:
    name: str
    offset: int
    length: int
    type: str
    label: str = ""
    options: dict = field(default_factory=dict)
    line: int = 0

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
            return "data"
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
    """Read and validate a layout YAML file."""
    return parse_layout(load_yaml(path, LayoutError), str(path))


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
    _unknown_keys(doc, _TOP_KEYS, at, "the layout")

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
        if kind_name not in KINDS:
            raise LayoutError(
                f"{where(path, kinds_doc)}: unknown record kind {kind_name!r} "
                f"(kinds: {', '.join(KINDS)})"
            )
    if "data" not in kinds_doc:
        raise LayoutError(f"{where(path, kinds_doc)}: the layout has no 'data' kind")
    if record_type is None and len(kinds_doc) > 1:
        raise LayoutError(
            f"{at}: several record kinds need a 'record_type' field (offset, length) to tell them apart"
        )

    kinds: dict[str, Kind] = {}
    seen_codes: dict[bytes, str] = {}
    for kind_name in KINDS:
        if kind_name not in kinds_doc:
            continue
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
    )
    _check_with_kernel(layout)
    return layout


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

    ordered = sorted(fields, key=lambda f: (f.offset, f.end))
    for prev, cur in zip(ordered, ordered[1:], strict=False):
        if cur.offset < prev.end:
            raise LayoutError(
                f"{_at(path, cur.line)}: {ctx}, field {cur.name!r}: bytes "
                f"{cur.offset}-{cur.end - 1} overlap field {prev.name!r} "
                f"(bytes {prev.offset}-{prev.end - 1})"
            )

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
    return Kind(kind_name, code, tuple(fields), count_field, str(node.get("label", "")))


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
    if ftype not in FIELD_TYPES:
        raise LayoutError(
            f"{at}: {fctx}: unknown type {ftype!r} (types: {', '.join(FIELD_TYPES)})"
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
    return Field(name, offset, length, ftype, str(node.get("label", "")), options, node.line)


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
