"""Exhaustive IBM host code page checks against glibc's iconv (the oracle, through ctypes).

Every single byte 0x40-0xFE and every double-byte code 0x4040-0xFEFE inside SO…SI of 930, 939,
1390 and 1399 decodes exactly as glibc decodes it, except:
- where glibc refuses a code, ikou reports INVALID_DBCS (never a substitute);
- where glibc substitutes U+001A (27 unassigned single bytes of the 1390/1399 halves), ikou
  reports UNASSIGNED_BYTE;
- the user-defined area (930/939 6941-7FFE, 1390/1399 6941-89BD), which glibc maps to private-use
  code points, goes only through the 外字 table (no row: UNMAPPED_GAIJI).
Each check is one decode_block call over all codes (both implementations) and one pass of iconv.
"""

import functools

import numpy as np
import pytest
from iconv_oracle import available
from iconv_oracle import decode_records as _decode_records

from ikou.kernels import DecodePlan, ErrorCode, FieldSpec, _decode_py

_decode = pytest.importorskip("ikou.kernels._decode")

GLIBC = {"ibm930": "IBM930", "ibm939": "IBM939", "ibm1390": "IBM1390", "ibm1399": "IBM1399"}
USER_END = {"ibm930": 0x7FFE, "ibm939": 0x7FFE, "ibm1390": 0x89BD, "ibm1399": 0x89BD}
DBCS = [lead << 8 | trail for lead in range(0x40, 0xFF) for trail in range(0x40, 0xFF)]
IMPLS = {"compiled": _decode.decode_block, "python": _decode_py.decode_block}


@functools.cache
def _oracle(charset, records):
    return _decode_records(charset, list(records))


def decode_records(charset, records):
    return _oracle(charset, tuple(records))


def _is_pua(s):
    return any(0xE000 <= ord(c) <= 0xF8FF for c in s)


def _decode_all(impl, enc, records, length, gaiji=None):
    plan = DecodePlan(length, [FieldSpec("t", offset=0, length=length, type="text",
                                         encoding=enc, trim="none")], gaiji=gaiji)
    res = IMPLS[impl](b"".join(records), np.arange(len(records), dtype=np.int64) * length, plan)
    errs = {}
    for row, _f, code, pos, value, _r in res.errors:
        errs.setdefault(row, []).append((ErrorCode(code), pos, value))
    return res.batch.column(0).to_pylist(), errs


def _blank(s):
    return "" if s.strip(" \u3000") == "" else s


# the twin on 930 and 1390 only: 939 / 1399 share their double-byte tables (checked compiled)
@pytest.mark.parametrize("enc,impl", [(e, i) for e in GLIBC for i in IMPLS
                                      if i == "compiled" or e in ("ibm930", "ibm1390")])
def test_every_double_byte_code_as_glibc(enc, impl):
    if not available(GLIBC[enc]):
        pytest.skip(f"glibc has no {GLIBC[enc]} converter")
    records = [b"\x0e" + c.to_bytes(2, "big") + b"\x0f" for c in DBCS]
    oracle = decode_records(GLIBC[enc], records)
    got, errs = _decode_all(impl, enc, records, 4)
    counts = {"same": 0, "refused": 0, "user": 0}
    for k, code in enumerate(DBCS):
        want = oracle[k]
        if want is None:
            assert errs.get(k) == [(ErrorCode.INVALID_DBCS, 1, code)], hex(code)
            assert got[k] is None
            counts["refused"] += 1
        elif _is_pua(want):
            assert 0x6941 <= code <= USER_END[enc], hex(code)
            assert errs.get(k) == [(ErrorCode.UNMAPPED_GAIJI, 1, code)], hex(code)
            counts["user"] += 1
        else:
            assert k not in errs, (hex(code), errs.get(k))
            assert got[k] == _blank(want), hex(code)
            counts["same"] += 1
    n_user = 23 * 190 if USER_END[enc] == 0x7FFE else 32 * 190 + 125
    assert counts["user"] == n_user
    assert counts["same"] == {"ibm930": 7265, "ibm939": 7265}.get(enc, 15897)


@pytest.mark.parametrize("enc", GLIBC)
def test_user_area_through_the_gaiji_table(enc):
    user = [c for c in DBCS if 0x6941 <= c <= USER_END[enc] and 0x41 <= (c & 0xFF) <= 0xFE]
    gaiji = {(enc, c): chr(0x4E00 + i) for i, c in enumerate(user) if i % 2 == 0}
    records = [b"\x0e" + c.to_bytes(2, "big") + b"\x0f" for c in user]
    for impl in IMPLS:
        got, errs = _decode_all(impl, enc, records, 4, gaiji)
        for k, c in enumerate(user):
            if (enc, c) in gaiji:
                assert got[k] == gaiji[(enc, c)] and k not in errs
            else:
                assert errs[k] == [(ErrorCode.UNMAPPED_GAIJI, 1, c)]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("enc", GLIBC)
def test_every_single_byte_as_glibc(enc, impl):
    if not available(GLIBC[enc]):
        pytest.skip(f"glibc has no {GLIBC[enc]} converter")
    records = [bytes([b]) for b in range(0x40, 0xFF)]
    oracle = decode_records(GLIBC[enc], records)
    got, errs = _decode_all(impl, enc, records, 1)
    substituted = 0
    for k, rec in enumerate(records):
        want = oracle[k]
        if want is None or want == "\x1a":
            substituted += want == "\x1a"
            assert errs.get(k) == [(ErrorCode.UNASSIGNED_BYTE, 0, rec[0])], hex(rec[0])
        else:
            assert k not in errs, hex(rec[0])
            assert got[k] == _blank(want), hex(rec[0])
    if enc in ("ibm1390", "ibm1399"):
        assert substituted == 27  # glibc's U+001A for unassigned bytes: errors in ikou


@pytest.mark.parametrize("enc,half", [("cp290", "ibm930"), ("cp1027", "ibm939")])
def test_single_byte_halves(enc, half):
    """cp290 / cp1027 decode every byte 0x40-0xFE as the single-byte state of 930 / 939."""
    records = [bytes([b]) for b in range(0x40, 0xFF)]
    for impl in IMPLS:
        a = _decode_all(impl, enc, records, 1)
        b = _decode_all(impl, half, records, 1)
        assert a == b


@pytest.mark.parametrize("enc", ["cp037", "cp273", "cp500", "cp1140"])
def test_single_byte_ebcdic_as_cpython(enc):
    records = [bytes([b]) for b in range(256)]
    for impl in IMPLS:
        got, errs = _decode_all(impl, enc, records, 1)
        assert not errs
        assert got == [_blank(r.decode(enc)) for r in records]
