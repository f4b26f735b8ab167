"""Property tests: compiled kernel == pure-Python twin for arbitrary bytes and valid layouts."""

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ikou.kernels import DecodePlan, FieldSpec, PlanError, _decode_py

_decode = pytest.importorskip("ikou.kernels._decode")

# Byte pieces that hit the interesting paths far more often than uniform random bytes.
PIECES = [
    b" ", b"  ", b"0", b"7", b"9", b"12", b"-", b"+", b"\x00", b"\xff", b"\x80", b"\xa0",
    b"\xb6\xde", b"\xca\xdf", b"\xb2\xde", b"\xde", b"\xdf", b"\xb1", b"\x81\x40", b"\x82\x60",
    b"\x82\xa0", b"\x88\x9f", b"\x87\x40", b"\xed\x40", b"\xfa\x40", b"\xfb\xfc", b"\xf0\x40",
    b"\xf0\x41", b"\xf9\xfc", b"\xf5\x80", b"\x81", b"\xeb\x41", b"\x85\x40", b"\x81\x20",
    b"{", b"}", b"A", b"J", b"p", b"\xf1", b"\xc3", b"\xd4", b"\x12\x3c", b"\x4d", b"\x0f",
    b"3640108", b"1450730", b"000000", b"999999", b"20240229", b"\x81\x60", b"\x81\x5f",
]

TEXT_OPTS = st.fixed_dictionaries({}, optional={
    "on_error": st.sampled_from(["reject", "null"]),
    "kana_widen": st.booleans(),
    "ascii_narrow": st.booleans(),
    "trim": st.sampled_from(["none", "left", "right", "both"]),
    "blank": st.sampled_from(["empty", "null", "error"]),
    "low_value": st.sampled_from(["decode", "empty", "null", "error"]),
    "high_value": st.sampled_from(["decode", "empty", "null", "error"]),
    "gaiji_fallback": st.booleans(),
})
REPLACE_OPTS = st.fixed_dictionaries({
    "on_error": st.just("replace"),
    "replacement": st.sampled_from(["〓", "?", "\U000E0100■", "\ufffd"]),
    "trim": st.sampled_from(["none", "left", "right", "both"]),
})
NUM_POL = st.sampled_from(["null", "error"])
NUMBER_OPTS = st.fixed_dictionaries({}, optional={
    "on_error": st.sampled_from(["reject", "null"]),
    "blank": NUM_POL, "low_value": NUM_POL, "high_value": NUM_POL,
    "signed": st.booleans(),
})
STR_POL = st.sampled_from(["null", "empty", "error"])


@st.composite
def field_specs(draw, name, record_length):
    t = draw(st.sampled_from(["text", "text", "text", "digits", "int", "date", "wareki",
                              "filler", "zoned", "packed", "decimal", "bytes"]))
    fixed = {"date": 8, "wareki": draw(st.sampled_from([7, 8]))}.get(t)
    max_len = min(record_length, {"packed": 19, "zoned": 38, "decimal": 38}.get(t, 40))
    if fixed is not None and fixed > record_length:
        t, fixed = "text", None
    length = fixed or draw(st.integers(1, max_len))
    offset = draw(st.integers(0, record_length - length))
    opts = {}
    if t == "text":
        opts = draw(st.one_of(TEXT_OPTS, REPLACE_OPTS))
    elif t == "digits":
        opts = draw(st.fixed_dictionaries({}, optional={"blank": STR_POL, "low_value": STR_POL,
                                                        "on_error": st.just("null")}))
    elif t in ("int", "decimal", "zoned", "packed"):
        opts = draw(NUMBER_OPTS)
        if t == "int":
            pass
        else:
            prec = 2 * length - 1 if t == "packed" else length
            opts["scale"] = draw(st.integers(0, prec))
            if t == "zoned":
                opts["zone"] = draw(st.sampled_from(["ascii", "ebcdic"]))
    elif t == "date":
        opts = draw(st.fixed_dictionaries({}, optional={"blank": NUM_POL, "low_value": NUM_POL}))
    elif t == "wareki":
        opts = draw(st.fixed_dictionaries({}, optional={
            "blank": NUM_POL, "high_value": NUM_POL,
            "unknown": st.lists(st.sampled_from(["000000", "999999", "      ", "0000  "]),
                                max_size=3),
            "unknown_zero_parts": st.booleans(),
            "eras": st.just({1: ("1868-01-25", "1912-07-30"), 7: {"start": "2030-01-01"}}),
        }))
    elif t == "bytes":
        opts = draw(st.fixed_dictionaries({}, optional={
            "blank": st.sampled_from(["decode", "null", "empty", "error"]),
            "low_value": st.sampled_from(["decode", "null", "error"])}))
    return FieldSpec(name, offset=offset, length=length, type=t, **opts)


@st.composite
def cases(draw):
    rl = draw(st.integers(1, 48))
    nf = draw(st.integers(1, 6))
    fields = [draw(field_specs(f"f{i}", rl)) for i in range(nf)]
    gaiji = draw(st.dictionaries(
        st.sampled_from([0xF040, 0xF041, 0xF9FC, 0xF57E]),
        st.one_of(st.sampled_from(["髙", "葛\U000E0100", "𠮷", "　", "Ａ"]),
                  st.tuples(st.sampled_from(["𠮷", "髙"]), st.sampled_from(["吉", "高"]))),
        max_size=4))
    nrec = draw(st.integers(0, 6))
    chunks = draw(st.lists(st.one_of(st.sampled_from(PIECES), st.binary(min_size=1, max_size=4)),
                           max_size=nrec * rl))
    data = b"".join(chunks)
    total = rl * nrec + draw(st.integers(0, 3))
    data = (data + b" " * total)[:total]
    starts = sorted(draw(st.lists(st.integers(0, max(0, total - rl)), min_size=nrec,
                                  max_size=nrec))) if total >= rl else []
    plan = DecodePlan(record_length=rl, fields=fields, gaiji=gaiji,
                      gaiji_fallback=draw(st.booleans()))
    return plan, data, np.array(starts, dtype=np.int64)


def assert_same(plan, data, starts):
    a = _decode.decode_block(data, starts, plan)
    b = _decode_py.decode_block(data, starts, plan)
    assert a.batch.schema == b.batch.schema
    for name in a.batch.schema.names:
        assert a.batch.column(name).to_pylist() == b.batch.column(name).to_pylist(), name
    assert a.batch.equals(b.batch)
    assert a.errors.equals(b.errors)
    assert np.array_equal(a.bad_rows, b.bad_rows)
    a.batch.validate(full=True)
    assert_same_compacted(plan, data, starts, a)
    return a


def assert_same_compacted(plan, data, starts, full):
    """``drop_rejected``: the compiled kernel compacts its columns in place; the rows left are
    the full batch's rows without a rejecting error, as in the twin; errors are unchanged."""
    a = _decode.decode_block(data, starts, plan, drop_rejected=True)
    b = _decode_py.decode_block(data, starts, plan, drop_rejected=True)
    keep = np.ones(full.batch.num_rows, dtype=bool)
    keep[full.bad_rows] = False
    expected = full.batch.filter(pa.array(keep))
    a.batch.validate(full=True)
    for name in expected.schema.names:
        assert a.batch.column(name).to_pylist() == expected.column(name).to_pylist(), name
        assert a.batch.column(name).null_count == expected.column(name).null_count, name
    assert a.batch.equals(b.batch)
    assert a.errors.equals(full.errors)
    assert np.array_equal(a.bad_rows, full.bad_rows)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_compiled_equals_twin(case):
    assert_same(*case)


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=0, max_size=200), st.integers(1, 40))
def test_text_on_raw_bytes_equals_codec(data, length):
    """A text field (trim none) on arbitrary bytes: codec semantics, errors where it fails."""
    rl = length
    n = len(data) // rl
    plan = DecodePlan(record_length=rl, fields=[FieldSpec(
        "t", offset=0, length=rl, type="text", trim="none", on_error="replace",
        replacement="\ufffd", blank="empty")])
    res = assert_same(plan, data, np.arange(n, dtype=np.int64) * rl)
    for i, got in enumerate(res.batch.column("t").to_pylist()):
        rec = data[i * rl:(i + 1) * rl]
        expected = _codec(rec)
        if expected.strip(" \u3000") == "" and "\ufffd" not in expected:
            expected = ""
        assert got == expected


def _codec(rec: bytes) -> str:
    """CPython's codec with the user-defined area (no 外字 table here) as errors."""
    out = rec.decode("cp932", "replace")
    # the codec maps F040-F9FC to PUA; the kernel reports UNMAPPED_GAIJI instead
    return "".join("\ufffd" if 0xE000 <= ord(c) <= 0xE757 else c for c in out)


def test_plan_rejects_bad_gaiji_value():
    with pytest.raises(PlanError):
        DecodePlan(record_length=2, fields=[FieldSpec("t", offset=0, length=2, type="text")],
                   gaiji={0xF040: ("a", 5)})


def test_many_rows_all_types_equal_twin():
    """More rows than one C chunk (256), every field type: compiled == twin, row for row."""
    rng = np.random.default_rng(7)
    fields = [
        FieldSpec("t", offset=0, length=12, type="text", kana_widen=True),
        FieldSpec("d", offset=12, length=4, type="digits"),
        FieldSpec("i", offset=16, length=6, type="int"),
        FieldSpec("dt", offset=22, length=8, type="date", on_error="null"),
        FieldSpec("w", offset=30, length=7, type="wareki"),
        FieldSpec("z", offset=37, length=5, type="zoned", scale=1),
        FieldSpec("p", offset=42, length=4, type="packed"),
        FieldSpec("m", offset=46, length=6, type="decimal", scale=2),
        FieldSpec("b", offset=52, length=3, type="bytes"),
        FieldSpec("r", offset=0, length=12, type="text", on_error="replace", replacement="〓",
                  trim="both"),
    ]
    plan = DecodePlan(record_length=55, fields=fields, gaiji={0xF040: "髙"})
    pieces = np.array(PIECES, dtype=object)
    records = []
    for _ in range(1500):
        raw = b"".join(pieces[rng.integers(0, len(pieces), 40)].tolist())
        records.append((raw + b" " * 55)[:55])
    data = b"".join(records)
    starts = np.arange(len(records), dtype=np.int64) * 55
    res = assert_same(plan, data, starts)
    assert len(res.errors) > 100 and res.batch.num_rows == 1500
    assert res.errors.reject.any() and not res.errors.reject.all()
    assert res.bad_rows.tolist() == sorted(set(res.errors.row[res.errors.reject].tolist()))
