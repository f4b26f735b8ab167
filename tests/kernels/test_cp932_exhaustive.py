"""Exhaustive CP932 check: every 1- and 2-byte sequence against CPython's own codec.

The codec is the oracle: the kernel must produce exactly the codec's text, and an error exactly
where the codec fails (U+FFFD with errors="replace"), except in the user-defined area F040-F9FC,
which goes through the 外字 table only.
"""

import numpy as np
import pytest

from ikou.kernels import DecodePlan, ErrorCode, FieldSpec, _decode_py

_decode = pytest.importorskip("ikou.kernels._decode")

REPL = "\ufffd"
# Map every other user-defined code; the rest must be reported as UNMAPPED_GAIJI.
USER_CODES = [lead << 8 | t for lead in range(0xF0, 0xFA)
              for t in list(range(0x40, 0x7F)) + list(range(0x80, 0xFD))]
GAIJI = {c: chr(0x4E00 + i) + ("\U000E0100" if i % 7 == 0 else "")
         for i, c in enumerate(USER_CODES) if i % 2 == 0}


def _expected(rec: bytes) -> tuple[str, list[tuple[int, int]]]:
    """(text, [(code, pos)]) from the codec, with the user-defined area through GAIJI."""
    out, errors, i = [], [], 0
    while i < len(rec):
        c = rec[i]
        if i + 1 < len(rec) and (c << 8 | rec[i + 1]) in set_user:
            code = c << 8 | rec[i + 1]
            if code in GAIJI:
                out.append(GAIJI[code])
            else:
                out.append(REPL)
                errors.append((ErrorCode.UNMAPPED_GAIJI, i))
            i += 2
            continue
        try:
            out.append(rec[i:i + 1].decode("cp932"))  # a single-byte character
            i += 1
            continue
        except UnicodeDecodeError as exc:
            assert "incomplete" in exc.reason  # only lead bytes fail alone
        if i + 1 == len(rec):
            out.append(REPL)
            errors.append((ErrorCode.CUT_DOUBLE_BYTE, i))
            i += 1
            continue
        try:
            ch = rec[i:i + 2].decode("cp932")
            assert len(ch) == 1
            out.append(ch)
            i += 2
        except UnicodeDecodeError:
            out.append(REPL)
            errors.append((ErrorCode.INVALID_BYTES, i))
            i += 1
    text = "".join(out)
    # the codec itself must agree outside the user-defined area
    codec = rec.decode("cp932", "replace")
    if not any(0xE000 <= ord(ch) <= 0xE757 for ch in codec):
        assert codec == text
    return text, errors


set_user = frozenset(USER_CODES)


def _plan(length):
    return DecodePlan(record_length=length, gaiji=GAIJI, fields=[FieldSpec(
        "t", offset=0, length=length, type="text", trim="none", on_error="replace",
        replacement=REPL)])


def _check(records, decode):
    length = len(records[0])
    buf = b"".join(records)
    res = decode(buf, np.arange(len(records), dtype=np.int64) * length, _plan(length))
    got = res.batch.column("t").to_pylist()
    by_row: dict[int, list] = {}
    for row, _field, code, pos, _value, reject in res.errors:
        assert not reject
        by_row.setdefault(row, []).append((code, pos))
    mismatches = []
    for row, rec in enumerate(records):
        text, errors = _expected(rec)
        if text.strip(" \u3000") == "" and not errors:
            text = ""  # blank policy "empty"
        if got[row] != text or by_row.get(row, []) != [(int(c), p) for c, p in errors]:
            mismatches.append(rec.hex())
    assert mismatches == []


ALL_1 = [bytes([b]) for b in range(256)]
ALL_2 = [bytes([a, b]) for a in range(256) for b in range(256)]


@pytest.mark.parametrize("impl", ["compiled", "python"])
def test_every_single_byte(impl):
    _check(ALL_1, _decode.decode_block if impl == "compiled" else _decode_py.decode_block)


def test_every_two_byte_sequence_compiled():
    _check(ALL_2, _decode.decode_block)


def test_every_two_byte_sequence_twin():
    _check(ALL_2, _decode_py.decode_block)


def test_bulk_table_equals_one_code_at_a_time(monkeypatch):
    """The 2-byte table is built with one codec call for all codes; it must hold exactly what
    decoding every code of a lead byte alone gives (outside the user-defined area), and must
    not have fallen back to that slow path."""
    from ikou.kernels import _decode_common as common

    reference = common._cp932_double_each()
    assert len(reference) > 7000

    def refuse():
        raise AssertionError("fell back to decoding one code at a time")

    monkeypatch.setattr(common, "_cp932_double_each", refuse)
    bulk = common._cp932_double()
    assert bulk == reference
    assert list(bulk) == list(reference)  # same order
