"""Pure-Python twin of the compiled decoding kernel ``_decode.pyx``.

Same behaviour, byte for byte and error for error; used when ``IKOU_PURE_PYTHON=1`` and by
the tests that check the two agree.  Slow by design: clarity over speed.
"""

from __future__ import annotations

import datetime as _dt

import numpy as np
import pyarrow as pa

from ._decode_common import (
    EBCDIC_DIGIT_MAP,
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
        if p is None and self.f.type not in ("text", "dbcs") and _uniform(b, 0x20) \
                and self.opts["blank"] != "decode":
            p = (self.opts["blank"], ErrorCode.BLANK_VALUE, 0x20)
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
    """Big-endian two's complement (or unsigned) integers of 2, 4 or 8 bytes."""
    f, opts = d.f, d.opts
    scale = opts["scale"]
    out = []
    for row, start in enumerate(starts):
        b = d.raw(mv, start)
        v = int.from_bytes(b, "big", signed=opts["signed"])
        if scale == 0 and v > INT64_MAX:
            d.err(row, ErrorCode.INT_OVERFLOW, 0, b[0])
            v = None
        out.append(v)
    if scale == 0:
        return [pa.array(out, pa.int64())]
    return [_decimal_array(out, pa.decimal128(f.precision, scale))]


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
    typ = pa.decimal128(f.precision, scale)
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
        out.append(v)
    return [_decimal_array(out, typ)]


def _zoned(d: _FieldDecoder, row: int, b: bytes):
    n = len(b)
    ebcdic = d.opts["zone"] == "ebcdic"
    v = 0
    for i in range(n - 1):
        c = b[i]
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
    c = b[n - 1]
    if ebcdic:
        if (c & 0x0F) > 9:
            d.err(row, ErrorCode.NOT_DIGITS, n - 1, c)
            return None
        zone = c >> 4
        if zone not in (0xC, 0xD, 0xF):
            d.err(row, ErrorCode.INVALID_SIGN, n - 1, c)
            return None
        digit, neg = c & 0x0F, zone == 0xD
    else:
        if c not in _ASCII_OVERPUNCH:
            d.err(row, ErrorCode.INVALID_SIGN, n - 1, c)
            return None
        digit, neg = _ASCII_OVERPUNCH[c]
    if neg and not d.opts["signed"]:
        d.err(row, ErrorCode.INVALID_SIGN, n - 1, c)
        return None
    v = v * 10 + digit
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
}


def decode_block(buf, starts, plan: DecodePlan) -> DecodeResult:
    """Decode the records of ``buf`` that begin at ``starts`` with ``plan`` (pure Python)."""
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
    return DecodeResult(batch, errors)
