"""The compiled kernel's fast paths for COBOL numbers (COMP-3 by table, EBCDIC zoned eight digits
at a time with an overlapping tail load, binary by byte swap, raw bytes by 8-byte copies) against
the pure-Python twin and against values computed here from the digits, on every length, at the
start of the block (no bytes before the field) and inside it, with one bad byte at every
position."""

import random

import numpy as np
import pytest
from test_decode_hypothesis import assert_same

from ikou.kernels import DecodePlan, FieldSpec

pytest.importorskip("ikou.kernels._decode")


def _records(rl, fill):
    """Rows of rl bytes: each row from fill(row_index) -> bytes of the record."""
    rows = [fill(i) for i in range(400)]
    assert all(len(r) == rl for r in rows)
    return b"".join(rows), np.arange(len(rows), dtype=np.int64) * rl


def _zoned(rnd, n, neg):
    digits = [rnd.randrange(10) for _ in range(n)]
    body = bytes(0xF0 | d for d in digits[:-1]) + bytes([(0xD0 if neg else 0xC0) | digits[-1]])
    value = int("".join(map(str, digits)))
    return body, -value if neg else value


@pytest.mark.parametrize("offset", [0, 3])
def test_zoned_ebcdic_every_length(offset):
    rnd = random.Random(7 + offset)
    for n in range(1, 39):
        rl = offset + n + 2
        for opts in ({"signed": True}, {"signed": False, "strict_sign": True},
                     {"signed": True, "scale": -2}):
            if opts.get("scale") and n > 36:  # at most 38 digits with the P scaling
                continue
            field = FieldSpec("z", offset=offset, length=n, type="zoned", zone="ebcdic", **opts)
            plan = DecodePlan(record_length=rl, fields=[field])
            expect = {}

            def fill(i, n=n, rl=rl, opts=opts, expect=expect):
                neg = opts["signed"] and i % 2 == 1
                body, value = _zoned(rnd, n, neg)
                if not opts["signed"]:
                    body = body[:-1] + bytes([0xF0 | body[-1] & 15])
                if i >= 200:  # one bad byte at a position that depends on the row
                    at = i % n
                    body = body[:at] + bytes([rnd.choice([0x4B, 0xFA, 0x00, 0x7F, 0x40])]) + body[at + 1:]
                else:
                    expect[i] = value * 10 ** -opts.get("scale", 0) if opts.get("scale") else value
                rec = bytes([0xF1]) * offset + body + b"\x40\x40"
                return rec[:rl]

            data, starts = _records(rl, fill)
            res = assert_same(plan, data, starts)
            col = res.batch.column("z").to_pylist()
            scale = plan.fields[0].options.get("scale", 0) or 0
            for i, v in expect.items():
                got = col[i].scaleb(scale) if scale > 0 else col[i]
                assert int(got) == v, (n, opts, i)


@pytest.mark.parametrize("offset", [0, 5])
def test_packed_every_length(offset):
    rnd = random.Random(11 + offset)
    for n in range(1, 20):
        rl = offset + n + 1
        for opts in ({"signed": True}, {"signed": False}, {"signed": True, "scale": -3}):
            if opts.get("scale") and 2 * n - 1 > 35:
                continue
            field = FieldSpec("p", offset=offset, length=n, type="packed", **opts)
            plan = DecodePlan(record_length=rl, fields=[field])
            expect = {}

            def fill(i, n=n, rl=rl, opts=opts, expect=expect):
                digits = [rnd.randrange(10) for _ in range(2 * n - 1)]
                neg = opts["signed"] and i % 2 == 1
                nib = digits + [0xD if neg else rnd.choice([0xC, 0xF])]
                body = bytes(nib[k] << 4 | nib[k + 1] for k in range(0, 2 * n, 2))
                if i >= 200:
                    at = i % n
                    body = body[:at] + bytes([rnd.choice([0xFA, 0xAF, 0x0A, 0x1B, 0xFF])]) + body[at + 1:]
                else:
                    v = int("".join(map(str, digits)))
                    expect[i] = (-v if neg else v) * 10 ** -opts.get("scale", 0)
                return bytes(offset) + body + b"\x00"

            data, starts = _records(rl, fill)
            res = assert_same(plan, data, starts)
            col = res.batch.column("p").to_pylist()
            for i, v in expect.items():
                assert int(col[i]) == v, (n, opts, i)


def test_binary_every_variant():
    rnd = random.Random(3)
    extremes = [b"\x00" * 8, b"\xff" * 8, b"\x80" + b"\x00" * 7, b"\x7f" + b"\xff" * 7]
    for n in (2, 4, 8):
        for order in ("big", "little"):
            for signed in (True, False):
                for extra in ({}, {"digits": {2: 4, 4: 9, 8: 18}[n]}, {"digits": 1, "scale": 2},
                              {"scale": -3}):
                    field = FieldSpec("b", offset=1, length=n, type="binary", byte_order=order,
                                      signed=signed, **extra)
                    plan = DecodePlan(record_length=n + 1, fields=[field])
                    data, starts = _records(n + 1, lambda i, n=n: b"\x00" + (
                        extremes[i % 4][:n] if i < 8 else rnd.randbytes(n)))
                    res = assert_same(plan, data, starts)
                    col = res.batch.column("b").to_pylist()
                    scale = extra.get("scale", 0)
                    limit = 10 ** extra["digits"] if "digits" in extra else None
                    for i in range(len(col)):
                        v = int.from_bytes(data[i * (n + 1) + 1:(i + 1) * (n + 1)], order,
                                           signed=signed)
                        if (limit is not None and abs(v) >= limit) or (
                                not scale and not signed and n == 8 and v >= 2 ** 63):
                            assert col[i] is None
                        elif scale > 0:
                            assert int(col[i].scaleb(scale)) == v
                        else:
                            assert int(col[i]) == v * 10 ** -scale


def test_raw_bytes_every_length():
    rnd = random.Random(5)
    for n in range(1, 21):
        for opts in ({}, {"low_value": "null"}):
            fields = [FieldSpec("a", offset=0, length=n, type="bytes", **opts),
                      FieldSpec("b", offset=n, length=n, type="bytes")]
            plan = DecodePlan(record_length=2 * n, fields=fields)
            data, starts = _records(2 * n, lambda i, n=n: (bytes(n) if i % 7 == 0 else rnd.randbytes(n))
                                    + rnd.randbytes(n))
            res = assert_same(plan, data, starts)
            a, b = res.batch.column("a").to_pylist(), res.batch.column("b").to_pylist()
            for i in range(len(a)):
                rec = data[i * 2 * n:(i + 1) * 2 * n]
                assert a[i] == (None if opts and rec[:n] == bytes(n) else rec[:n])
                assert b[i] == rec[n:]


@pytest.mark.parametrize("offset", [0, 2])
@pytest.mark.parametrize("sign", ["leading", "leading separate", "trailing separate"])
def test_zoned_ebcdic_sign_separate_or_leading(offset, sign):
    rnd = random.Random(13 + offset)
    separate = sign.endswith("separate")
    for n in range(2 if separate else 1, 25):
        rl = offset + n + 1
        for opts in ({"signed": True}, {"signed": False}, {"signed": True, "scale": 3}):
            field = FieldSpec("z", offset=offset, length=n, type="zoned", zone="ebcdic",
                              sign_position=sign.split()[0], sign_separate=separate, **opts)
            plan = DecodePlan(record_length=rl, fields=[field])
            expect = {}

            def fill(i, n=n, opts=opts, expect=expect):
                neg = opts["signed"] and i % 2 == 1
                nd = n - 1 if separate else n
                digits = [rnd.randrange(10) for _ in range(nd)]
                body = bytearray(0xF0 | d for d in digits)
                if separate:
                    mark = 0x60 if neg else 0x4E
                    body = bytearray([mark]) + body if sign.startswith("leading") else body + bytes(
                        [mark])
                else:
                    body[0] = (0xD0 if neg else rnd.choice([0xC0, 0xF0])) | digits[0]
                if i >= 200:
                    at = i % n
                    body[at] = rnd.choice([0x4B, 0xFA, 0x00, 0x60, 0x4E, 0xC1, 0xD9])
                else:
                    v = int("".join(map(str, digits)))
                    expect[i] = -v if neg else v
                return bytes([0xF1]) * offset + bytes(body) + b"\x40"

            data, starts = _records(rl, fill)
            res = assert_same(plan, data, starts)
            col = res.batch.column("z").to_pylist()
            for i, v in expect.items():
                got = col[i].scaleb(opts.get("scale", 0))
                assert int(got) == v, (n, sign, opts, i)
