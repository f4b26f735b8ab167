"""外字 tables: a municipality's mapping of CP932 user-defined codes to standard characters.

CSV, UTF-8 (a BOM is accepted), header ``sjis,unicode,mj,note`` plus optional extra columns
(``fallback``: a standard character for target systems that cannot take the MJ character or IVS)::

    sjis,unicode,mj,note
    F040,U+9AD9,MJ028902,はしご高
    F041,U+845B U+E0100,,葛 (IVS)

``sjis`` is a user-defined code F040–F9FC (lead byte F0–F9, trail byte 40–7E or 80–FC);
for mainframe files the table names codes in the file's encoding instead: columns ``code`` and
``encoding`` (``code,encoding,unicode,mj,note`` / ``6941,ibm930,U+9AD9,MJ028902,はしご高``), the code
in that encoding's user-defined area (IBM 930/939 6941–7FFE, 1390/1399 6941–89BD, JEF 80A1–A0FE,
KEIS 81A1–A0FE, JIPS 7421–7E7E and E0A1–FEFE); one table may mix rows of several encodings;
``unicode`` one or more code points written ``U+XXXX`` separated by spaces (a base character plus
an optional variation selector). Every problem raises :class:`GaijiError` naming file and line.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from ikou.pipeline.config.yamlio import ConfigError

__all__ = ["GaijiError", "GaijiTable", "is_user_defined", "load_gaiji", "load_gaiji_table"]

REQUIRED_COLUMNS = ("unicode",)
_CODEPOINT = re.compile(r"^U\+([0-9A-Fa-f]{4,6})$")


class GaijiError(ConfigError):
    """A 外字 table is invalid."""


def is_user_defined(code: int) -> bool:
    """True for a CP932 user-defined (外字) code F040–F9FC."""
    lead, trail = code >> 8, code & 0xFF
    return 0xF0 <= lead <= 0xF9 and (0x40 <= trail <= 0x7E or 0x80 <= trail <= 0xFC)


@dataclass
class GaijiTable:
    """The loaded table: ``mapping`` code → string, ``fallback`` code → string (where given),
    ``mj`` code → MJ number (where given). A code is an int for CP932 rows and an
    ``(encoding, code)`` pair for the rows of other encodings."""

    path: str
    mapping: dict[int, str] = field(default_factory=dict)
    fallback: dict[int, str] = field(default_factory=dict)
    mj: dict[int, str] = field(default_factory=dict)

    def for_kernel(self) -> dict[int, str | tuple[str, str]]:
        """code → string, or code → ``(primary, fallback)`` where a fallback is given."""
        return {
            code: (text, self.fallback[code]) if code in self.fallback else text
            for code, text in self.mapping.items()
        }


def _parse_chars(text: str, where: str, column: str) -> str:
    tokens = text.split()
    if not tokens:
        raise GaijiError(f"{where}: column '{column}' is empty")
    chars = []
    for token in tokens:
        m = _CODEPOINT.match(token)
        if not m:
            raise GaijiError(
                f"{where}: column '{column}': {token!r} is not a code point written U+XXXX"
            )
        cp = int(m.group(1), 16)
        if cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
            raise GaijiError(f"{where}: column '{column}': {token} is not a Unicode scalar value")
        if unicodedata.category(chr(cp)) == "Cc":
            raise GaijiError(f"{where}: column '{column}': {token} is a control character")
        chars.append(chr(cp))
    return "".join(chars)


def load_gaiji_table(path: str | Path) -> GaijiTable:
    """Read and validate a 外字 CSV."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise GaijiError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GaijiError(f"{path}: cannot read as UTF-8: {exc}") from None
    reader = csv.reader(text.splitlines())
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise GaijiError(f"{path}: the file is empty (expected a header sjis,unicode,mj,note)") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if "sjis" not in header and "code" not in header:
        missing.insert(0, "sjis (or code and encoding)")
    if "code" in header and "encoding" not in header:
        missing.append("encoding (the code column's encoding)")
    if missing:
        raise GaijiError(f"{path}:1: missing column(s) {', '.join(missing)} in the header")
    table = GaijiTable(str(path))
    col = {name: i for i, name in enumerate(header)}
    first_line: dict[int, int] = {}
    for lineno, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if row[0].lstrip().startswith("#"):
            continue
        where = f"{path}:{lineno}"
        if len(row) > len(header):
            raise GaijiError(f"{where}: {len(row)} columns, the header has {len(header)}")
        row = row + [""] * (len(header) - len(row))
        code = _row_code(row, col, where)
        sjis = f"{code:04X}" if isinstance(code, int) else f"{code[0]} {code[1]:04X}"
        if code in first_line:
            raise GaijiError(f"{where}: code {sjis.upper()} is already mapped on line {first_line[code]}")
        first_line[code] = lineno
        table.mapping[code] = _parse_chars(row[col["unicode"]], where, "unicode")
        if "fallback" in col and row[col["fallback"]].strip():
            table.fallback[code] = _parse_chars(row[col["fallback"]], where, "fallback")
        if "mj" in col and row[col["mj"]].strip():
            mj = row[col["mj"]].strip()
            if not re.match(r"^MJ\d{6}$", mj):
                raise GaijiError(f"{where}: mj {mj!r} is not an MJ character number (MJ + 6 digits)")
            table.mj[code] = mj
    return table


def _row_code(row: list[str], col: dict[str, int], where: str):
    """The row's code: an int (CP932, column ``sjis``) or ``(encoding, code)``."""
    text = row[col["code"]].strip() if "code" in col else ""
    enc_name = row[col["encoding"]].strip() if "encoding" in col else ""
    if not text:
        if "sjis" not in col or not row[col["sjis"]].strip():
            raise GaijiError(f"{where}: no code (column sjis or code)")
        text, enc_name = row[col["sjis"]].strip(), "cp932"
    try:
        code = int(text, 16)
    except ValueError:
        raise GaijiError(f"{where}: code {text!r} is not a hexadecimal code") from None
    from ikou.kernels import EncodingError, canonical_encoding, get_encoding

    try:
        enc = canonical_encoding(enc_name or "cp932")
    except EncodingError as exc:
        raise GaijiError(f"{where}: {exc}") from None
    if enc == "cp932":
        if len(text) != 4 or not is_user_defined(code):
            raise GaijiError(
                f"{where}: sjis {text!r} is not a CP932 user-defined code (F040–F9FC, trail byte "
                f"40–7E or 80–FC)"
            )
        return code
    e = get_encoding(enc)
    if not e.mixed or len(text) != 4 or not e.user(code):
        raise GaijiError(f"{where}: code {text!r} is not in the user-defined (外字) area of {e.base}")
    return (e.base, code)


def load_gaiji(path: str | Path | None) -> dict[int, str | tuple[str, str]]:
    """A 外字 CSV as the decoding kernel takes it (empty for ``None``): code → string, or
    code → ``(primary, fallback)`` for rows with a ``fallback`` character. Which of the two a
    run writes is chosen by ``DecodePlan(gaiji_fallback=...)`` and per field."""
    if path is None:
        return {}
    return load_gaiji_table(path).for_kernel()
