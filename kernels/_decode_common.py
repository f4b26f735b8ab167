"""What the compiled kernel (``_decode``) and its pure-Python twin (``_decode_py``) share.

Constants, error codes, the field specification and the decode plan, the result
containers, the CP932 text tables (built once from CPython's own ``cp932`` codec) and
``format_error``.  Neither implementation defines any of these twice.
"""

from __future__ import annotations

import codecs
import datetime as _dt
import functools
import re
import threading
import unicodedata
from enum import IntEnum
from typing import Any

import numpy as np
import pyarrow as pa

from . import _compute as _ac
from ._encodings import EncodingError, canonical_encoding, get_encoding

__all__ = [
    "BlockError",
    "DecodeErrors",
    "DecodePlan",
    "DecodeResult",
    "ErrorCode",
    "FieldSpec",
    "PlanError",
    "WAREKI_STATUSES",
    "format_error",
    "format_errors",
]


class PlanError(ValueError):
    """A field specification or decode plan is invalid."""


class BlockError(ValueError):
    """The buffer or record starts given to ``decode_block`` are unusable."""


class ErrorCode(IntEnum):
    """Per-field decode errors reported in ``DecodeErrors.code``."""

    INVALID_BYTES = 1  # a CP932 lead byte whose trail byte makes no character
    CUT_DOUBLE_BYTE = 2  # a lead byte is the last byte of the field
    UNMAPPED_GAIJI = 3  # a user-defined code F040-F9FC with no row in the 外字 table
    NOT_DIGITS = 4  # a byte (or packed nibble) that is not a digit where one is required
    INT_OVERFLOW = 5  # the number does not fit int64
    IMPOSSIBLE_DATE = 6  # a `date` field that is not a calendar date
    INVALID_SIGN = 7  # a zoned/packed sign that is invalid (or negative in an unsigned field)
    BLANK_VALUE = 8  # an all-space field where the field's `blank` policy is `error`
    LOW_VALUE = 9  # an all-0x00 field where the field's `low_value` policy is `error`
    HIGH_VALUE = 10  # an all-0xFF field where the field's `high_value` policy is `error`
    # mainframe encodings (EBCDIC, IBM 930/939/1390/1399, JEF, KEIS, JIPS)
    INVALID_DBCS = 11  # a double-byte code that is no character of the encoding
    UNASSIGNED_BYTE = 12  # a single byte the encoding does not assign
    ODD_DBCS_BYTES = 13  # one byte left before a shift-out: an odd number of double-byte bytes
    UNTERMINATED_SHIFT = 14  # the field ends in double-byte state (no shift-out)
    SHIFT_IN_DBCS = 15  # a shift sequence inside a double-byte-only (dbcs) field
    UNMAPPABLE_CODE = 16  # a code the encoding's table lists but cannot map to Unicode
    INVALID_SHIFT = 17  # the first byte of a two-byte shift sequence without its second byte
    # COBOL types (float, binary digits, national)
    FLOAT_RANGE = 18  # an IBM hexadecimal float outside float32's range (or not exact in it)
    NOT_FINITE = 19  # an IEEE 754 float that is NaN or an infinity
    UNPAIRED_SURROGATE = 20  # a UTF-16 surrogate code unit without its partner
    DIGITS_OVERFLOW = 21  # a binary number with more digits than the field's `digits`


_CODE_TEXT = {
    ErrorCode.INVALID_BYTES: "invalid CP932 byte sequence",
    ErrorCode.CUT_DOUBLE_BYTE: "double-byte character cut by the field end",
    ErrorCode.UNMAPPED_GAIJI: "user-defined character (外字) not in the 外字 table",
    ErrorCode.NOT_DIGITS: "not a digit",
    ErrorCode.INT_OVERFLOW: "number does not fit int64",
    ErrorCode.IMPOSSIBLE_DATE: "not a calendar date",
    ErrorCode.INVALID_SIGN: "invalid sign",
    ErrorCode.BLANK_VALUE: "blank field not allowed",
    ErrorCode.LOW_VALUE: "LOW-VALUE (0x00) field not allowed",
    ErrorCode.HIGH_VALUE: "HIGH-VALUE (0xFF) field not allowed",
    ErrorCode.INVALID_DBCS: "invalid double-byte code",
    ErrorCode.UNASSIGNED_BYTE: "unassigned single-byte code",
    ErrorCode.ODD_DBCS_BYTES: "odd number of double-byte bytes before the shift-out",
    ErrorCode.UNTERMINATED_SHIFT: "field ends in double-byte state (shift-in without shift-out)",
    ErrorCode.SHIFT_IN_DBCS: "shift code inside a double-byte-only field",
    ErrorCode.UNMAPPABLE_CODE: "code the encoding's table cannot map",
    ErrorCode.INVALID_SHIFT: "incomplete shift sequence",
    ErrorCode.FLOAT_RANGE: "floating-point number outside the float32 range",
    ErrorCode.NOT_FINITE: "floating-point number is NaN or infinite",
    ErrorCode.UNPAIRED_SURROGATE: "UTF-16 surrogate without its pair",
    ErrorCode.DIGITS_OVERFLOW: "number has more digits than the field's digits",
}

# Field types and their type codes (shared with the compiled kernel).
TYPE_CODES = {
    "text": 1,
    "digits": 2,
    "int": 3,
    "date": 4,
    "wareki": 5,
    "filler": 6,
    "zoned": 7,
    "packed": 8,
    "decimal": 9,
    "bytes": 10,
    "dbcs": 11,
    "binary": 12,
    "float": 13,
    "edited": 14,
    "national": 15,
}
FIELD_TYPES = tuple(TYPE_CODES)

# on_error policies
ON_ERROR = {"reject": 0, "null": 1, "replace": 2}
# blank / low_value / high_value policies
POLICY = {"decode": 0, "null": 1, "empty": 2, "error": 3}
TRIM = {"none": 0, "left": 1, "right": 2, "both": 3}
ZONES = {"ascii": 0, "ebcdic": 1}
SHIFT_STATES = ("single", "double")
EBCDIC_DIGIT_TYPES = frozenset({"digits", "int", "date", "wareki", "decimal"})
# EBCDIC → ASCII for numeric fields: digits F0-F9, space 40, + 4E, - 60; 00 and FF kept (LOW- /
# HIGH-VALUE); every other byte → 0x80, which no numeric syntax accepts (errors report the
# original byte).
EBCDIC_DIGIT_MAP = bytes(
    0x30 + (b - 0xF0) if 0xF0 <= b <= 0xF9 else
    {0x40: 0x20, 0x4E: 0x2B, 0x60: 0x2D, 0x00: 0x00, 0xFF: 0xFF}.get(b, 0x80)
    for b in range(256))
BINARY_LENGTHS = {2: 5, 4: 10, 8: 19}  # bytes -> decimal digits (precision of a scaled value)
# most `digits` (PIC digit count) a binary field of that many bytes holds in full (10**N - 1
# fits): 2 bytes 9(4), 4 bytes 9(9), 8 bytes 9(18) (unsigned 9(19))
BINARY_MAX_DIGITS = {2: 4, 4: 9, 8: 18}
BYTE_ORDERS = ("big", "little")
FLOAT_FORMATS = ("ibm", "ieee")
SIGN_POSITIONS = ("trailing", "leading")
EDITED_BLANK = ("null", "error", "zero")
# Numeric-edited fields in an EBCDIC encoding: the invariant EBCDIC bytes of a picture's
# characters (digits, space + - . , * $ / C R D B) → ASCII; every other byte → 0x80.
EDITED_EBCDIC_MAP = bytes(
    0x30 + (b - 0xF0) if 0xF0 <= b <= 0xF9 else
    {0x40: 0x20, 0x4E: 0x2B, 0x60: 0x2D, 0x4B: 0x2E, 0x6B: 0x2C, 0x5C: 0x2A, 0x5B: 0x24,
     0x61: 0x2F, 0xC3: 0x43, 0xD9: 0x52, 0xC4: 0x44, 0xC2: 0x42, 0x00: 0x00, 0xFF: 0xFF}.get(b, 0x80)
    for b in range(256))

# Numeric-edited picture positions (one op a byte; shared by both implementations).
ED_DIGIT = 1  # 9: a digit
ED_Z = 2  # Z: a digit, or a space before the first digit
ED_STAR = 3  # *: a digit, or * before the first digit
ED_LIT = 4  # insertion character (. , B 0 / $): the literal, or the fill before the first digit
ED_POINT = 5  # the decimal point (as ED_LIT; a filled point leaves only fill after it)
ED_PLUS = 6  # fixed +: + or -
ED_MINUS = 7  # fixed -: space or -
ED_CR = 8  # CR (2 bytes): CR or two spaces
ED_DB = 9  # DB (2 bytes): DB or two spaces
ED_NEXT = 10  # second byte of CR / DB
ED_FLOAT_HEAD = 11  # first symbol of a floating + - $ string: space or the symbol
ED_FLOAT = 12  # later symbols of a floating string: space, the symbol (once), or a digit


def _expand_picture(pic: str) -> str:
    """``Z(8)-`` → ``ZZZZZZZZ-``; CR / DB kept as they are."""
    out = []
    i = 0
    while i < len(pic):
        c = pic[i]
        if c == "(":
            j = pic.find(")", i)
            if j < 0 or not out or not pic[i + 1:j].isdigit() or int(pic[i + 1:j]) < 1:
                raise PlanError(f"picture {pic!r}: bad repetition at {i}")
            n = int(pic[i + 1:j])
            if n > 100:
                raise PlanError(f"picture {pic!r}: repetition {n} too long")
            out.append(out[-1] * (n - 1))
            i = j + 1
            continue
        out.append(c)
        i += 1
    return "".join(out)


def parse_picture(pic: Any) -> tuple[bytes, bytes, bytes, int, int, int, int]:
    """A numeric-edited picture → (ops, literals, fills, digits, scale, float_end, float_kind).

    One op a byte of the field (``ED_*``); ``literals`` the ASCII byte an insertion / floating
    position shows; ``fills`` the byte such a position shows before the first digit (0: none);
    ``float_end`` the index of the last floating position (-1: none); ``float_kind`` its
    symbol (+, - or $; 0: none).
    """
    if not isinstance(pic, str) or not pic or not pic.isascii():
        raise PlanError(f"picture must be a non-empty ASCII string, got {pic!r}")
    return _parse_picture(pic)


@functools.lru_cache(maxsize=512)
def _parse_picture(pic: str) -> tuple[bytes, bytes, bytes, int, int, int, int]:
    s = _expand_picture(pic.upper().replace(" ", ""))
    if s.count("V") + s.count(".") > 1:
        raise PlanError(f"picture {pic!r}: more than one decimal point (. or V)")
    bad = set(s) - set("9Z*+-.,B0/$VCRDB")
    if bad or s.replace("CR", "").replace("DB", "").count("C") or (
            s.replace("CR", "").replace("DB", "").strip("9Z*+-.,B0/$V")):
        raise PlanError(f"picture {pic!r}: only 9 Z * + - . , B 0 / $ V CR DB are allowed")
    if "Z" in s and "*" in s:
        raise PlanError(f"picture {pic!r}: Z and * together")
    signs = [k for k in ("+", "-", "CR", "DB") if k in s]
    if len(signs) > 1:
        raise PlanError(f"picture {pic!r}: more than one kind of sign")
    # floating string: a run of 2 or more of + - $ (the symbol repeated)
    float_kind = 0
    # (insertion characters , B 0 / may stand inside it)
    runs = list(re.finditer(r"\+(?:[,B0/]*\+)+|-(?:[,B0/]*-)+|\$(?:[,B0/]*\$)+", s))
    if len(runs) > 1:
        raise PlanError(f"picture {pic!r}: more than one floating string")
    if runs and ("Z" in s or "*" in s):
        raise PlanError(f"picture {pic!r}: floating insertion with Z or *")
    fr = runs[0].span() if runs else (-1, -1)
    if runs:
        float_kind = ord(runs[0].group()[0])
    ops, lits, fills = [], [], []
    digits = scale = 0
    after_point = False
    suppress = 0  # fill of insertion characters: space after Z / floating, * after *
    i = 0
    for i, c in enumerate(s):
        if c == "V":
            after_point = True
            continue
        if fr[0] <= i < fr[1] and ord(c) == float_kind:
            op = ED_FLOAT_HEAD if i == fr[0] else ED_FLOAT
            ops.append(op)
            lits.append(ord(c))
            fills.append(0x20)
            suppress = 0x20
            if op == ED_FLOAT:
                digits += 1
                scale += after_point
            continue
        if c in "+-":
            if i not in (0, len(s) - 1):
                raise PlanError(f"picture {pic!r}: a sign symbol must be first or last")
            ops.append(ED_PLUS if c == "+" else ED_MINUS)
            lits.append(ord(c))
            fills.append(0)
            continue
        if c in "CD" and s[i:i + 2] in ("CR", "DB"):
            if i != len(s) - 2:
                raise PlanError(f"picture {pic!r}: CR / DB must be last")
            ops.append(ED_CR if c == "C" else ED_DB)
            lits.append(ord(c))
            fills.append(0)
            continue
        if c in "RB" and ops and ops[-1] in (ED_CR, ED_DB) and s[i - 1:i + 1] in ("CR", "DB"):
            ops.append(ED_NEXT)
            lits.append(ord(c))
            fills.append(0)
            continue
        if c in "9Z*":
            ops.append({"9": ED_DIGIT, "Z": ED_Z, "*": ED_STAR}[c])
            lits.append(0x30)
            fills.append({"9": 0, "Z": 0x20, "*": 0x2A}[c])
            if c != "9":
                suppress = 0x20 if c == "Z" else 0x2A
            digits += 1
            scale += after_point
            continue
        # insertion characters
        ops.append(ED_POINT if c == "." else ED_LIT)
        lits.append({"B": 0x20}.get(c, ord(c)))
        fills.append(suppress)
        if c == ".":
            after_point = True
    if digits < 1:
        raise PlanError(f"picture {pic!r}: no digit positions")
    if digits > MAX_PRECISION:
        raise PlanError(f"picture {pic!r}: more than {MAX_PRECISION} digits")
    n_signs = sum(o in (ED_PLUS, ED_MINUS, ED_CR, ED_DB) for o in ops) + (
        1 if float_kind in (0x2B, 0x2D) else 0)
    if n_signs > 1:
        raise PlanError(f"picture {pic!r}: more than one sign")
    float_end = max(j for j, o in enumerate(ops) if o in (ED_FLOAT, ED_FLOAT_HEAD)) if runs else -1
    return bytes(ops), bytes(lits), bytes(fills), digits, scale, float_end, float_kind


def decimal_type(digits: int, scale: int) -> pa.DataType:
    """Arrow type of a number of ``digits`` digits with ``scale`` implied decimal places:
    a negative scale (COBOL ``9(5)PPP``: ×1000) gives decimal128(digits − scale, 0); a scale
    above the digit count (``PPP9(5)``) decimal128(scale, scale)."""
    if scale < 0:
        return pa.decimal128(digits - scale, 0)
    return pa.decimal128(max(digits, scale), scale)

WAREKI_STATUSES = ("valid", "out_of_era", "impossible", "unknown", "blank")
ST_VALID, ST_OUT_OF_ERA, ST_IMPOSSIBLE, ST_UNKNOWN, ST_BLANK = range(5)

# era code -> (start, end or None, base year); year = base + YY - 1; start/end inclusive.
DEFAULT_ERAS = {
    1: ("1868-01-25", "1912-07-30", 1868),  # 明治
    2: ("1912-07-30", "1926-12-25", 1912),  # 大正
    3: ("1926-12-25", "1989-01-07", 1926),  # 昭和
    4: ("1989-01-08", "2019-04-30", 1989),  # 平成
    5: ("2019-05-01", None, 2019),  # 令和
}
DEFAULT_UNKNOWN = ("000000", "999999")
EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()
MAX_DAY = 2**31 - 1

# Largest precision of Arrow decimal128.
MAX_PRECISION = 38

# Which options each field type accepts, with defaults.
_COMMON_DEFAULTS = {"on_error": "reject"}
_TEXT_OPTIONS = {
        "encoding": "cp932",
        "replacement": None,
        "gaiji_fallback": None,
        "kana_widen": False,
        "ascii_narrow": False,
        "trim": "right",
        "blank": "empty",
        "low_value": "decode",
        "high_value": "decode",
}
_TYPE_OPTIONS: dict[str, dict[str, Any]] = {
    "text": {**_TEXT_OPTIONS, "shift_state": "single"},
    "dbcs": dict(_TEXT_OPTIONS),
    "digits": {"blank": "null", "low_value": "null", "high_value": "null", "encoding": "cp932"},
    "int": {"blank": "null", "low_value": "null", "high_value": "null", "signed": True,
            "encoding": "cp932"},
    "binary": {"signed": True, "scale": 0, "byte_order": "big", "digits": None},
    "float": {"format": "ibm", "byte_order": "big"},
    "edited": {"picture": None, "encoding": "cp932", "blank": "null", "low_value": "null",
               "high_value": "null", "free_form": False},
    "national": {"byte_order": "big", "trim": "right", "blank": "empty", "low_value": "decode",
                 "high_value": "decode"},
    "decimal": {
        "encoding": "cp932",
        "blank": "null",
        "low_value": "null",
        "high_value": "null",
        "signed": True,
        "scale": 0,
    },
    "zoned": {
        "blank": "null",
        "low_value": "null",
        "high_value": "null",
        "signed": True,
        "scale": 0,
        "zone": "ascii",
        "sign_position": "trailing",
        "sign_separate": False,
        "strict_sign": False,
    },
    "packed": {
        "blank": "null",
        "low_value": "null",
        "high_value": "null",
        "signed": True,
        "scale": 0,
    },
    "date": {"blank": "null", "low_value": "null", "high_value": "null", "encoding": "cp932"},
    "wareki": {
        "encoding": "cp932",
        "blank": "null",
        "low_value": "null",
        "high_value": "null",
        "eras": None,
        "unknown": DEFAULT_UNKNOWN,
        "unknown_zero_parts": True,
    },
    "bytes": {"blank": "decode", "low_value": "decode", "high_value": "decode"},
    "filler": {},
}
# Policies each type allows for blank / low_value / high_value.
_ALLOWED_POLICIES = {
    "text": {"blank": ("empty", "null", "error"), "other": ("decode", "empty", "null", "error")},
    "dbcs": {"blank": ("empty", "null", "error"), "other": ("decode", "empty", "null", "error")},
    "national": {"blank": ("empty", "null", "error"),
                 "other": ("decode", "empty", "null", "error")},
    "edited": {"blank": EDITED_BLANK, "other": ("null", "error")},
    "digits": {"blank": ("null", "empty", "error"), "other": ("null", "empty", "error")},
    "bytes": {"blank": ("decode", "empty", "null", "error"),
              "other": ("decode", "empty", "null", "error")},
}
_NUMERIC_POLICIES = {"blank": ("null", "error"), "other": ("null", "error")}


def _is_bool(v: Any) -> bool:
    return isinstance(v, (bool, np.bool_))


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not _is_bool(v)


def _to_date(value: Any, what: str) -> _dt.date:
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise PlanError(f"{what} must be a date (YYYY-MM-DD), got {value!r}")


def _normalise_eras(eras: Any) -> tuple[tuple[int, int, int, int], ...]:
    """Era table → sorted tuple of (code, start_day, end_day, base_year), days since epoch."""
    if eras is None:
        eras = DEFAULT_ERAS
    if not isinstance(eras, dict) or not eras:
        raise PlanError("eras must be a non-empty mapping of era code -> {start, end, base}")
    out = []
    for code, spec in eras.items():
        if not _is_int(code) or not 0 <= int(code) <= 99:
            raise PlanError(f"era code must be an integer 0..99, got {code!r}")
        if isinstance(spec, dict):
            unknown = set(spec) - {"start", "end", "base", "name"}
            if unknown:
                raise PlanError(f"era {code}: unknown keys {sorted(unknown)}")
            if "start" not in spec:
                raise PlanError(f"era {code}: 'start' is required")
            start, end, base = spec["start"], spec.get("end"), spec.get("base")
        elif isinstance(spec, (tuple, list)) and len(spec) in (2, 3):
            start, end = spec[0], spec[1]
            base = spec[2] if len(spec) == 3 else None
        else:
            raise PlanError(f"era {code}: expected {{start, end, base}} or (start, end[, base])")
        start_d = _to_date(start, f"era {code} start")
        end_d = None if end is None else _to_date(end, f"era {code} end")
        if end_d is not None and end_d < start_d:
            raise PlanError(f"era {code}: end before start")
        if base is None:
            base = start_d.year
        if not _is_int(base) or not 1 <= int(base) <= 9999 - 98:
            raise PlanError(f"era {code}: base year must be an integer 1..9901, got {base!r}")
        out.append((
            int(code),
            start_d.toordinal() - EPOCH_ORDINAL,
            MAX_DAY if end_d is None else end_d.toordinal() - EPOCH_ORDINAL,
            int(base),
        ))
    return tuple(sorted(out))


class FieldSpec:
    """One field of a fixed-length record: ``FieldSpec(name, offset=, length=, type=, **options)``.

    Validates its options and raises :class:`PlanError` (a ``ValueError``) with a message
    that names the option (the layout loader adds file, kind and field context).
    ``options`` holds every option with its default filled in.
    """

    __slots__ = ("name", "offset", "length", "type", "options")

    def __init__(self, name: str, offset: int, length: int, type: str, **options: Any):  # noqa: A002
        if not isinstance(name, str) or not name.isascii() or not name.isidentifier():
            raise PlanError(f"field name must be an ASCII identifier, got {name!r}")
        if name.startswith("_"):
            raise PlanError(f"field name must not start with '_': {name!r}")
        if not _is_int(offset) or offset < 0:
            raise PlanError(f"offset must be an integer >= 0, got {offset!r}")
        if not _is_int(length) or length < 1:
            raise PlanError(f"length must be an integer >= 1, got {length!r}")
        if type not in TYPE_CODES:
            raise PlanError(f"unknown field type {type!r} (expected one of {', '.join(FIELD_TYPES)})")
        self.name = name
        self.offset = int(offset)
        self.length = int(length)
        self.type = type
        self.options = self._check_options(options)

    # -- validation -------------------------------------------------------------------------
    def _check_options(self, given: dict[str, Any]) -> dict[str, Any]:
        t = self.type
        defaults = dict(_TYPE_OPTIONS[t])
        if t != "filler":
            defaults.update(_COMMON_DEFAULTS)
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            allowed = ", ".join(sorted(defaults)) or "none"
            raise PlanError(f"unknown option(s) {', '.join(unknown)} for type {t} (allowed: {allowed})")
        opts = {**defaults, **given}
        for key in ("on_error", "blank", "low_value", "high_value"):
            if key in given and given[key] is None:
                opts[key] = "null"  # YAML `blank: null` arrives as None
        n = self.length

        if "on_error" in opts:
            v = opts["on_error"]
            if v not in ON_ERROR:
                raise PlanError(f"on_error must be reject, null or replace, got {v!r}")
            if v == "replace" and t not in ("text", "dbcs"):
                raise PlanError("on_error: replace is only for text fields (use reject or null)")
        if "encoding" in opts:
            try:
                opts["encoding"] = canonical_encoding(opts["encoding"])
            except EncodingError as exc:
                raise PlanError(str(exc)) from None
            mixed = get_encoding(opts["encoding"]).mixed if opts["encoding"] != "cp932" else False
            if t == "dbcs" and not mixed:
                raise PlanError(f"a dbcs field needs a double-byte encoding, not {opts['encoding']}")
            if t == "text":
                if opts["shift_state"] not in SHIFT_STATES:
                    raise PlanError(f"shift_state must be single or double, got {opts['shift_state']!r}")
                if opts["shift_state"] == "double" and not mixed:
                    raise PlanError(f"shift_state: double needs an encoding with shift codes, "
                                    f"not {opts['encoding']}")
        if t == "binary":
            if n not in BINARY_LENGTHS:
                raise PlanError(f"a binary field has 2, 4 or 8 bytes, not {n}")
            dg = opts["digits"]
            if dg is not None:
                most = BINARY_MAX_DIGITS[n] + (1 if n == 8 and opts["signed"] is False else 0)
                if not _is_int(dg) or not 1 <= dg <= most:
                    raise PlanError(f"digits must be an integer 1..{most} for a {n}-byte "
                                    f"binary field, got {dg!r}")
                opts["digits"] = int(dg)
        if "byte_order" in opts and opts["byte_order"] not in BYTE_ORDERS:
            raise PlanError(f"byte_order must be big or little, got {opts['byte_order']!r}")
        if t == "float":
            if n not in (4, 8):
                raise PlanError(f"a float field has 4 bytes (COMP-1) or 8 (COMP-2), not {n}")
            if opts["format"] not in FLOAT_FORMATS:
                raise PlanError(f"format must be ibm or ieee, got {opts['format']!r}")
        if t == "national":
            if n % 2:
                raise PlanError(f"a national (UTF-16) field has an even length, not {n}")
            if opts["trim"] not in TRIM:
                raise PlanError(f"trim must be none, left, right or both, got {opts['trim']!r}")
        if t == "zoned":
            if opts["sign_position"] not in SIGN_POSITIONS:
                raise PlanError(f"sign_position must be trailing or leading, "
                                f"got {opts['sign_position']!r}")
            for key in ("sign_separate", "strict_sign"):
                if not _is_bool(opts[key]):
                    raise PlanError(f"{key} must be true or false, got {opts[key]!r}")
                opts[key] = bool(opts[key])
            if opts["sign_separate"] and n < 2:
                raise PlanError("a zoned field with a separate sign has at least 2 bytes")
        if t == "edited":
            if opts["picture"] is None:
                raise PlanError("an edited field needs its picture (option picture)")
            parsed = parse_picture(opts["picture"])
            if len(parsed[0]) != n:
                raise PlanError(f"picture {opts['picture']!r} has {len(parsed[0])} positions, "
                                f"the field {n} bytes")
            if not _is_bool(opts["free_form"]):
                raise PlanError(f"free_form must be true or false, got {opts['free_form']!r}")
            opts["free_form"] = bool(opts["free_form"])
        if t in ("text", "dbcs"):
            r = opts["replacement"]
            if r is not None and (not isinstance(r, str) or r == "" or len(r) > 8):
                raise PlanError(f"replacement must be a string of 1..8 characters, got {r!r}")
            if r is not None:
                try:
                    r.encode("utf-8")
                except UnicodeEncodeError as exc:
                    raise PlanError("replacement is not valid Unicode") from exc
            if opts["on_error"] == "replace" and r is None:
                raise PlanError("on_error: replace needs a replacement character (option replacement)")
            gf = opts["gaiji_fallback"]
            if gf is not None and not _is_bool(gf):
                raise PlanError(f"gaiji_fallback must be true or false, got {gf!r}")
            for key in ("kana_widen", "ascii_narrow"):
                if not _is_bool(opts[key]):
                    raise PlanError(f"{key} must be true or false, got {opts[key]!r}")
                opts[key] = bool(opts[key])
            if opts["trim"] not in TRIM:
                raise PlanError(f"trim must be none, left, right or both, got {opts['trim']!r}")
        if "signed" in opts:
            if not _is_bool(opts["signed"]):
                raise PlanError(f"signed must be true or false, got {opts['signed']!r}")
            opts["signed"] = bool(opts["signed"])
        if "zone" in opts and opts["zone"] not in ZONES:
            raise PlanError(f"zone must be ascii or ebcdic, got {opts['zone']!r}")
        if t in ("zoned", "packed", "decimal", "binary"):
            prec = _digits(t, n, opts)
            if prec > MAX_PRECISION or prec < 1:
                limit = {"packed": 19}.get(t, MAX_PRECISION)
                raise PlanError(f"length {n} too long for {t} (at most {limit} bytes)")
            s = opts["scale"]
            if not _is_int(s) or not prec - MAX_PRECISION <= s <= MAX_PRECISION:
                raise PlanError(f"scale must be an integer {prec - MAX_PRECISION}..{MAX_PRECISION} "
                                f"(negative: COBOL P scaling, x 10**-scale), got {s!r}")
            opts["scale"] = int(s)
        if t == "date" and n != 8:
            raise PlanError(f"date fields are YYYYMMDD: length must be 8, got {n}")
        if t == "wareki":
            if n not in (7, 8):
                raise PlanError(f"wareki fields are era code (1 or 2 digits) + YYMMDD: length must be 7 or 8, got {n}")
            opts["eras"] = _normalise_eras(opts["eras"])
            if n == 7 and any(code > 9 for code, *_ in opts["eras"]):
                raise PlanError("a 1-digit era code field cannot use era codes above 9")
            markers = opts["unknown"]
            if isinstance(markers, str) or not isinstance(markers, (list, tuple)):
                raise PlanError(f"unknown must be a list of 6-character YYMMDD markers, got {markers!r}")
            for m in markers:
                if not isinstance(m, str) or len(m) != 6 or not m.isascii() or not all(
                    c.isdigit() or c == " " for c in m
                ):
                    raise PlanError(f"unknown marker must be 6 ASCII digits or spaces, got {m!r}")
            opts["unknown"] = tuple(markers)
            if not _is_bool(opts["unknown_zero_parts"]):
                raise PlanError("unknown_zero_parts must be true or false")
            opts["unknown_zero_parts"] = bool(opts["unknown_zero_parts"])
        for key in ("blank", "low_value", "high_value"):
            if key not in opts:
                continue
            allowed = _ALLOWED_POLICIES.get(t, _NUMERIC_POLICIES)
            choices = allowed["blank" if key == "blank" else "other"]
            if opts[key] not in choices:
                raise PlanError(f"{key} must be one of {', '.join(choices)} for type {t}, got {opts[key]!r}")
        return opts

    # -- derived ---------------------------------------------------------------------------
    @property
    def precision(self) -> int:
        """Digits of a number field (its unscaled value has at most this many)."""
        return _digits(self.type, self.length, self.options)

    @property
    def scale(self) -> int:
        """Implied decimal places of a number field (negative: P scaling, x 10**-scale)."""
        if self.type == "edited":
            return parse_picture(self.options["picture"])[4]
        return self.options.get("scale", 0)

    @property
    def encoding(self) -> str:
        return self.options.get("encoding", "cp932")

    @property
    def ebcdic_digits(self) -> bool:
        """Digits, spaces and signs of this numeric field are EBCDIC (F0-F9, 40, 4E, 60)."""
        return self.type in EBCDIC_DIGIT_TYPES and self.encoding != "cp932"

    def output_fields(self) -> list[pa.Field]:
        """Arrow fields this spec produces (none for a filler)."""
        t = self.type
        if t == "filler":
            return []
        if t in ("text", "digits", "dbcs"):
            return [pa.field(self.name, pa.string())]
        if t == "binary":
            if self.options["scale"] == 0:
                return [pa.field(self.name, pa.int64())]
            return [pa.field(self.name, decimal_type(self.precision, self.options["scale"]))]
        if t == "float":
            return [pa.field(self.name, pa.float32() if self.length == 4 else pa.float64())]
        if t == "national":
            return [pa.field(self.name, pa.string())]
        if t == "edited":
            return [pa.field(self.name, decimal_type(self.precision, self.scale))]
        if t == "bytes":
            return [pa.field(self.name, pa.binary())]
        if t == "int":
            return [pa.field(self.name, pa.int64())]
        if t == "date":
            return [pa.field(self.name, pa.date32())]
        if t in ("zoned", "packed", "decimal"):
            return [pa.field(self.name, decimal_type(self.precision, self.options["scale"]))]
        # wareki
        return [
            pa.field(self.name, pa.date32()),
            pa.field(self.name + "_raw", pa.string()),
            pa.field(self.name + "_status", pa.dictionary(pa.int8(), pa.string())),
        ]

    def __repr__(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.options.items() if v != self._default(k))
        return f"FieldSpec({self.name!r}, offset={self.offset}, length={self.length}, type={self.type!r}{opts})"

    def _default(self, key: str) -> Any:
        d = {**_COMMON_DEFAULTS, **_TYPE_OPTIONS[self.type]}.get(key)
        if key == "on_error" and self.type == "filler":
            return None
        if key == "eras":
            return _normalise_eras(None)
        return d

    def given_options(self) -> dict[str, Any]:
        """Options that differ from the defaults (what pickling ships)."""
        return {k: v for k, v in self.options.items() if v != self._default(k)}

    def __reduce__(self):
        opts = self.given_options()
        if "eras" in opts:  # normalised form -> re-acceptable form
            opts["eras"] = {
                c: (_dt.date.fromordinal(s + EPOCH_ORDINAL).isoformat(),
                    None if e == MAX_DAY else _dt.date.fromordinal(e + EPOCH_ORDINAL).isoformat(), b)
                for c, s, e, b in opts["eras"]
            }
        return (_make_field, (self.name, self.offset, self.length, self.type, opts))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldSpec):
            return NotImplemented
        return (self.name, self.offset, self.length, self.type, self.options) == (
            other.name, other.offset, other.length, other.type, other.options)

    __hash__ = None  # type: ignore[assignment]


def _digits(t: str, n: int, opts: dict) -> int:
    """Digit count of a number field of type t and n bytes with options opts."""
    if t == "packed":
        return 2 * n - 1
    if t == "binary":
        if opts.get("digits") is not None:
            return opts["digits"]
        return BINARY_LENGTHS.get(n, 1) + (1 if n == 8 and opts.get("signed") is False else 0)
    if t == "zoned":
        return n - (1 if opts.get("sign_separate") else 0)
    if t == "edited":
        return parse_picture(opts["picture"])[3]
    return n


def _make_field(name, offset, length, type_, options):
    return FieldSpec(name, offset=offset, length=length, type=type_, **options)


def _check_gaiji(gaiji: Any) -> dict[int, tuple[str, str]]:
    """{code: str | (primary, fallback)} → {code: (primary, fallback)}."""
    if gaiji is None:
        return {}
    if not isinstance(gaiji, dict):
        raise PlanError("gaiji must be a mapping of user-defined code -> string")
    out: dict = {}
    for code, value in gaiji.items():
        if isinstance(code, tuple) and len(code) == 2 and _is_int(code[1]):
            try:
                enc = get_encoding(canonical_encoding(code[0]))
            except EncodingError as exc:
                raise PlanError(f"gaiji {code!r}: {exc}") from None
            if not enc.mixed or not enc.user(int(code[1])):
                raise PlanError(f"gaiji code {int(code[1]):04X} is not in the user-defined area "
                                f"of {enc.base}")
            key: Any = (enc.base, int(code[1]))
            label = f"{enc.base} {int(code[1]):04X}"
        elif not _is_int(code) or not is_user_defined(int(code)):
            raise PlanError(f"gaiji code must be a user-defined CP932 code F040-F9FC, got {code!r}")
        else:
            key = int(code)
            label = f"{int(code):04X}"
        if isinstance(value, str):
            primary, fallback = value, None
        elif isinstance(value, (tuple, list)) and len(value) == 2:
            primary, fallback = value
        else:
            raise PlanError(f"gaiji {label}: expected a string or (primary, fallback)")
        if fallback is None:
            fallback = primary
        for s in (primary, fallback):
            if not isinstance(s, str) or not s or len(s) > 16:
                raise PlanError(f"gaiji {label}: mapping must be a string of 1..16 characters")
            try:
                s.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise PlanError(f"gaiji {label}: mapping is not valid Unicode") from exc
        out[key] = (primary, fallback)
    return out


def is_user_defined(code: int) -> bool:
    lead, trail = code >> 8, code & 0xFF
    return 0xF0 <= lead <= 0xF9 and (0x40 <= trail <= 0x7E or 0x80 <= trail <= 0xFC)


class DecodePlan:
    """The compiled form of one record kind's layout.

    ``DecodePlan(record_length, fields, gaiji=None, gaiji_fallback=False)``.
    ``gaiji`` maps a user-defined code (F040-F9FC) to its string, or to a pair
    ``(primary, fallback)``; text fields use the fallback when their ``gaiji_fallback``
    option is true, or when it is unset and the plan's ``gaiji_fallback`` is true.
    Pickles as its specification only; tables are rebuilt lazily where it is used.
    """

    def __init__(self, record_length: int, fields: list[FieldSpec], gaiji: dict | None = None,
                 gaiji_fallback: bool = False):
        if not _is_int(record_length) or record_length < 1:
            raise PlanError(f"record_length must be an integer >= 1, got {record_length!r}")
        if not _is_bool(gaiji_fallback):
            raise PlanError("gaiji_fallback must be true or false")
        fields = list(fields)
        names: set[str] = set()
        for f in fields:
            if not isinstance(f, FieldSpec):
                raise PlanError(f"fields must be FieldSpec objects, got {type(f).__name__}")
            if f.offset + f.length > record_length:
                raise PlanError(
                    f"field {f.name!r} (offset {f.offset}, length {f.length}) ends after the record "
                    f"(record_length {record_length})")
            for out in f.output_fields() or [pa.field(f.name, pa.null())]:
                if out.name in names:
                    raise PlanError(f"duplicate output column {out.name!r}")
                names.add(out.name)
        self.record_length = int(record_length)
        self.fields = tuple(fields)
        self.gaiji = _check_gaiji(gaiji)
        self.gaiji_fallback = bool(gaiji_fallback)
        self.schema = pa.schema([o for f in self.fields for o in f.output_fields()])
        self._cache: dict[str, Any] = {}

    def __reduce__(self):
        gaiji = {c: (p if p == fb else (p, fb)) for c, (p, fb) in self.gaiji.items()}
        return (DecodePlan, (self.record_length, list(self.fields), gaiji, self.gaiji_fallback))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DecodePlan):
            return NotImplemented
        return (self.record_length, self.fields, self.gaiji, self.gaiji_fallback) == (
            other.record_length, other.fields, other.gaiji, other.gaiji_fallback)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"DecodePlan(record_length={self.record_length}, fields={len(self.fields)}, "
                f"gaiji={len(self.gaiji)})")

    def field_fallback(self, f: FieldSpec) -> bool:
        gf = f.options.get("gaiji_fallback")
        return self.gaiji_fallback if gf is None else bool(gf)

    def text_table(self, fallback: bool, narrow: bool, widen: bool,
                   encoding: str = "cp932") -> TextTable | MixedTable:
        key = ("text", fallback, narrow, widen, encoding)
        t = self._cache.get(key)
        if t is None:
            with _BUILD_LOCK:
                t = self._cache.get(key)
                if t is None:
                    if encoding == "cp932":
                        t = TextTable(self.gaiji, fallback, narrow, widen)
                    else:
                        t = MixedTable(get_encoding(encoding), self.gaiji, fallback, narrow, widen)
                    self._cache[key] = t
        return t

    def cached(self, key: str, build):
        """Per-implementation lazily built state (not pickled); built once, thread-safe."""
        v = self._cache.get(key)
        if v is None:
            with _BUILD_LOCK:
                v = self._cache.get(key)
                if v is None:
                    v = self._cache[key] = build(self)
        return v


# -- Arrow arrays without pyarrow.compute or numpy.ma ---------------------------------------
_NUMPY_ARROW = {np.dtype(t): pa.from_numpy_dtype(np.dtype(t)) for t in (
    np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
    np.float32, np.float64)}


def repeat_binary(value: bytes, n: int) -> pa.Array:
    """A binary column of ``n`` times ``value``, its buffers made directly (a ``take`` of one
    value n times costs milliseconds a block)."""
    if len(value) * n >= 2**31:
        raise OverflowError(f"{n} values of {len(value)} bytes exceed a binary column's 2 GiB")
    return pa.Array.from_buffers(pa.binary(), n, [
        None, pa.py_buffer(np.arange(n + 1, dtype=np.int32) * np.int32(len(value))),
        pa.py_buffer(value * n)])


def numpy_to_arrow(values: Any, type: pa.DataType | None = None) -> pa.Array:
    """``pa.array(values, type)`` for a 1-D numpy array of numbers or booleans, built from its
    buffer: ``pa.array`` asks every numpy array whether it is a masked array, and the first
    question imports ``numpy.ma`` (30 ms or more of a command's time).  Anything else goes to
    ``pa.array``; a ``type`` other than the array's is a safe cast, as there."""
    if not isinstance(values, np.ndarray) or values.ndim != 1:
        return pa.array(values, type)
    if values.dtype == np.bool_:
        bits = np.packbits(values, bitorder="little")
        out = pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])
    else:
        t = _NUMPY_ARROW.get(values.dtype)
        if t is None:
            return pa.array(values, type)
        values = np.ascontiguousarray(values)
        out = pa.Array.from_buffers(t, len(values), [None, pa.py_buffer(values)])
    return out if type is None or out.type == type else _ac.cast(out, type)



# -- CP932 tables ----------------------------------------------------------------------------
# Table strings are built from CPython's codec; both implementations consume them.
LEAD_BYTES = bytes(b for b in range(256) if b in range(0x81, 0xA0) or b in range(0xE0, 0xFD))
SPACE_CHARS = frozenset(" \u3000")
_NARROW = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}
_NARROW[0x3000] = 0x20


def _cp932_single() -> list[str | None]:
    out: list[str | None] = []
    for b in range(256):
        try:
            out.append(bytes([b]).decode("cp932"))
        except UnicodeDecodeError:
            out.append(None)  # needs a second byte (lead byte)
    return out


def _cp932_double_each() -> dict[int, str]:
    """:func:`_cp932_double` one code at a time (one codec call each): the reference that the
    bulk decoding is checked against."""
    out = {}
    for lead in LEAD_BYTES:
        for trail in range(256):
            code = lead << 8 | trail
            if is_user_defined(code):
                continue
            try:
                s = bytes([lead, trail]).decode("cp932")
            except UnicodeDecodeError:
                continue
            out[code] = s
    return out


_NO_CHAR = "\uffff"  # a noncharacter: no CP932 code decodes to it


def _skip_pair(exc: UnicodeDecodeError) -> tuple[str, int]:
    """Codec error handler for a string of 2-byte codes: an invalid code becomes ``_NO_CHAR``
    and decoding resumes at the next code (the codec would resume at its second byte)."""
    if exc.start % 2:
        raise exc
    return _NO_CHAR, exc.start + 2


codecs.register_error("ikou-cp932-pairs", _skip_pair)


# second bytes of 2-byte CP932 codes; the user-defined area (lead F0-F9) is left out: 外字
_TRAIL_BYTES = bytes(list(range(0x40, 0x7F)) + list(range(0x80, 0xFD)))
_NON_USER_LEADS = bytes(b for b in LEAD_BYTES if not 0xF0 <= b <= 0xF9)


def _cp932_double() -> dict[int, str]:
    """Every valid 2-byte CP932 code outside the user-defined area -> its character.

    One codec call for all codes of lead and trail bytes (CP932 is stateless: a code decodes
    alike alone or among others; codes with other bytes are invalid, which the tests check
    against :func:`_cp932_double_each`); if the codec does not give one character per code,
    they are decoded one by one."""
    pairs = np.empty((len(_NON_USER_LEADS), len(_TRAIL_BYTES), 2), np.uint8)
    pairs[:, :, 0] = np.frombuffer(_NON_USER_LEADS, np.uint8)[:, None]
    pairs[:, :, 1] = np.frombuffer(_TRAIL_BYTES, np.uint8)[None, :]
    try:
        text = pairs.tobytes().decode("cp932", "ikou-cp932-pairs")
    except UnicodeDecodeError:
        return _cp932_double_each()
    codes = (pairs[:, :, 0].astype(np.int64) << 8 | pairs[:, :, 1]).reshape(-1).tolist()
    if len(text) != len(codes):
        return _cp932_double_each()
    return {c: ch for c, ch in zip(codes, text, strict=True) if ch != _NO_CHAR}


_BASE: dict[str, Any] = {}
# Lazily built tables may be first needed by several threads at once (Beam workers).
_BUILD_LOCK = threading.RLock()


def cp932_base() -> tuple[list[str | None], dict[int, str]]:
    with _BUILD_LOCK:
        if "double" not in _BASE:
            _BASE["single"] = _cp932_single()
            _BASE["double"] = _cp932_double()
        return _BASE["single"], _BASE["double"]


def _widen_tables() -> tuple[dict[int, str], dict[int, str]]:
    """Half-width katakana byte -> full-width; (byte<<8 | mark byte) -> merged character."""
    single, _ = cp932_base()
    widen = {}
    for b in range(0xA1, 0xE0):
        ch = single[b]
        if ch == "\uff9e":
            widen[b] = "\u309b"  # ゛
        elif ch == "\uff9f":
            widen[b] = "\u309c"  # ゜
        else:
            widen[b] = unicodedata.normalize("NFKC", ch)
    merge = {}
    for b in range(0xA1, 0xDE):
        for mark in (0xDE, 0xDF):
            m = unicodedata.normalize("NFKC", single[b] + single[mark])
            if len(m) == 1:
                merge[b << 8 | mark] = m
    return widen, merge


_TEXT_BASE: dict[tuple, tuple] = {}
_USER_CODES = tuple(lead << 8 | trail for lead in range(0xF0, 0xFA) for trail in _TRAIL_BYTES)


def _text_base(narrow: bool, widen: bool) -> tuple:
    """(single, double, merge) of CP932 without 外字 rows (every user-defined code
    UNMAPPED_GAIJI), built once per process for each variant."""
    key = (narrow, widen)
    with _BUILD_LOCK:
        if key in _TEXT_BASE:
            return _TEXT_BASE[key]
        base_single, base_double = cp932_base()
        tr = (lambda s: s.translate(_NARROW)) if narrow else (lambda s: s)
        single = list(base_single)
        merge: dict[int, str] = {}
        if widen:
            wide, merge = _widen_tables()
            for b, s in wide.items():
                single[b] = s
        double: dict[int, Any] = dict.fromkeys(
            (lead << 8 | trail for lead in LEAD_BYTES for trail in range(256)),
            ErrorCode.INVALID_BYTES)
        double.update(base_double if not narrow else
                      {c: tr(s) for c, s in base_double.items()})
        double.update(dict.fromkeys(_USER_CODES, ErrorCode.UNMAPPED_GAIJI))
        out = ([None if s is None else tr(s) for s in single], double, merge)
        _TEXT_BASE[key] = out
        return out


class TextTable:
    """Decoding table for one text variant (外字 primary/fallback, narrowing, widening).

    ``single[b]``: string for a single byte, ``None`` for a lead byte.
    ``double[(lead<<8)|trail]``: string, or an ``ErrorCode`` (INVALID_BYTES → the lead byte
    is an error and decoding resumes at the next byte; UNMAPPED_GAIJI → both bytes consumed).
    ``merge[(b<<8)|mark]``: widened kana with 濁点/半濁点 merged (empty unless widening).
    ``base_key`` names the shared table without 外字 rows (``base_double``); ``gaiji`` holds
    this table's rows (user-defined code → string), which ``double`` has on top of it.
    """

    def __init__(self, gaiji: dict[int, tuple[str, str]], fallback: bool, narrow: bool,
                 widen: bool):
        tr = (lambda s: s.translate(_NARROW)) if narrow else (lambda s: s)
        self.single, base_double, self.merge = _text_base(narrow, widen)
        self.base_key = ("cp932", narrow, widen)
        self.base_double = base_double
        self.gaiji = {code: tr(g[1 if fallback else 0]) for code, g in gaiji.items()
                      if isinstance(code, int) and is_user_defined(code)}
        double = dict(base_double) if self.gaiji else base_double
        double.update(self.gaiji)
        self.double = double


_MIXED_BASE: dict[tuple, tuple] = {}


def _mixed_base(enc, narrow: bool, widen: bool) -> tuple:
    """(single, double, merge, marks) of an encoding without 外字 rows, built once per process."""
    key = (enc.name, narrow, widen)
    with _BUILD_LOCK:
        if key in _MIXED_BASE:
            return _MIXED_BASE[key]
        tr = (lambda s: s.translate(_NARROW)) if narrow else (lambda s: s)
        base = list(enc.single)
        marks = (base.index("\uff9e") if "\uff9e" in base else -1,
                 base.index("\uff9f") if "\uff9f" in base else -1)
        merge: dict[int, str] = {}
        if widen:
            for b, ch in enumerate(enc.single):
                if ch is None or not "\uff61" <= ch <= "\uff9f":
                    continue
                base[b] = {"\uff9e": "\u309b", "\uff9f": "\u309c"}.get(
                    ch, unicodedata.normalize("NFKC", ch))
                for m in marks:
                    if m >= 0 and "\uff66" <= ch <= "\uff9d":
                        merged = unicodedata.normalize("NFKC", ch + enc.single[m])
                        if len(merged) == 1:
                            merge[b << 8 | m] = merged
        shift_first = frozenset(q[0] for q in enc.shift_in + enc.shift_out)
        single: list[Any] = []
        for b, s in enumerate(base):
            if b in shift_first and enc.mixed:
                single.append(None)
            elif s is None:
                single.append(ErrorCode.UNMAPPABLE_CODE if b in enc.unmappable_single
                              else ErrorCode.UNASSIGNED_BYTE)
            else:
                single.append(tr(s))
        double: list[Any] = [ErrorCode.INVALID_DBCS] * 65536
        if enc.mixed:
            for code, s in enc.double.items():
                double[code] = tr(s)
            for code in enc.unmappable:
                double[code] = ErrorCode.UNMAPPABLE_CODE
            for code in range(65536):
                if enc.user(code):
                    double[code] = ErrorCode.UNMAPPED_GAIJI
        out = (tuple(single), tuple(double), merge, marks, shift_first)
        _MIXED_BASE[key] = out
        return out


class MixedTable:
    """Decoding table of one text variant of an encoding other than CP932.

    ``single[b]``: string, or an ``ErrorCode`` (UNASSIGNED_BYTE, UNMAPPABLE_CODE), or ``None``
    for the first byte of a shift sequence (``shift_in`` / ``shift_out``: tuples of byte strings).
    ``double[code]`` for every code 0000-FFFF: string or ``ErrorCode`` (INVALID_DBCS,
    UNMAPPED_GAIJI for the user-defined area without a 外字 row, UNMAPPABLE_CODE).
    ``merge[(b<<8)|mark]``: widened kana with 濁点/半濁点 merged; ``marks``: the bytes of ﾞ and ﾟ.
    ``base_key`` names the shared table without 外字 rows; ``gaiji`` holds this table's rows.
    """

    def __init__(self, enc, gaiji: dict, fallback: bool, narrow: bool, widen: bool):
        tr = (lambda s: s.translate(_NARROW)) if narrow else (lambda s: s)
        self.encoding = enc
        self.shift_in: tuple[bytes, ...] = enc.shift_in
        self.shift_out: tuple[bytes, ...] = enc.shift_out
        single, double, self.merge, self.marks, self.shift_first = _mixed_base(enc, narrow, widen)
        self.single = single
        self.base_key = (enc.name, narrow, widen)
        self.base_double = double
        self.gaiji = {code: tr(g[1 if fallback else 0]) for (name, code), g in
                      ((k, v) for k, v in gaiji.items() if isinstance(k, tuple))
                      if name == enc.base and enc.mixed and enc.user(code)}
        if self.gaiji:
            double = list(double)
            for code, s in self.gaiji.items():
                double[code] = s
        self.double = double


def is_space_string(s: str) -> bool:
    return bool(s) and all(c in SPACE_CHARS for c in s)


# -- results ---------------------------------------------------------------------------------
class DecodeErrors:
    """Per-field errors of one block, sorted by (row, field, pos); all arrays the same length.

    ``row``: row index in the block; ``field``: index into ``plan.fields``; ``code``: ErrorCode;
    ``pos``: byte offset within the record; ``value``: the byte or 2-byte code (0 if none);
    ``reject``: True when the field's ``on_error`` is ``reject`` (the row is in ``bad_rows``).
    """

    __slots__ = ("row", "field", "code", "pos", "value", "reject")

    def __init__(self, row, field, code, pos, value, reject):
        order = np.lexsort((pos, field, row))
        self.row = np.asarray(row, dtype=np.int64)[order]
        self.field = np.asarray(field, dtype=np.int32)[order]
        self.code = np.asarray(code, dtype=np.int32)[order]
        self.pos = np.asarray(pos, dtype=np.int32)[order]
        self.value = np.asarray(value, dtype=np.int64)[order]
        self.reject = np.asarray(reject, dtype=np.bool_)[order]

    def __len__(self) -> int:
        return len(self.row)

    def __iter__(self):
        """(row, field, code, pos, value, reject) tuples of Python ints/bools."""
        return zip(self.row.tolist(), self.field.tolist(), self.code.tolist(),
                   self.pos.tolist(), self.value.tolist(), self.reject.tolist(), strict=True)

    def equals(self, other: DecodeErrors) -> bool:
        return all(np.array_equal(getattr(self, k), getattr(other, k)) for k in self.__slots__)

    def __repr__(self) -> str:
        return f"DecodeErrors({len(self)} errors)"


class DecodeResult:
    __slots__ = ("batch", "errors", "bad_rows")

    def __init__(self, batch: pa.RecordBatch, errors: DecodeErrors):
        self.batch = batch
        self.errors = errors
        rows = errors.row[errors.reject]  # sorted: errors are in (row, field, pos) order
        self.bad_rows = rows[np.concatenate(([True], rows[1:] != rows[:-1]))] if len(
            rows) else rows.copy()

    def __repr__(self) -> str:
        return (f"DecodeResult(rows={self.batch.num_rows}, errors={len(self.errors)}, "
                f"bad_rows={len(self.bad_rows)})")


def make_batch(columns: list, schema: pa.Schema, n: int) -> pa.RecordBatch:
    """A RecordBatch of n rows (also when the plan has no columns, e.g. only fillers)."""
    if not columns:
        empty = pa.Array.from_buffers(pa.struct([]), n, [None], children=[])
        return pa.RecordBatch.from_struct_array(empty)
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def check_block(buf: Any, starts: Any, plan: DecodePlan) -> tuple[memoryview, np.ndarray]:
    """Validate decode_block's inputs; return a byte memoryview and int64 starts."""
    if not isinstance(plan, DecodePlan):
        raise BlockError(f"plan must be a DecodePlan, got {type(plan).__name__}")
    try:
        mv = memoryview(buf)
    except TypeError as exc:
        raise BlockError(f"buf must be a bytes-like object, got {type(buf).__name__}") from exc
    if not mv.c_contiguous:
        raise BlockError("buf must be C-contiguous")
    mv = mv.cast("B") if (mv.format != "B" or mv.ndim != 1) else mv
    try:
        st = np.asarray(starts)
    except Exception as exc:  # noqa: BLE001 - any conversion failure is a bad argument
        raise BlockError("starts must be a sequence of integers") from exc
    if st.ndim != 1 or (st.size and st.dtype.kind not in "iu"):
        raise BlockError("starts must be a 1-dimensional array of integers")
    st = np.ascontiguousarray(st, dtype=np.int64)
    if st.size:
        lo, hi = int(st.min()), int(st.max())
        if lo < 0 or hi + plan.record_length > len(mv):
            raise BlockError(
                f"record starts must lie in [0, {len(mv) - plan.record_length}] so that whole "
                f"records of {plan.record_length} bytes fit in the {len(mv)}-byte buffer")
    return mv, st


def format_error(plan: DecodePlan, field: int, code: int, pos: int, value: int) -> str:
    """A quarantine message: field name, error, byte position and byte hex — never a decoded value."""
    f = plan.fields[int(field)]
    try:
        c = ErrorCode(int(code))
    except ValueError:
        return f"field {f.name} ({f.type}): unknown error code {int(code)} at byte {int(pos)}"
    msg = f"field {f.name} ({f.type}): {c.name}: {_CODE_TEXT[c]} at byte {int(pos)}"
    v = int(value)
    if c in _CODE_HEX:
        msg += f" (code 0x{v:04X})"
    elif c in _BYTE_HEX:
        msg += f" (byte 0x{v:02X})"
    return msg


# -- many messages at once ---------------------------------------------------------------------

_HEX_DIGITS = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)
_CODE_HEX = (ErrorCode.INVALID_BYTES, ErrorCode.UNMAPPED_GAIJI,  # " (code 0xHHHH)"
             ErrorCode.INVALID_DBCS, ErrorCode.UNMAPPABLE_CODE, ErrorCode.UNTERMINATED_SHIFT,
             ErrorCode.SHIFT_IN_DBCS, ErrorCode.UNPAIRED_SURROGATE)
_BYTE_HEX = (ErrorCode.CUT_DOUBLE_BYTE, ErrorCode.NOT_DIGITS, ErrorCode.INVALID_SIGN,  # 0xHH
             ErrorCode.UNASSIGNED_BYTE, ErrorCode.ODD_DBCS_BYTES, ErrorCode.INVALID_SHIFT)


def small_unique(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(keys, return_inverse=True)`` for int64 keys of few distinct values: one
    sort of the distinct values only (numpy's general unique sorts or hashes every key)."""
    keys = np.asarray(keys, dtype=np.int64)
    if not len(keys):
        return keys, np.zeros(0, dtype=np.int64)
    first = keys[0]
    if (keys == first).all():
        return keys[:1].copy(), np.zeros(len(keys), dtype=np.int64)
    distinct: list[int] = []
    rest = keys
    while len(rest) and len(distinct) < 64:  # peel off one value at a time while they are few
        v = int(rest[0])
        distinct.append(v)
        rest = rest[rest != v]
    if len(rest):  # many distinct values: the general way
        uniq, inverse = np.unique(keys, return_inverse=True)
        return uniq, np.asarray(inverse).reshape(-1)
    uniq = np.array(sorted(distinct), dtype=np.int64)
    return uniq, np.searchsorted(uniq, keys)


def join_columns(parts: list, n: int | None = None, string: bool = False) -> pa.Array:
    """Element-wise concatenation of columns: ``parts`` are Arrow arrays of one length (binary
    or string, no nulls) or constants (``bytes`` / ``str``); a binary array (a string array
    with ``string=True``).  Built with one ``take`` and one list join (Arrow's element-wise
    join is far slower per element)."""
    if n is None:
        n = next(len(p) for p in parts if isinstance(p, pa.Array))
    merged: list = []  # neighbouring constants as one
    for p in parts:
        if isinstance(p, str):
            p = p.encode()
        if isinstance(p, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] += p
        elif not (isinstance(p, bytes) and not p):
            merged.append(p)
    if not merged:
        merged = [b""]
    arrays = []
    for p in merged:
        if isinstance(p, bytes):
            p = repeat_binary(p, n)
        elif p.type != pa.binary():
            p = p.view(pa.binary()) if p.type == pa.string() else _ac.cast(p, pa.binary())
        arrays.append(p)
    k = len(arrays)
    if k == 1:
        out = arrays[0]
    else:
        flat = pa.concat_arrays(arrays)
        order = (np.arange(k, dtype=np.int64)[None, :] * n
                 + np.arange(n, dtype=np.int64)[:, None]).ravel()
        # the items in row order: row i is items k*i .. k*i+k-1, one after the other
        out = concat_runs(_ac.take(flat, numpy_to_arrow(order)), np.arange(0, n * k + 1, k))
    return out.view(pa.string()) if string else out


def concat_runs(items: pa.Array, bounds: np.ndarray) -> pa.Array:
    """Binary array whose element ``i`` is ``items[bounds[i]] + … + items[bounds[i+1]-1]``
    (``items``: binary, no nulls; ``bounds``: non-decreasing, from 0 to ``len(items)``).
    Consecutive items are consecutive bytes: only the offsets are new, the data is shared."""
    bufs = items.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int32, count=items.offset + len(items) + 1)
    offsets = offsets[items.offset:]
    out = offsets[np.asarray(bounds, dtype=np.int64)]
    data = bufs[2] if bufs[2] is not None else pa.py_buffer(b"")
    return pa.Array.from_buffers(pa.binary(), len(out) - 1, [None, pa.py_buffer(out), data])


def fixed_width_strings(prefix: bytes, values: np.ndarray, digits: int, suffix: bytes) -> pa.Array:
    """``prefix + f"{v:0{digits}X}" + suffix`` for every ``v`` (0 <= v < 16**digits) as one
    Arrow string array, built from a byte matrix (no Python loop)."""
    v = np.asarray(values, dtype=np.int64)
    n = len(v)
    width = len(prefix) + digits + len(suffix)
    mat = np.empty((n, width), dtype=np.uint8)
    mat[:, :len(prefix)] = np.frombuffer(prefix, dtype=np.uint8)
    for k in range(digits):
        mat[:, len(prefix) + k] = _HEX_DIGITS[(v >> (4 * (digits - 1 - k))) & 15]
    mat[:, len(prefix) + digits:] = np.frombuffer(suffix, dtype=np.uint8)
    offsets = np.arange(n + 1, dtype=np.int32) * width
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets),
                                                  pa.py_buffer(mat)])


def format_errors(plan: DecodePlan, field: Any, code: Any, pos: Any, value: Any) -> pa.Array:
    """:func:`format_error` for many errors at once (arrays of equal length): an Arrow string
    array with exactly the same messages, built column-wise (no Python loop per error)."""
    field = np.asarray(field, dtype=np.int64)
    code = np.asarray(code, dtype=np.int64)
    pos = np.asarray(pos, dtype=np.int64)
    value = np.asarray(value, dtype=np.int64)
    n = len(field)
    if n == 0:
        return pa.array([], pa.string())
    code_hex = np.isin(code, [int(c) for c in _CODE_HEX])
    byte_hex = np.isin(code, [int(c) for c in _BYTE_HEX])
    if ((code_hex & ((value < 0) | (value > 0xFFFF))).any()
            or (byte_hex & ((value < 0) | (value > 0xFF))).any()):  # not from the kernel
        return pa.array([format_error(plan, f, c, p, v) for f, c, p, v in zip(
            field.tolist(), code.tolist(), pos.tolist(), value.tolist(), strict=True)],
            pa.string())
    # the text before the byte position depends on (field, code) only: one per distinct pair
    keys, inverse = small_unique((field << 32) | (code & 0xFFFFFFFF))
    heads = []
    for key in keys.tolist():
        f_i, c_i = key >> 32, key & 0xFFFFFFFF
        c_i = c_i - (1 << 32) if c_i >= 1 << 31 else c_i
        f = plan.fields[f_i]
        try:
            c = ErrorCode(c_i)
        except ValueError:
            heads.append(f"field {f.name} ({f.type}): unknown error code {c_i} at byte ")
        else:
            heads.append(f"field {f.name} ({f.type}): {c.name}: {_CODE_TEXT[c]} at byte ")
    head = _ac.take(pa.array(heads, pa.string()),
                    numpy_to_arrow(np.asarray(inverse).reshape(-1)))
    at = _ac.cast(numpy_to_arrow(pos), pa.string())
    empty = pa.array([""] * n, pa.string()) if not (code_hex.any() or byte_hex.any()) else None
    if empty is not None:
        tail = empty
    else:
        tail = _ac.if_else(numpy_to_arrow(code_hex),
                          fixed_width_strings(b" (code 0x", value, 4, b")"),
                          _ac.if_else(numpy_to_arrow(byte_hex),
                                     fixed_width_strings(b" (byte 0x", value & 0xFF, 2, b")"),
                                     pa.scalar("", pa.string())))
    return join_columns([head, at, tail], string=True)
