"""Mainframe encodings in the decoding kernel: shift states, errors, spaces, 外字, EBCDIC numbers,
binary integers; compiled == twin on arbitrary bytes for every encoding (hypothesis)."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ikou.kernels as kernels
from ikou.kernels import (
    ENCODINGS,
    DecodePlan,
    ErrorCode,
    FieldSpec,
    PlanError,
    _decode_py,
    canonical_encoding,
    format_error,
    get_encoding,
)

_decode = pytest.importorskip("ikou.kernels._decode")

MAINFRAME = [e for e in ENCODINGS if e != "cp932"]
E = ErrorCode


def both(fields, records, gaiji=None):
    """Decode with both implementations, check they agree; (values, errors as tuples)."""
    length = len(records[0])
    buf = b"".join(records)
    starts = np.arange(len(records), dtype=np.int64) * length
    a = _decode.decode_block(buf, starts, DecodePlan(length, fields, gaiji=gaiji))
    b = _decode_py.decode_block(buf, starts, DecodePlan(length, fields, gaiji=gaiji))
    assert a.batch.equals(b.batch), (a.batch.to_pydict(), b.batch.to_pydict())
    assert a.errors.equals(b.errors), (list(a.errors), list(b.errors))
    return a.batch.to_pydict(), [(r, E(c), p, v) for r, _f, c, p, v, _ in a.errors]


def text(enc, n, **kw):
    return FieldSpec("t", offset=0, length=n, type="text", encoding=enc, **kw)


@pytest.mark.skipif(os.environ.get("IKOU_PURE_PYTHON") == "1", reason="pure-Python run")
@pytest.mark.parametrize("enc", MAINFRAME)
def test_compiled_path_is_used_for_every_encoding(enc):
    plan = DecodePlan(4, [text(enc, 4)])
    kernels.decode_block(b"\x40" * 4, np.zeros(1, np.int64), plan)
    assert kernels.decode_block is _decode.decode_block
    assert "compiled" in plan._cache  # the compiled plan (C tables) was built and used


def test_ibm930_mixed_text_and_trimming():
    kan = b"\x45\x41\x45\x42"  # 一二 in CCSID 300
    rec = b"\xc1\x0e" + kan + b"\x40\x40\x0f\x40\x40"  # A 一二 (full-width space) SI spaces
    vals, errs = both([text("ibm930", len(rec))], [rec])
    assert vals["t"] == ["A一二"] and errs == []
    vals, _ = both([text("ibm930", len(rec), trim="none")], [rec])
    assert vals["t"] == ["A一二\u3000  "]


def test_shift_errors_name_position_and_code():
    recs = [
        b"\x0e\x45\x41\x45\x0f\x40",  # odd byte before SI
        b"\x0e\x45\x41\x45\x42\x40",  # ends in double-byte state, last byte cut
        b"\x0e\x45\x41\x45\x42\x0f",  # fine
        b"\x0e\x41\x40\x0f\x40\x40",  # invalid DBCS code
    ]
    vals, errs = both([text("ibm939", 6)], recs)
    assert vals["t"] == [None, None, "一二", None]
    assert errs == [(0, E.ODD_DBCS_BYTES, 3, 0x45), (1, E.UNTERMINATED_SHIFT, 0, 0x0E),
                    (1, E.CUT_DOUBLE_BYTE, 5, 0x40), (3, E.INVALID_DBCS, 1, 0x4140)]
    plan = DecodePlan(6, [text("ibm939", 6)])
    assert format_error(plan, 0, E.INVALID_DBCS, 1, 0x4140) == (
        "field t (text): INVALID_DBCS: invalid double-byte code at byte 1 (code 0x4140)")
    assert "(byte 0x45)" in format_error(plan, 0, E.ODD_DBCS_BYTES, 3, 0x45)


def test_shift_state_double_and_dbcs_fields():
    vals, errs = both([text("ibm930", 4, shift_state="double")], [b"\x45\x41\x45\x42"])
    assert vals["t"] == ["一二"] and errs == []
    dbcs = FieldSpec("d", offset=0, length=4, type="dbcs", encoding="ibm930")
    vals, errs = both([dbcs], [b"\x45\x41\x40\x40", b"\x0e\x45\x41\x0f", b"\x45\x41\x45\x42"])
    assert vals["d"] == ["一", None, "一二"]
    assert errs == [(1, E.SHIFT_IN_DBCS, 0, 0x0E), (1, E.SHIFT_IN_DBCS, 3, 0x0F)]
    with pytest.raises(PlanError):
        FieldSpec("d", offset=0, length=4, type="dbcs", encoding="cp037")
    with pytest.raises(PlanError):
        FieldSpec("d", offset=0, length=4, type="text", encoding="cp037", shift_state="double")


def test_unassigned_single_byte_is_an_error_never_a_substitute():
    enc = get_encoding("ibm1390")
    bad = [b for b in range(0x40, 0xFF) if enc.single[b] is None]
    assert bad  # the bytes glibc turns into U+001A
    vals, errs = both([text("ibm1390", 1)], [bytes([b]) for b in bad])
    assert vals["t"] == [None] * len(bad)
    assert errs == [(k, E.UNASSIGNED_BYTE, 0, b) for k, b in enumerate(bad)]


def test_gaiji_in_the_files_encoding():
    rec = b"\x0e\x69\x41\x69\x42\x0f"
    vals, errs = both([text("ibm930", 6)], [rec], gaiji={("ibm930", 0x6941): "髙"})
    assert vals["t"] == [None] and errs == [(0, E.UNMAPPED_GAIJI, 3, 0x6942)]
    vals, errs = both([text("ibm930", 6)], [rec],
                      gaiji={("ibm930", 0x6941): "髙", ("ibm930", 0x6942): "﨑"})
    assert vals["t"] == ["髙﨑"] and errs == []
    with pytest.raises(PlanError):
        DecodePlan(6, [text("ibm930", 6)], gaiji={("ibm930", 0x4541): "x"})  # not user area
    # JEF, KEIS, JIPS user areas
    for enc, code, wire, pos in [("jef", 0x80A1, b"\x28\x80\xa1\x29", 1),
                                 ("keis83", 0x81A1, b"\x0a\x42\x81\xa1\x0a\x41", 2),
                                 ("jips-j", 0x7421, b"\x1a\x70\x74\x21\x1a\x71", 2)]:
        vals, errs = both([text(enc, len(wire))], [wire])
        assert errs == [(0, E.UNMAPPED_GAIJI, pos, code)]
        vals, errs = both([text(enc, len(wire))], [wire], gaiji={(enc, code): "𠮷"})
        assert vals["t"] == ["𠮷"] and errs == []


def test_spaces_per_encoding_and_configurable():
    # KEIS: both 4040 and A1A1 read as U+3000 by default; space=A1A1 makes 4040 an error
    rec = b"\x0a\x42\xb4\xc1\x40\x40\xa1\xa1\x0a\x41"
    vals, errs = both([text("keis83", 10, trim="none")], [rec])
    assert vals["t"] == ["漢\u3000\u3000"] and errs == []
    vals, errs = both([text("keis83;space=A1A1", 10)], [rec])
    assert errs == [(0, E.INVALID_DBCS, 4, 0x4040)]
    assert canonical_encoding({"name": "keis83", "space": "a1a1"}) == "keis83;space=A1A1"
    # JIPS(E) full-width space 4F4F, JIPS(J) 2121
    vals, errs = both([text("jips-e", 6, trim="none")], [b"\x3f\x75\x4f\x4f\x3f\x76"])
    assert vals["t"] == [""] and errs == []
    vals, errs = both([text("jips-j", 6, trim="none", blank="null")], [b"\x1a\x70\x21\x21\x1a\x71"])
    assert vals["t"] == [None]


def test_jef_shift_codes_and_single_byte_half():
    kan = "漢".encode("euc_jp")
    for si in (b"\x28", b"\x38"):
        vals, errs = both([text("jef", 6)], [b"\xc1" + si + kan + b"\x29\x40"])
        assert vals["t"] == ["A漢"] and errs == []
    # EBCDIK half: katakana; kana_widen merges the voiced mark
    enc = get_encoding("jef;single=ebcdik")
    ka, mark = enc.single.index("\uff76"), enc.single.index("\uff9e")
    vals, errs = both([text("jef;single=ebcdik", 2, kana_widen=True)], [bytes([ka, mark])])
    assert vals["t"] == ["ガ"] and errs == []
    # a configured shift-in only: 0x38 is then an ordinary (here unassigned) byte
    vals, errs = both([text("jef;shift_in=28", 5)], [b"\x28" + kan + b"\x29\x40"])
    assert vals["t"] == ["漢"]


def test_jips_e_is_jips_j_through_the_ebcdik_byte_table():
    j, e = get_encoding("jips-j"), get_encoding("jips-e")
    from ikou.kernels._encodings import _jis8_ebcdik

    ebk = _jis8_ebcdik()
    codes = sorted(j.double)
    recs_j = [c.to_bytes(2, "big") for c in codes]
    recs_e = [bytes([ebk[c >> 8], ebk[c & 0xFF]]) for c in codes]
    fj = FieldSpec("t", offset=0, length=2, type="dbcs", encoding="jips-j")
    fe = FieldSpec("t", offset=0, length=2, type="dbcs", encoding="jips-e")
    assert both([fj], recs_j) == both([fe], recs_e)
    assert len(e.double) == len(j.double)


def test_unmappable_rows_are_errors():
    jef = get_encoding("jef")
    code = sorted(jef.unmappable)[0]
    vals, errs = both([FieldSpec("t", offset=0, length=2, type="dbcs", encoding="jef")],
                      [code.to_bytes(2, "big")])
    assert vals["t"] == [None] and errs == [(0, E.UNMAPPABLE_CODE, 0, code)]
    assert len(jef.unmappable) == 479
    assert len(get_encoding("jips-j").unmappable) == 20


def test_ebcdic_numbers():
    fields = [FieldSpec("n", offset=0, length=4, type="int", encoding="cp037"),
              FieldSpec("d", offset=4, length=8, type="date", encoding="ibm930"),
              FieldSpec("w", offset=12, length=7, type="wareki", encoding="jef"),
              FieldSpec("s", offset=19, length=3, type="digits", encoding="keis83"),
              FieldSpec("c", offset=22, length=4, type="decimal", scale=1, encoding="cp500")]
    good = "  -12".encode("cp037")[1:] + "20240229".encode("cp037") + "5060401".encode("cp037") \
        + "007".encode("cp037") + " 1234".encode("cp037")[1:]
    bad = "12A4".encode("cp037") + "2024 229".encode("cp037") + "       ".encode("cp037") \
        + "0\x007".encode("cp037") + "    ".encode("cp037")
    vals, errs = both(fields, [good, bad, b"\x40" * 26])
    assert vals["n"] == [-12, None, None]
    assert str(vals["d"][0]) == "2024-02-29" and vals["d"][1] is None
    assert str(vals["w"][0]) == "2024-04-01" and vals["w_raw"][0] == "5060401"
    assert vals["w_status"][1] == "blank" and vals["s"] == ["007", None, None]
    assert str(vals["c"][0]) == "123.4"
    assert errs == [(1, E.NOT_DIGITS, 2, 0xC1), (1, E.NOT_DIGITS, 8, 0x40),
                    (1, E.NOT_DIGITS, 20, 0x00)]
    blank_err = FieldSpec("n", offset=0, length=4, type="int", encoding="cp037", blank="error")
    _, errs = both([blank_err], [b"\x40" * 4])
    assert errs == [(0, E.BLANK_VALUE, 0, 0x40)]


def test_binary_integers():
    fields = [FieldSpec("a", offset=0, length=2, type="binary"),
              FieldSpec("b", offset=2, length=4, type="binary", signed=False),
              FieldSpec("c", offset=6, length=8, type="binary", signed=False),
              FieldSpec("d", offset=14, length=4, type="binary", scale=2)]
    rec1 = b"\xff\xfe" + b"\xff\xff\xff\xff" + b"\x00" * 7 + b"\x05" + (-12345).to_bytes(4, "big", signed=True)
    rec2 = b"\x7f\xff" + b"\x00\x00\x01\x00" + b"\xff" * 8 + (100).to_bytes(4, "big")
    vals, errs = both(fields, [rec1, rec2])
    assert vals["a"] == [-2, 32767] and vals["b"] == [4294967295, 256]
    assert vals["c"] == [5, None] and errs == [(1, E.INT_OVERFLOW, 6, 0xFF)]
    assert [str(v) for v in vals["d"]] == ["-123.45", "1.00"]
    with pytest.raises(PlanError):
        FieldSpec("x", offset=0, length=3, type="binary")


# -- compiled == twin on arbitrary bytes, every encoding ----------------------------------------
PIECES = [b"\x0e", b"\x0f", b"\x28", b"\x29", b"\x38", b"\x0a\x42", b"\x0a\x41", b"\x0a",
          b"\x1a\x70", b"\x1a\x71", b"\x3f\x75", b"\x3f\x76", b"\x40", b"\x40\x40", b"\xa1\xa1",
          b"\x4f\x4f", b"\x21\x21", b"\x45\x41", b"\x69\x41", b"\x80\xa1", b"\x81\xa1",
          b"\x74\x21", b"\xb4\xc1", b"\xf1", b"\x00", b"\xff", b"\xc1", b"\x81", b"\xbe", b"\xe1"]


@st.composite
def records(draw, n_records, length):
    out = []
    for _ in range(n_records):
        parts = draw(st.lists(st.one_of(st.sampled_from(PIECES), st.binary(min_size=1, max_size=3)),
                              max_size=length))
        out.append((b"".join(parts) + b"\x40" * length)[:length])
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(enc=st.sampled_from(MAINFRAME), data=st.data())
def test_compiled_equals_twin_on_arbitrary_bytes(enc, data):
    mixed = get_encoding(enc).mixed
    length = data.draw(st.integers(1, 24))
    opts = data.draw(st.fixed_dictionaries({}, optional={
        "trim": st.sampled_from(["none", "left", "right", "both"]),
        "kana_widen": st.booleans(), "ascii_narrow": st.booleans(),
        "blank": st.sampled_from(["empty", "null", "error"]),
        "on_error": st.sampled_from(["reject", "null", "replace"]),
        "low_value": st.sampled_from(["decode", "null", "error"])}))
    if opts.get("on_error") == "replace":
        opts["replacement"] = data.draw(st.sampled_from(["〓", "?", "\U000E0100■"]))
    fields = [FieldSpec("t", offset=0, length=length, type="text", encoding=enc, **opts)]
    rl = length
    if mixed:
        fields.append(FieldSpec("d", offset=rl, length=length, type="dbcs", encoding=enc, **opts))
        rl += length
        if data.draw(st.booleans()):
            fields.append(FieldSpec("s", offset=rl, length=length, type="text", encoding=enc,
                                    shift_state="double"))
            rl += length
    fields.append(FieldSpec("n", offset=rl, length=6, type="int", encoding=enc))
    rl += 6
    recs = data.draw(records(data.draw(st.integers(1, 6)), rl))
    user = get_encoding(enc)
    gaiji = {}
    if mixed:
        for c in (0x6941, 0x80A1, 0x81A1, 0x7421):
            if user.user(c):
                gaiji[(user.base, c)] = "髙"
    both(fields, recs, gaiji=gaiji)
