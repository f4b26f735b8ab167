"""Comparing ikou's output with the outputs Cobrix's own tests expect.

The expected files (tests/data/cobrix, Apache-2.0, see its README) are Spark ``df.toJSON``
lines written by Cobrix's tests; their conventions (README §2) are applied here to ikou's
rows, never to the expected side:

* nulls are omitted (Spark drops null fields at every level);
* strings are trimmed as the case's ``string_trimming_policy`` says (``both`` is Java's
  ``String.trim()``: every character up to U+0020 at both ends; ``none`` keeps the field);
* integers and decimals compare as exact decimals; COMP-1 compares at float32 precision,
  COMP-2 at float64 (Java's shortest round-trip text);
* field names are the copybook's with ``-`` → ``_``; groups are nested; OCCURS are lists.

ikou decodes each case through the ``ikou decode`` command (in process) from a layout made
by ``ikou layout import``, with the Arrow output nested by the copybook's structure.
"""

from __future__ import annotations

import decimal
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

DATA = Path(__file__).resolve().parents[1] / "data" / "cobrix"


def java_trim(s: str) -> str:
    """Java's ``String.trim()``: strip every character <= U+0020 at both ends."""
    i, j = 0, len(s)
    while i < j and s[i] <= " ":
        i += 1
    while j > i and s[j - 1] <= " ":
        j -= 1
    return s[i:j]


def expected_lines(path: Path) -> list[dict]:
    """JSON Lines (one ``df.toJSON`` row per line), numbers as exact decimals."""
    return [json.loads(line, parse_float=decimal.Decimal)
            for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def expected_objects(path: Path) -> list[dict]:
    """A pretty-printed JSON array, or pretty objects one after another."""
    text = path.read_text(encoding="utf-8").strip()
    if text.startswith("["):
        return json.loads(text, parse_float=decimal.Decimal)
    decoder = json.JSONDecoder(parse_float=decimal.Decimal)
    out, i = [], 0
    while i < len(text):
        obj, end = decoder.raw_decode(text, i)
        out.append(obj)
        i = end
        while i < len(text) and text[i].isspace():
            i += 1
    return out


def float32_names(schema: pa.Schema) -> set[str]:
    """Names of float32 leaves anywhere in ``schema`` (COMP-1)."""
    out: set[str] = set()

    def walk(name: str, t: pa.DataType) -> None:
        if pa.types.is_float32(t):
            out.add(name)
        elif pa.types.is_struct(t):
            for f in t:
                walk(f.name, f.type)
        elif pa.types.is_list(t) or pa.types.is_large_list(t):
            walk(name, t.value_type)

    for f in schema:
        walk(f.name, f.type)
    return out


def common_page(s: str) -> str:
    """Cobrix's default ``common`` code page: only the EBCDIC invariant (printable ASCII)
    characters survive, every other character reads as a space."""
    return "".join(c if " " <= c <= "~" else " " for c in s)


def conventional(value: Any, trim: str = "both", common: bool = False) -> Any:
    """ikou's Python value in the shape of Cobrix's JSON: nulls dropped, strings trimmed (and,
    with ``common``, read through Cobrix's common code page)."""
    if isinstance(value, Mapping):
        return {k: conventional(v, trim, common) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [conventional(v, trim, common) for v in value]
    if isinstance(value, str):
        if common:
            value = common_page(value)
        return java_trim(value) if trim == "both" else value
    return value


def differences(actual: Any, expected: Any, float32: Iterable[str] = (), path: str = "") -> list[str]:
    """Every place where ``actual`` (conventional ikou row) and ``expected`` differ."""
    f32 = set(float32)
    out: list[str] = []
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return [f"{path}: expected an object, got {actual!r}"]
        for k in expected.keys() | actual.keys():
            sub = f"{path}.{k}" if path else k
            if k not in actual:
                out.append(f"{sub}: missing (expected {expected[k]!r})")
            elif k not in expected:
                out.append(f"{sub}: unexpected {actual[k]!r}")
            else:
                out.extend(_one(actual[k], expected[k], f32, sub, k))
        return out
    return _one(actual, expected, f32, path, path)


def _one(a: Any, e: Any, f32: set[str], path: str, name: str) -> list[str]:
    if isinstance(e, (Mapping, list)):
        if isinstance(e, list):
            if not isinstance(a, list) or len(a) != len(e):
                return [f"{path}: expected {len(e)} elements, got {a!r}"]
            out: list[str] = []
            for i, (x, y) in enumerate(zip(a, e, strict=True)):
                out.extend(differences(x, y, f32, f"{path}[{i}]") if isinstance(y, Mapping)
                           else _one(x, y, f32, f"{path}[{i}]", name))
            return out
        return differences(a, e, f32, path)
    if isinstance(a, float):
        want = float(np.float32(float(e))) if name in f32 else float(e)
        return [] if a == want else [f"{path}: {a!r} != {e}"]
    if isinstance(e, decimal.Decimal) or isinstance(a, decimal.Decimal):
        try:
            ok = decimal.Decimal(a) == decimal.Decimal(e)
        except (TypeError, decimal.InvalidOperation):
            ok = False
        return [] if ok else [f"{path}: {a!r} != {e}"]
    if isinstance(e, bool) or isinstance(a, bool) or type(a) is not type(e):
        return [] if a == e and type(a) is type(e) else [f"{path}: {a!r} != {e!r}"]
    return [] if a == e else [f"{path}: {a!r} != {e!r}"]
