"""Pure-Python twin of the compiled decoding kernel ``_decode.pyx``.

Same behaviour, byte for byte and error for error; used when ``IKOU_PURE_PYTHON=1`` and by
the tests that check the two agree.  Slow by design: clarity over speed.
"""

from __future__ import annotations

import datetime as _dt
import math
import struct

import numpy as np
import pyarrow as pa

from ._decode_common import (
    EBCDIC_DIGIT_MAP,
    ED_CR,
    ED_DB,
    ED_DIGIT,
    ED_FLOAT,
    ED_LIT,
    ED_MINUS,
    ED_NEXT,
    ED_PLUS,
    ED_POINT,
    ED_STAR,
    ED_Z,
    EDITED_EBCDIC_MAP,
    EPOCH_ORDINAL,
    ON_ERROR,
    ST_BLANK,
    ST_IMPOSSIBLE,
    ST_OUT_OF_ERA,
    ST_UNKNOWN,
    ST_VALID,
    TRIM,
    WAREKI_STATUSES,
    DecodeErrors,
    DecodePlan,
    DecodeResult,
    ErrorCode,
    FieldSpec,
    check_block,
    is_space_string,
    make_batch,
    parse_picture,
)

__all__ = ["decode_block"]

INT64_MAX = 2**63 - 1
_DIGITS = frozenset(b"0123456789")
_STATUS_DICT = pa.array(WAREKI_STATUSES, pa.string())

# ASCII zoned last byte -> (digit, negative)
_ASCII_OVERPUNCH = {ord("0") + d: (d, False) for d in range(10)}
_ASCII_OVERPUNCH[ord("{")] = (0, False)
_ASCII_OVERPUNCH[ord("}")] = (0, True)
for _d in range(1, 10):
    _ASCII_OVERPUNCH[ord("A") + _d - 1] = (_d, False)
    _ASCII_OVERPUNCH[ord("J") + _d - 1] = (_d, True)
for _d in range(10):
    _ASCII_OVERPUNCH[ord("p") + _d] = (_d, True)


class _Sink:
    """Collects the errors of one block."""

    def __init__(self):
        self.rows, self.fields, self.codes, self.pos, self.values, self.reject = [], [], [], [], [], []

    def add(self, row, field, code, pos, value, reject):
        self.rows.append(row)
        self.fields.append(field)
        self.codes.append(int(code))
        self.pos.append(pos)
        self.values.append(value)
        self.reject.append(reject)


def _uniform(b: bytes, byte: int) -> bool:
    return b.count(byte) == len(b)


def _policy(b: bytes, opts) -> tuple[str, int, int] | None:
    """LOW-VALUE / HIGH-VALUE / blank detection: (policy, error code, byte) or None."""
    if _uniform(b, 0x00) and opts["low_value"] != "decode":
        return opts["low_value"], ErrorCode.LOW_VALUE, 0x00
    if _uniform(b, 0xFF) and opts["high_value"] != "decode":
        return opts["high_value"], ErrorCode.HIGH_VALUE, 0xFF
    return None


def _days(y: int, m: int, d: int) -> int | None:
    try:
        return _dt.date(y, m, d).toordinal() - EPOCH_ORDINAL
    except ValueError:
        return None


# errors whose value is the offending byte: reported with the field's original byte when an
# EBCDIC numeric field was read through EBCDIC_DIGIT_MAP
_BYTE_VALUED = (ErrorCode.NOT_DIGITS, ErrorCode.INVALID_SIGN, ErrorCode.INT_OVERFLOW,
                ErrorCode.BLANK_VALUE)


class _FieldDecoder:
    def __init__(self, plan: DecodePlan, index: int, f: FieldSpec, sink: _Sink):
        self.plan, self.index, self.f, self.sink = plan, index, f, sink
        self.opts = f.options
        self.on_error = ON_ERROR[self.opts.get("on_error", "reject")]
        self.reject = self.on_error == ON_ERROR["reject"]
        self.ebcdic = f.ebcdic_digits
        self.orig = b""

    def raw(self, mv, start) -> bytes:
        """The field's bytes in the record starting at ``start``, as they are in the file."""
        return bytes(mv[start + self.f.offset:start + self.f.offset + self.f.length])

    def field(self, mv, start) -> bytes:
        """The field's bytes (EBCDIC numeric fields: read as ASCII through EBCDIC_DIGIT_MAP)."""
        b = self.raw(mv, start)
        if self.ebcdic:
            self.orig = b
            return b.translate(EBCDIC_DIGIT_MAP)
        return b

    def err(self, row, code, i, value):
        if self.ebcdic and code in _BYTE_VALUED:
            value = self.orig[i]
        self.sink.add(row, self.index, code, self.f.offset + i, value, self.reject)

    def policy_value(self, row, b, empty):
        """Apply low/high/blank policies; return (handled, value)."""
        p = _policy(b, self.opts)
        # an EBCDIC zoned number's blank is EBCDIC spaces (0x40)
        sp = 0x40 if self.f.type == "zoned" and self.opts["zone"] == "ebcdic" else 0x20
        if p is None and self.f.type not in ("text", "dbcs", "national") and _uniform(b, sp) \
                and self.opts["blank"] != "decode":
            p = (self.opts["blank"], ErrorCode.BLANK_VALUE, sp)
        if p is None:
            return False, None
        action, code, byte = p
        if action == "error":
            self.err(row, code, 0, byte)
            return True, None
        if action == "empty":
            return True, empty
        return True, None


def _finish_text(d: _FieldDecoder, row: int, pieces: list, errors: int, out: list) -> None:
    """Trimming, blank policy and the value of one decoded text field."""
    opts = d.opts
    if errors and d.on_error != ON_ERROR["replace"]:
        out.append(None)
        return
    if not errors and all(sp for _, sp in pieces):
        policy = opts["blank"]
        if policy == "error":
            d.err(row, ErrorCode.BLANK_VALUE, 0, 0x20)
            out.append(None)
        else:
            out.append("" if policy == "empty" else None)
        return
    if TRIM[opts["trim"]] & 2:
        while pieces and pieces[-1][1]:
            pieces.pop()
    out.append("".join(s for s, _ in pieces))


def _match(b: bytes, i: int, seqs: tuple[bytes, ...]) -> int:
    """Length of the sequence of ``seqs`` that starts at b[i] (0: none)."""
    for q in seqs:
        if b.startswith(q, i):
            return len(q)
    return 0


def _decode_mixed(d: _FieldDecoder, mv, starts) -> list:
    """text / dbcs fields in an encoding other than CP932 (single-byte or shift-coded)."""
    f, opts = d.f, d.opts
    tab = d.plan.text_table(d.plan.field_fallback(f), opts["ascii_narrow"], opts["kana_widen"],
                            f.encoding)
    single, double, merge = tab.single, tab.double, tab.merge
    shift_in, shift_out, shift_first = tab.shift_in, tab.shift_out, tab.shift_first
    dbcs = f.type == "dbcs"
    start_double = dbcs or opts.get("shift_state") == "double"
    trim_left = bool(TRIM[opts["trim"]] & 1)
    replace = d.on_error == ON_ERROR["replace"]
    repl = opts["replacement"]
    out: list = []
    for row, start in enumerate(starts):
        b = d.raw(mv, start)
        handled, value = d.policy_value(row, b, "")
        if handled:
            out.append(value)
            continue
        pieces: list[tuple[str, bool]] = []
        errors = 0
        n = len(b)
        i = 0
        double_state = start_double
        shift_at = -1  # where the open double-byte run began (its shift-in)

        def bad(code, at, value, row=row, pieces=pieces):
            nonlocal errors
            d.err(row, code, at, value)
            errors += 1
            if replace:
                pieces.append((repl, False))

        while i < n:
            c = b[i]
            if c in shift_first:
                k = _match(b, i, shift_in)
                k_out = 0 if k else _match(b, i, shift_out)
                if dbcs and (k or k_out):
                    q = b[i:i + (k or k_out)]
                    bad(ErrorCode.SHIFT_IN_DBCS, i, int.from_bytes(q, "big"))
                    i += len(q)
                    continue
                if k:
                    if not double_state:
                        double_state, shift_at = True, i
                    i += k
                    continue
                if k_out:
                    double_state = False
                    i += k_out
                    continue
                if not double_state:  # a shift byte without the rest of its sequence
                    bad(ErrorCode.INVALID_SHIFT, i, c)
                    i += 1
                    continue
            if double_state:
                if i + 1 >= n:
                    bad(ErrorCode.CUT_DOUBLE_BYTE, i, c)
                    i += 1
                    continue
                code = c << 8 | b[i + 1]
                s = double[code]
                if isinstance(s, ErrorCode):
                    if not dbcs and b[i + 1] in shift_first and _match(b, i + 1, shift_out):
                        bad(ErrorCode.ODD_DBCS_BYTES, i, c)
                        i += 1
                        continue
                    bad(s, i, code)
                    i += 2
                    continue
                i += 2
            else:
                s = single[c]
                if isinstance(s, ErrorCode):
                    bad(s, i, c)
                    i += 1
                    continue
                if merge and i + 1 < n and (c << 8 | b[i + 1]) in merge:
                    s = merge[c << 8 | b[i + 1]]
                    i += 2
                else:
                    i += 1
            sp = is_space_string(s)
            if sp and trim_left and not pieces:
                continue
            pieces.append((s, sp))
        if double_state and not start_double and shift_at >= 0:
            q = b[shift_at:shift_at + _match(b, shift_at, shift_in)]
            bad(ErrorCode.UNTERMINATED_SHIFT, shift_at, int.from_bytes(q, "big"))
        _finish_text(d, row, pieces, errors, out)
    return [pa.array(out, pa.string())]


def _decode_binary(d: _FieldDecoder, mv, starts) -> list:
    """Two's complement (or unsigned) integers of 2, 4 or 8 bytes, big- or little-endian."""
    f, opts = d.f, d.opts
    scale = opts["scale"]
    limit = None if opts["digits"] is None else 10**opts["digits"]
    mult = 10**-scale if scale < 0 else 1
    out = []
    for row, start in enumerate(starts):
        b = d.raw(mv, start)
        v = int.from_bytes(b, opts["byte_order"], signed=opts["signed"])
        if limit is not None and abs(v) >= limit:
            d.err(row, ErrorCode.DIGITS_OVERFLOW, 0, 0)
            v = None
        elif scale == 0 and v > INT64_MAX:
            d.err(row, ErrorCode.INT_OVERFLOW, 0, b[0])
            v = None
        out.append(v if v is None else v * mult)
    if scale == 0:
        return [pa.array(out, pa.int64())]
    return [_decimal_array(out, f.output_fields()[0].type)]


FLT_MAX = struct.unpack(">f", b"\x7f\x7f\xff\xff")[0]


def _decode_float(d: _FieldDecoder, mv, starts) -> list:
    """COMP-1 / COMP-2: IBM hexadecimal floating point or IEEE 754, either byte order."""
    f, opts = d.f, d.opts
    n = f.length
    ibm = opts["format"] == "ibm"
    little = opts["byte_order"] == "little"
    out = []
    for row, start in enumerate(starts):
        b = d.raw(mv, start)
        if little:
            b = b[::-1]
        if ibm:
            u = int.from_bytes(b, "big")
            frac_bits = 8 * n - 8
            frac = u & ((1 << frac_bits) - 1)
            expo = (u >> frac_bits) & 0x7F
            x = math.ldexp(float(frac), 4 * (expo - 64) - frac_bits)  # rounds once: float(frac)
            if u >> (8 * n - 1):
                x = -x
            if n == 4:
                if abs(x) > FLT_MAX or struct.unpack(">f", struct.pack(">f", x))[0] != x:
                    d.err(row, ErrorCode.FLOAT_RANGE, 0, 0)
                    x = None
        else:
            x = struct.unpack(">f" if n == 4 else ">d", b)[0]
            if not math.isfinite(x):
                d.err(row, ErrorCode.NOT_FINITE, 0, 0)
                x = None
        out.append(x)
    return [pa.array(out, pa.float32() if n == 4 else pa.float64())]


def _decode_national(d: _FieldDecoder, mv, starts) -> list:
    """PIC N USAGE NATIONAL: UTF-16 (big- or little-endian) → string, text options."""
    opts = d.opts
    order = opts["byte_order"]
    trim_left = bool(TRIM[opts["trim"]] & 1)
    out: list = []
    for row, start in enumerate(starts):
        b = d.raw(mv, start)
        handled, value = d.policy_value(row, b, "")
        if handled:
            out.append(value)
            continue
        units = [int.from_bytes(b[i:i + 2], order) for i in range(0, len(b), 2)]
        pieces: list[tuple[str, bool]] = []
        errors = 0
        k = 0
        while k < len(units):
            u = units[k]
            if 0xD800 <= u <= 0xDBFF and k + 1 < len(units) and 0xDC00 <= units[k + 1] <= 0xDFFF:
                ch = chr(0x10000 + ((u - 0xD800) << 10) + (units[k + 1] - 0xDC00))
                k += 2
            elif 0xD800 <= u <= 0xDFFF:
                d.err(row, ErrorCode.UNPAIRED_SURROGATE, 2 * k, u)
                errors += 1
                k += 1
                continue
            else:
                ch = chr(u)
                k += 1
            sp = ch in (" ", "\u3000")
            if sp and trim_left and not pieces:
                continue
            pieces.append((ch, sp))
        _finish_text(d, row, pieces, errors, out)
    return [pa.array(out, pa.string())]


def _decode_edited(d: _FieldDecoder, mv, starts) -> list:
    """Numeric-edited PIC (Z * + - . , CR DB B 0 / $ 9 V) → decimal128, position by position."""
    f, opts = d.f, d.opts
    ops, lits, fills, digits, scale, float_end, float_kind = parse_picture(opts["picture"])
    table = EDITED_EBCDIC_MAP if f.encoding != "cp932" else None
    out = []
    for row, start in enumerate(starts):
        raw = d.raw(mv, start)
        b = raw if table is None else raw.translate(table)
        p = _policy(b, opts)
        if p is None and _uniform(b, 0x20):
            p = (opts["blank"], ErrorCode.BLANK_VALUE, raw[0])
        if p is not None:
            action, code, byte = p
            if action == "error":
                d.sink.add(row, d.index, code, f.offset, byte, d.reject)
            out.append(0 if action == "zero" else None)
            continue
        if opts["free_form"]:
            v, bad = _edited_free(b, ops, digits, scale, float_kind)
        else:
            v, bad = _edited_strict(b, ops, lits, fills, float_end, float_kind)
        if bad is not None:
            code, i = bad
            d.sink.add(row, d.index, code, f.offset + i, raw[i], d.reject)
            v = None
        out.append(v)
    return [_decimal_array(out, f.output_fields()[0].type)]


def _edited_strict(b: bytes, ops, lits, fills, float_end, float_kind):
    """(unscaled value, None) or (None, (error code, index))."""
    n = len(b)
    w = 0
    seen = False  # a digit was read
    signed_seen = False  # the floating symbol was read
    blanked = False  # the decimal point was filled: nothing but fill after it
    neg = False
    for i in range(n):
        op, c = ops[i], b[i]
        is_digit = 0x30 <= c <= 0x39
        if op in (ED_DIGIT, ED_Z, ED_STAR):
            if is_digit and not blanked:
                w = w * 10 + (c - 0x30)
                seen = True
            elif op != ED_DIGIT and c == fills[i] and not seen:
                w *= 10
            else:
                return None, (ErrorCode.NOT_DIGITS, i)
        elif op in (ED_LIT, ED_POINT):
            if c == lits[i] and not blanked:
                pass
            elif fills[i] and c == fills[i] and not seen:
                if op == ED_POINT:
                    blanked = True
            else:
                return None, (ErrorCode.NOT_DIGITS, i)
        elif op == ED_PLUS:
            if c not in (0x2B, 0x2D):
                return None, (ErrorCode.INVALID_SIGN, i)
            neg = c == 0x2D
        elif op == ED_MINUS:  # space or - (a + is accepted too: it states the same sign)
            if c not in (0x20, 0x2D, 0x2B):
                return None, (ErrorCode.INVALID_SIGN, i)
            neg = c == 0x2D
        elif op in (ED_CR, ED_DB):
            pair = b[i:i + 2]
            if pair == (b"CR" if op == ED_CR else b"DB"):
                neg = True
            elif pair != b"  ":
                j = i if c not in (0x20, lits[i]) else i + 1
                return None, (ErrorCode.INVALID_SIGN, j)
        elif op == ED_NEXT:
            pass
        else:  # floating + - $
            sym = c == float_kind or (float_kind in (0x2B, 0x2D) and c in (0x2B, 0x2D))
            if is_digit and op == ED_FLOAT and not blanked and (
                    signed_seen or float_kind == 0x2D):
                w = w * 10 + (c - 0x30)
                seen = True
            elif c == 0x20 and not seen and not signed_seen:
                w *= 10 if op == ED_FLOAT else 1
            elif sym and not seen and not signed_seen:
                signed_seen = True
                neg = c == 0x2D
            else:
                return None, (ErrorCode.NOT_DIGITS if float_kind == 0x24
                              else ErrorCode.INVALID_SIGN, i)
            if i == float_end and not signed_seen and float_kind != 0x2D:
                return None, (ErrorCode.NOT_DIGITS if float_kind == 0x24
                              else ErrorCode.INVALID_SIGN, i)
    return (-w if neg else w), None


def _edited_free(b: bytes, ops, digits, scale, float_kind):
    """free_form: [spaces][sign]digits[.digits][sign][spaces] anywhere in the field, at most
    the picture's integer and fraction digits; a sign only where the picture has one."""
    n = len(b)
    has_sign = float_kind in (0x2B, 0x2D) or any(o in (ED_PLUS, ED_MINUS, ED_CR, ED_DB) for o in ops)
    i = 0
    while i < n and b[i] == 0x20:
        i += 1
    neg = False
    if i < n and b[i] in (0x2B, 0x2D):
        if not has_sign:
            return None, (ErrorCode.INVALID_SIGN, i)
        neg = b[i] == 0x2D
        i += 1
    w = 0
    int_digits = frac_digits = 0
    point = False
    any_digit = False
    while i < n:
        c = b[i]
        if 0x30 <= c <= 0x39:
            if point:
                frac_digits += 1
                if frac_digits > scale:
                    return None, (ErrorCode.NOT_DIGITS, i)
            else:
                int_digits += 1
                if int_digits > digits - scale:
                    return None, (ErrorCode.NOT_DIGITS, i)
            w = w * 10 + (c - 0x30)
            any_digit = True
        elif c == 0x2E and not point and scale > 0:
            point = True
        else:
            break
        i += 1
    if not any_digit:
        return None, (ErrorCode.NOT_DIGITS, min(i, n - 1))
    w *= 10 ** (scale - frac_digits)
    if i < n and b[i] in (0x2B, 0x2D) and has_sign and not neg:
        neg = b[i] == 0x2D
        i += 1
    while i < n and b[i] == 0x20:
        i += 1
    if i < n:
        return None, (ErrorCode.INVALID_SIGN if b[i] in (0x2B, 0x2D) else ErrorCode.NOT_DIGITS, i)
    return (-w if neg else w), None


def _decode_text(d: _FieldDecoder, mv, starts) -> list:
    f, opts = d.f, d.opts
    if f.encoding != "cp932":
        return _decode_mixed(d, mv, starts)
    tab = d.plan.text_table(d.plan.field_fallback(f), opts["ascii_narrow"], opts["kana_widen"])
    single, double, merge = tab.single, tab.double, tab.merge
    trim = TRIM[opts["trim"]]
    trim_left = bool(trim & 1)
    replace = d.on_error == ON_ERROR["replace"]
    repl = opts["replacement"]
    out = []
    for row, start in enumerate(starts):
        b = d.raw(mv, start)
        handled, value = d.policy_value(row, b, "")
        if handled:
            out.append(value)
            continue
        pieces: list[tuple[str, bool]] = []
        errors = 0
        n = len(b)
        i = 0
        while i < n:
            c = b[i]
            s = single[c]
            if s is None:  # lead byte
                if i + 1 >= n:
                    d.err(row, ErrorCode.CUT_DOUBLE_BYTE, i, c)
                    errors += 1
                    if replace:
                        pieces.append((repl, False))
                    i += 1
                    continue
                code = c << 8 | b[i + 1]
                s = double[code]
                if isinstance(s, ErrorCode):
                    d.err(row, s, i, code)
                    errors += 1
                    if replace:
                        pieces.append((repl, False))
                    i += 1 if s == ErrorCode.INVALID_BYTES else 2
                    continue
                i += 2
            elif merge and i + 1 < n and (c << 8 | b[i + 1]) in merge:
                s = merge[c << 8 | b[i + 1]]
                i += 2
            else:
                i += 1
            sp = is_space_string(s)
            if sp and trim_left and not pieces:
                continue
            pieces.append((s, sp))
        _finish_text(d, row, pieces, errors, out)
    return [pa.array(out, pa.string())]


def _decode_digits(d: _FieldDecoder, mv, starts) -> list:
    out = []
    for row, start in enumerate(starts):
        b = d.field(mv, start)
        handled, value = d.policy_value(row, b, "")
        if handled:
            out.append(value)
            continue
        bad = next((i for i, c in enumerate(b) if c not in _DIGITS), None)
        if bad is not None:
            d.err(row, ErrorCode.NOT_DIGITS, bad, b[bad])
            out.append(None)
        else:
            out.append(b.decode("ascii"))
    return [pa.array(out, pa.string())]


def _parse_signed(d: _FieldDecoder, row: int, b: bytes, limit_pos: int, limit_neg: int):
    """[spaces] [sign] digits [spaces] → int, or None after reporting the first error."""
    n = len(b)
    i = 0
    while i < n and b[i] == 0x20:
        i += 1
    neg = False
    if i < n and b[i] in b"+-":
        neg = b[i] == 0x2D
        if neg and not d.opts["signed"]:
            d.err(row, ErrorCode.INVALID_SIGN, i, b[i])
            return None
        i += 1
    if i >= n or b[i] not in _DIGITS:
        p = min(i, n - 1)
        d.err(row, ErrorCode.NOT_DIGITS, p, b[p])
        return None
    limit = limit_neg if neg else limit_pos
    v = 0
    while i < n and b[i] in _DIGITS:
        v = v * 10 + (b[i] - 0x30)
        if v > limit:
            d.err(row, ErrorCode.INT_OVERFLOW, i, b[i])
            return None
        i += 1
    while i < n and b[i] == 0x20:
        i += 1
    if i < n:
        d.err(row, ErrorCode.NOT_DIGITS, i, b[i])
        return None
    return -v if neg else v


def _decode_int(d: _FieldDecoder, mv, starts) -> list:
    out = []
    for row, start in enumerate(starts):
        b = d.field(mv, start)
        handled, value = d.policy_value(row, b, None)
        if handled:
            out.append(value)
            continue
        out.append(_parse_signed(d, row, b, INT64_MAX, INT64_MAX + 1))
    return [pa.array(out, pa.int64())]


def _decimal_array(values: list, typ: pa.DataType) -> pa.Array:
    """Unscaled ints (or None) → decimal128 array (16-byte little-endian two's complement)."""
    data = b"".join((0 if v is None else v).to_bytes(16, "little", signed=True) for v in values)
    valid = np.array([v is not None for v in values], dtype=bool)
    nulls = int(len(values) - valid.sum())
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little").tobytes()) if nulls else None
    return pa.Array.from_buffers(typ, len(values), [bitmap, pa.py_buffer(data)], null_count=nulls)


def _decode_number(d: _FieldDecoder, mv, starts) -> list:
    """decimal / zoned / packed → decimal128."""
    f, opts = d.f, d.opts
    scale = opts["scale"]
    typ = f.output_fields()[0].type
    mult = 10**-scale if scale < 0 else 1
    big = 10**f.precision
    out = []
    for row, start in enumerate(starts):
        b = d.field(mv, start)
        handled, value = d.policy_value(row, b, None)
        if handled:
            out.append(value)
            continue
        if f.type == "decimal":
            v = _parse_signed(d, row, b, big - 1, big - 1)
        elif f.type == "zoned":
            v = _zoned(d, row, b)
        else:
            v = _packed(d, row, b)
        out.append(v if v is None else v * mult)
    return [_decimal_array(out, typ)]


def _zoned(d: _FieldDecoder, row: int, b: bytes):
    """Zoned decimal: the sign overpunched on the last (or, leading, the first) byte, or a
    separate sign byte (+ / -) there."""
    n = len(b)
    opts = d.opts
    ebcdic = opts["zone"] == "ebcdic"
    at = 0 if opts["sign_position"] == "leading" else n - 1
    separate = opts["sign_separate"]
    v = 0
    neg = False
    for i in range(n):
        c = b[i]
        if i == at:
            if separate:
                if c == (0x4E if ebcdic else 0x2B):
                    continue
                if c == (0x60 if ebcdic else 0x2D) and opts["signed"]:
                    neg = True
                    continue
                d.err(row, ErrorCode.INVALID_SIGN, i, c)
                return None
            if ebcdic:
                if (c & 0x0F) > 9:
                    d.err(row, ErrorCode.NOT_DIGITS, i, c)
                    return None
                zone = c >> 4
                if zone not in (0xC, 0xD, 0xF) or (
                        zone == 0xC and opts["strict_sign"] and not opts["signed"]):
                    d.err(row, ErrorCode.INVALID_SIGN, i, c)
                    return None
                digit, neg = c & 0x0F, zone == 0xD
            else:
                if c not in _ASCII_OVERPUNCH or (
                        opts["strict_sign"] and not opts["signed"] and c not in _DIGITS):
                    d.err(row, ErrorCode.INVALID_SIGN, i, c)
                    return None
                digit, neg = _ASCII_OVERPUNCH[c]
            if neg and not opts["signed"]:
                d.err(row, ErrorCode.INVALID_SIGN, i, c)
                return None
            v = v * 10 + digit
            continue
        if ebcdic:
            if not 0xF0 <= c <= 0xF9:
                d.err(row, ErrorCode.NOT_DIGITS, i, c)
                return None
            v = v * 10 + (c & 0x0F)
        else:
            if c not in _DIGITS:
                d.err(row, ErrorCode.NOT_DIGITS, i, c)
                return None
            v = v * 10 + (c - 0x30)
    return -v if neg else v


def _packed(d: _FieldDecoder, row: int, b: bytes):
    n = len(b)
    v = 0
    for i in range(n):
        c = b[i]
        hi, lo = c >> 4, c & 0x0F
        if hi > 9:
            d.err(row, ErrorCode.NOT_DIGITS, i, c)
            return None
        v = v * 10 + hi
        if i < n - 1:
            if lo > 9:
                d.err(row, ErrorCode.NOT_DIGITS, i, c)
                return None
            v = v * 10 + lo
        else:
            if lo not in (0xC, 0xD, 0xF) or (lo == 0xD and not d.opts["signed"]):
                d.err(row, ErrorCode.INVALID_SIGN, i, c)
                return None
            if lo == 0xD:
                v = -v
    return v


def _decode_date(d: _FieldDecoder, mv, starts) -> list:
    out = []
    for row, start in enumerate(starts):
        b = d.field(mv, start)
        handled, value = d.policy_value(row, b, None)
        if handled:
            out.append(value)
            continue
        bad = next((i for i, c in enumerate(b) if c not in _DIGITS), None)
        if bad is not None:
            d.err(row, ErrorCode.NOT_DIGITS, bad, b[bad])
            out.append(None)
            continue
        if b == b"00000000":
            out.append(None)
            continue
        days = _days(int(b[:4]), int(b[4:6]), int(b[6:]))
        if days is None:
            d.err(row, ErrorCode.IMPOSSIBLE_DATE, 0, 0)
        out.append(days)
    return [pa.array(out, pa.int32()).cast(pa.date32())]


def _decode_wareki(d: _FieldDecoder, mv, starts) -> list:
    f, opts = d.f, d.opts
    eras = {code: (s, e, base) for code, s, e, base in opts["eras"]}
    markers = {m.encode("ascii") for m in opts["unknown"]}
    zero_parts = opts["unknown_zero_parts"]
    ew = f.length - 6
    dates, raws, statuses = [], [], []

    def put(date, raw, status):
        dates.append(date)
        raws.append(raw)
        statuses.append(status)

    for row, start in enumerate(starts):
        b = d.field(mv, start)
        p = _policy(b, opts)
        if p is not None:
            action, code, byte = p
            if action == "error":
                d.err(row, code, 0, byte)
                put(None, None, None)
            else:
                put(None, None, ST_BLANK)
            continue
        if _uniform(b, 0x20):
            if opts["blank"] == "error":
                d.err(row, ErrorCode.BLANK_VALUE, 0, 0x20)
                put(None, None, None)
            else:
                put(None, b.decode("ascii"), ST_BLANK)
            continue
        bad = next((i for i in range(ew) if b[i] not in _DIGITS), None)
        ymd = b[ew:]
        if bad is None and ymd in markers:
            put(None, b.decode("ascii"), ST_UNKNOWN)
            continue
        if bad is None:
            bad = next((i for i in range(ew, f.length) if b[i] not in _DIGITS), None)
        if bad is not None:
            d.err(row, ErrorCode.NOT_DIGITS, bad, b[bad])
            put(None, None, None)
            continue
        raw = b.decode("ascii")
        yy, mm, dd = int(ymd[:2]), int(ymd[2:4]), int(ymd[4:])
        if zero_parts and (mm == 0 or dd == 0):
            put(None, raw, ST_UNKNOWN)
            continue
        era = eras.get(int(b[:ew]))
        if era is None:
            put(None, raw, ST_IMPOSSIBLE)
            continue
        days = _days(era[2] + yy - 1, mm, dd)
        if days is None:
            put(None, raw, ST_IMPOSSIBLE)
        elif era[0] <= days <= era[1]:
            put(days, raw, ST_VALID)
        else:
            put(None, raw, ST_OUT_OF_ERA)
    status = pa.DictionaryArray.from_arrays(pa.array(statuses, pa.int8()), _STATUS_DICT)
    return [pa.array(dates, pa.int32()).cast(pa.date32()), pa.array(raws, pa.string()), status]


def _decode_bytes(d: _FieldDecoder, mv, starts) -> list:
    out = []
    for row, start in enumerate(starts):
        b = d.raw(mv, start)
        handled, value = d.policy_value(row, b, b"")
        out.append(value if handled else b)
    return [pa.array(out, pa.binary())]


_DECODERS = {
    "text": _decode_text,
    "digits": _decode_digits,
    "int": _decode_int,
    "date": _decode_date,
    "wareki": _decode_wareki,
    "zoned": _decode_number,
    "packed": _decode_number,
    "decimal": _decode_number,
    "bytes": _decode_bytes,
    "dbcs": _decode_mixed,
    "binary": _decode_binary,
    "float": _decode_float,
    "national": _decode_national,
    "edited": _decode_edited,
}


def decode_block(buf, starts, plan: DecodePlan, drop_rejected: bool = False) -> DecodeResult:
    """Decode the records of ``buf`` that begin at ``starts`` with ``plan`` (pure Python).

    ``drop_rejected``: the batch holds only the rows without a rejecting error; errors and
    ``bad_rows`` still number the rows of ``starts``."""
    mv, st = check_block(buf, starts, plan)
    starts_list = st.tolist()
    sink = _Sink()
    columns = []
    for index, f in enumerate(plan.fields):
        if f.type == "filler":
            continue
        columns.extend(_DECODERS[f.type](_FieldDecoder(plan, index, f, sink), mv, starts_list))
    batch = make_batch(columns, plan.schema, len(starts_list))
    errors = DecodeErrors(sink.rows, sink.fields, sink.codes, sink.pos, sink.values, sink.reject)
    result = DecodeResult(batch, errors)
    if drop_rejected and len(result.bad_rows):
        keep = np.ones(batch.num_rows, dtype=bool)
        keep[result.bad_rows] = False
        result.batch = batch.filter(pa.array(keep))
    return result
