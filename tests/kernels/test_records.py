"""Index pass over RDW / BDW records: the compiled kernel is loaded and equals its twin."""

import os
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ikou.kernels import RecordFormat, Stop, _records_py, find_resync, records, scan_records

try:
    from ikou.kernels import _records
except ImportError:  # pragma: no cover - reported by test_compiled_kernel_is_loaded
    _records = None

COBRIX = Path(__file__).resolve().parents[1] / "data" / "cobrix"


@pytest.mark.skipif(os.environ.get("IKOU_PURE_PYTHON") == "1", reason="pure-Python run")
def test_compiled_kernel_is_loaded():
    assert records.KERNEL_IMPL == "compiled"
    assert _records is not None and _records.CYTHON_MODULE == 1
    assert _records.__file__.endswith((".so", ".pyd"))


def _word(n, little):
    w = struct.pack(">HH", n, 0)
    return w[::-1] if little else w


def build(payloads, fmt: RecordFormat, per_block=3):
    """A V / VB buffer of records with the given payloads; returns (bytes, RDW offsets)."""
    recs = [_word(len(p) + (4 if fmt.includes_header else 0), fmt.little_endian) + p
            for p in payloads]
    if not fmt.blocked:
        offs = np.cumsum([0] + [len(r) for r in recs[:-1]]).tolist() if recs else []
        return b"".join(recs), offs
    out, offs, pos = [], [], 0
    for i in range(0, len(recs), per_block):
        group = recs[i:i + per_block]
        size = 4 + sum(len(r) for r in group)
        out.append(_word(size if fmt.bdw_includes_header else size - 4, fmt.bdw_little_endian))
        pos += 4
        for r in group:
            offs.append(pos)
            out.append(r)
            pos += len(r)
    return b"".join(out), offs


def test_clean_buffers_scan_exactly_in_both_orders_and_conventions():
    payloads = [bytes([65 + i]) * (1 + i % 9) for i in range(40)]
    for blocked in (False, True):
        for little in (False, True):
            for header in (False, True):
                fmt = RecordFormat(blocked=blocked, little_endian=little, includes_header=header,
                                   max_length=9, bdw_little_endian=little,
                                   bdw_includes_header=header)
                buf, offs = build(payloads, fmt)
                for impl in (_records, _records_py):
                    r = scan_records(buf, 0, None, fmt, impl=impl)
                    assert r.reason == Stop.END and r.stop == len(buf)
                    assert r.rdw.tolist() == offs
                    assert r.length.tolist() == [len(p) for p in payloads]
                    assert (r.start == r.rdw + 4).all()


def test_bad_words_are_named():
    fmt = RecordFormat(max_length=10)
    buf, offs = build([b"a" * 5, b"b" * 6, b"c" * 7, b"d" * 8], fmt)
    cases = {
        Stop.RDW_SHORT: b"\x00\x04\x00\x00",
        Stop.RDW_LONG: b"\x00\xff\x00\x00",
        Stop.RDW_RESERVED: b"\x00\x0a\x00\x01",
    }
    for reason, word in cases.items():
        bad = buf[:offs[1]] + word + buf[offs[1] + 4:]
        for impl in (_records, _records_py):
            r = scan_records(bad, 0, None, fmt, impl=impl)
            assert (r.reason, r.stop, len(r.rdw)) == (reason, offs[1], 1)
            assert find_resync(bad, offs[1] + 1, None, fmt, 2, impl=impl) == (offs[2], 0)
    for impl in (_records, _records_py):
        r = scan_records(buf[:-3], 0, None, fmt, impl=impl)
        assert (r.reason, r.stop, r.found) == (Stop.RDW_PAST_END, offs[3], 12)
        r = scan_records(buf[:-3], 0, None, fmt, at_eof=False, impl=impl)
        assert (r.reason, r.stop) == (Stop.NEED_MORE, offs[3])
        r = scan_records(buf + b"\x00\x00", 0, None, fmt, impl=impl)
        assert (r.reason, r.stop) == (Stop.TRUNCATED, len(buf))
        r = scan_records(buf, 0, None, fmt, limit=offs[2], impl=impl)
        assert (r.reason, r.stop, len(r.rdw)) == (Stop.END, offs[2], 2)


def test_vb_bad_rdw_inside_a_block_gives_the_block_end():
    fmt = RecordFormat(blocked=True, max_length=10)
    buf, offs = build([b"x" * 4] * 6, fmt, per_block=3)
    bad = buf[:offs[1]] + b"\x00\x00\x00\x00" + buf[offs[1] + 4:]
    for impl in (_records, _records_py):
        r = scan_records(bad, 0, None, fmt, impl=impl)
        assert (r.reason, r.stop, r.block_end) == (Stop.RDW_SHORT, offs[1], offs[3] - 4)
        ext = bytearray(buf)
        ext[0:4] = b"\x80\x00\x00" + bytes([buf[1]])  # extended BDW, same length
        assert scan_records(bytes(ext), 0, None, fmt, impl=impl).rdw.tolist() == offs
        r = scan_records(b"\x00\x03\x00\x00" + buf[4:], 0, None, fmt, impl=impl)
        assert (r.reason, r.stop) == (Stop.BDW_SHORT, 0)


@st.composite
def cases(draw):
    fmt = RecordFormat(blocked=draw(st.booleans()), little_endian=draw(st.booleans()),
                       includes_header=draw(st.booleans()),
                       min_length=draw(st.integers(0, 2)), max_length=draw(st.integers(3, 40)),
                       bdw_little_endian=draw(st.booleans()),
                       bdw_includes_header=draw(st.booleans()),
                       bdw_max_length=draw(st.integers(60, 200)))
    lengths = draw(st.lists(st.integers(fmt.min_length, fmt.max_length), max_size=30))
    payloads = [bytes(draw(st.integers(0, 3)) for _ in range(n)) for n in lengths]
    buf = bytearray(build(payloads, fmt, per_block=draw(st.integers(1, 3)))[0])
    for _ in range(draw(st.integers(0, 4))):  # corruptions: overwritten, inserted, cut
        if not buf:
            break
        i = draw(st.integers(0, len(buf) - 1))
        op = draw(st.sampled_from(["set", "insert", "cut"]))
        if op == "set":
            buf[i] = draw(st.integers(0, 255))
        elif op == "insert":
            buf[i:i] = bytes(draw(st.lists(st.integers(0, 255), min_size=1, max_size=6)))
        else:
            del buf[i:]
    n = len(buf)
    start = draw(st.integers(0, n))
    end = draw(st.integers(start, n))
    limit = draw(st.one_of(st.just(-1), st.integers(start, n)))
    return fmt, bytes(buf), start, end, limit, draw(st.booleans()), draw(st.integers(1, 4))


@settings(max_examples=150, deadline=None)
@given(cases())
def test_compiled_equals_twin(case):
    fmt, buf, start, end, limit, at_eof, k = case
    a = scan_records(buf, start, end, fmt, at_eof, limit, impl=_records)
    b = scan_records(buf, start, end, fmt, at_eof, limit, impl=_records_py)
    assert (a.stop, a.reason, a.found, a.block_end) == (b.stop, b.reason, b.found, b.block_end)
    assert np.array_equal(a.rdw, b.rdw) and np.array_equal(a.length, b.length)
    assert find_resync(buf, start, end, fmt, k, at_eof, impl=_records) == \
        find_resync(buf, start, end, fmt, k, at_eof, impl=_records_py)


def test_small_capacity_scans_the_same():
    from ikou.kernels._records_common import scan_records as drive

    fmt = RecordFormat(blocked=True, max_length=5)
    buf, offs = build([b"z" * (1 + i % 5) for i in range(100)], fmt, per_block=7)
    r = drive(_records.scan_chunk, buf, 0, None, fmt, capacity=16)
    assert r.rdw.tolist() == offs and r.reason == Stop.END


def test_cobrix_variable_length_files_are_indexed():
    seg = COBRIX / "later_vrl_multisegment_rdw"
    for path, little in ((seg / "test5_data/COMP.DETAILS.SEP30.DATA.dat", True),
                         (seg / "test5b_data/COMP.DETAILS.FEB02.DATA.RDW.BE.dat", False)):
        fmt = RecordFormat(little_endian=little, includes_header=False, max_length=64)
        r = scan_records(path.read_bytes(), 0, None, fmt)
        assert r.reason == Stop.END and len(r.rdw) == 1000
        assert dict(zip(*np.unique(r.length, return_counts=True), strict=True)) == \
            {60: 684, 64: 316}
    data = (COBRIX / "later_vrl_hierarchical_rdw/HIERARCHICAL.DATA.RDW.dat").read_bytes()
    r = scan_records(data, 0, None, RecordFormat(little_endian=True, includes_header=False,
                                                 max_length=200))
    assert r.reason == Stop.END and len(r.rdw) == 951
    assert (r.length.min(), r.length.max()) == (29, 108)
