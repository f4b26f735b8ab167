"""Decoding kernel: zoned / packed / decimal / bytes and the per-field options."""

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest
from decode_helpers import decode_checked

from ikou.kernels import DecodePlan, ErrorCode, FieldSpec, PlanError, _decode_py

_decode = pytest.importorskip("ikou.kernels._decode")


@pytest.fixture(params=["compiled", "python"])
def decode(request):
    return _decode.decode_block if request.param == "compiled" else _decode_py.decode_block


def run(decode, fields, records, gaiji=None, **plan_kw):
    return decode_checked(decode, fields, records, gaiji, **plan_kw)[1]


def col(res, name="x"):
    return res.batch.column(name).to_pylist()


def errs(res):
    return [(r, ErrorCode(c).name, p, v, j) for r, _f, c, p, v, j in res.errors]


D = Decimal


# -- numbers --------------------------------------------------------------------------------
def test_zoned_ascii(decode):
    recs = [b"1234E", b"1234N", b"12345", b"1234}", b"1234u", b"1234{", b"12 45", b"1234 ",
            b"     "]
    res = run(decode, [FieldSpec("x", offset=0, length=5, type="zoned", scale=2)], recs)
    assert res.batch.schema.field("x").type == pa.decimal128(5, 2)
    assert col(res) == [D("123.45"), D("-123.45"), D("123.45"), D("-123.40"), D("-123.45"),
                        D("123.40"), None, None, None]
    assert errs(res) == [(6, "NOT_DIGITS", 2, 0x20, True), (7, "INVALID_SIGN", 4, 0x20, True)]


def test_zoned_ebcdic_and_unsigned(decode):
    recs = [b"\xf1\xf2\xc3", b"\xf1\xf2\xd3", b"\xf1\xf2\xf3", b"\xf1\x32\xc3", b"\xf1\xf2\xa3",
            b"\xf1\xf2\xca"]
    res = run(decode, [FieldSpec("x", offset=0, length=3, type="zoned", zone="ebcdic")], recs)
    assert col(res) == [D(123), D(-123), D(123), None, None, None]
    assert [e[1:3] for e in errs(res)] == [("NOT_DIGITS", 1), ("INVALID_SIGN", 2),
                                           ("NOT_DIGITS", 2)]
    res = run(decode, [FieldSpec("x", offset=0, length=3, type="zoned", zone="ebcdic",
                                 signed=False)], recs[:3])
    assert col(res) == [D(123), None, D(123)]
    assert errs(res) == [(1, "INVALID_SIGN", 2, 0xD3, True)]


def test_packed(decode):
    recs = [b"\x12\x34\x5c", b"\x12\x34\x5d", b"\x00\x00\x0f", b"\x1a\x34\x5c", b"\x12\x34\x5a",
            b"\x00\x00\x00", b"\xff\xff\xff", b"\x00\x00\x1d"]
    res = run(decode, [FieldSpec("x", offset=0, length=3, type="packed", scale=1)], recs)
    assert res.batch.schema.field("x").type == pa.decimal128(5, 1)
    assert col(res) == [D("1234.5"), D("-1234.5"), D("0.0"), None, None, None, None, D("-0.1")]
    assert [e[1:4] for e in errs(res)] == [("NOT_DIGITS", 0, 0x1A), ("INVALID_SIGN", 2, 0x5A)]
    res = run(decode, [FieldSpec("x", offset=0, length=3, type="packed", signed=False,
                                 low_value="error")], recs[:3] + recs[5:6])
    assert col(res) == [D(12345), None, D(0), None]
    assert [e[1:4] for e in errs(res)] == [("INVALID_SIGN", 2, 0x5D), ("LOW_VALUE", 0, 0)]


def test_packed_and_zoned_at_full_precision(decode):
    big = 10**37 - 1
    res = run(decode, [FieldSpec("x", offset=0, length=19, type="packed")],
              [b"\x99" * 18 + b"\x9c", b"\x99" * 18 + b"\x9d"])
    assert col(res) == [D(big), D(-big)]
    res = run(decode, [FieldSpec("x", offset=0, length=38, type="zoned", scale=38)],
              [b"9" * 37 + b"R", b"0" * 37 + b"A"])
    assert col(res) == [D("-0." + "9" * 38), D("0." + "0" * 37 + "1")]


def test_decimal(decode):
    recs = [b"  12345", b"-000001", b"       ", b"+1 2   ", b"9999999"]
    res = run(decode, [FieldSpec("x", offset=0, length=7, type="decimal", scale=2)], recs)
    assert res.batch.schema.field("x").type == pa.decimal128(7, 2)
    assert col(res) == [D("123.45"), D("-0.01"), None, None, D("99999.99")]
    assert errs(res) == [(3, "NOT_DIGITS", 3, ord("2"), True)]


def test_int_unsigned_and_blank_error(decode):
    res = run(decode, [FieldSpec("x", offset=0, length=4, type="int", signed=False,
                                 blank="error", high_value="error")],
              [b"  -1", b"    ", b"\xff\xff\xff\xff", b"+012"])
    assert col(res) == [None, None, None, 12]
    assert [e[1:4] for e in errs(res)] == [("INVALID_SIGN", 2, ord("-")), ("BLANK_VALUE", 0, 0x20),
                                           ("HIGH_VALUE", 0, 0xFF)]


def test_bytes(decode):
    recs = [b"\x00\x01\x82", b"   ", b"\xff\xff\xff"]
    res = run(decode, [FieldSpec("x", offset=0, length=3, type="bytes")], recs)
    assert col(res) == recs
    res = run(decode, [FieldSpec("x", offset=0, length=3, type="bytes", blank="null",
                                 high_value="error")], recs)
    assert col(res) == [recs[0], None, None]
    assert errs(res) == [(2, "HIGH_VALUE", 0, 0xFF, True)]


# -- on_error -------------------------------------------------------------------------------
def test_on_error_null_keeps_row_and_reports(decode):
    res = run(decode, [FieldSpec("x", offset=0, length=4, type="digits", on_error="null"),
                       FieldSpec("y", offset=4, length=2, type="text")],
              [b"12a4\x82\xa0", b"1234\x85\x40"])
    assert col(res, "x") == [None, "1234"] and col(res, "y") == ["あ", None]
    assert [(e[0], e[1], e[4]) for e in errs(res)] == [(0, "NOT_DIGITS", False),
                                                       (1, "INVALID_BYTES", True)]
    assert res.bad_rows.tolist() == [1]


def test_on_error_replace(decode):
    f = FieldSpec("x", offset=0, length=8, type="text", on_error="replace", replacement="〓")
    res = run(decode, [f], [b"A\xf0\x40B\x81\x20C\x82"])
    assert col(res) == ["A〓B〓 C〓"]
    assert [(e[1], e[2], e[4]) for e in errs(res)] == [
        ("UNMAPPED_GAIJI", 1, False), ("INVALID_BYTES", 4, False), ("CUT_DOUBLE_BYTE", 7, False)]
    assert res.bad_rows.size == 0


# -- text options -----------------------------------------------------------------------------
def test_kana_widen_merges_voicing_marks(decode):
    raw = "ｶﾞｷﾞｸﾞﾊﾟﾋﾟｳﾞｲﾞﾞｰｱ｡ﾜﾞ".encode("cp932")
    res = run(decode, [FieldSpec("x", offset=0, length=len(raw), type="text", kana_widen=True),
                       FieldSpec("y", offset=0, length=len(raw), type="text")], [raw])
    assert col(res, "x") == ["ガギグパピヴイ゛゛ーア。ヷ"]
    assert col(res, "y") == [raw.decode("cp932")]


def test_kana_widen_does_not_merge_across_field_end(decode):
    raw = "ｶﾞ".encode("cp932")
    res = run(decode, [FieldSpec("x", offset=0, length=1, type="text", kana_widen=True),
                       FieldSpec("y", offset=1, length=1, type="text", kana_widen=True)], [raw])
    assert col(res, "x") == ["カ"] and col(res, "y") == ["゛"]


def test_ascii_narrow(decode):
    raw = "ＡＢＣ１２３　ａ～＼".encode("cp932") + b"\xf0\x40"
    res = run(decode, [FieldSpec("x", offset=0, length=len(raw), type="text", ascii_narrow=True)],
              [raw], gaiji={0xF040: "Ｚ"})
    assert col(res) == ["ABC123 a~\\Z"]


@pytest.mark.parametrize("trim, expected", [("none", "\u3000 ab \u3000 "), ("left", "ab \u3000 "),
                                            ("right", "\u3000 ab"), ("both", "ab")])
def test_trim_modes(decode, trim, expected):
    raw = "\u3000 ab \u3000 ".encode("cp932")
    res = run(decode, [FieldSpec("x", offset=0, length=len(raw), type="text", trim=trim)], [raw])
    assert col(res) == [expected]


@pytest.mark.parametrize("blank, value, error", [("empty", "", []), ("null", None, []),
                                                 ("error", None, ["BLANK_VALUE"])])
def test_text_blank_policy(decode, blank, value, error):
    res = run(decode, [FieldSpec("x", offset=0, length=4, type="text", blank=blank, trim="none")],
              [b" \x81\x40 "])
    assert col(res) == [value]
    assert [e[1] for e in errs(res)] == error


def test_text_low_high_values(decode):
    recs = [b"\x00\x00\x00", b"\xff\xff\xff", b"a\x00 "]
    res = run(decode, [FieldSpec("x", offset=0, length=3, type="text")], recs)
    assert col(res) == ["\x00\x00\x00", "\uf8f3" * 3, "a\x00"]  # as CPython decodes them
    res = run(decode, [FieldSpec("x", offset=0, length=3, type="text", low_value="null",
                                 high_value="error")], recs)
    assert col(res) == [None, None, "a\x00"]
    assert errs(res) == [(1, "HIGH_VALUE", 0, 0xFF, True)]


def test_gaiji_fallback(decode):
    gaiji = {0xF040: ("𠮷", "吉"), 0xF041: "髙"}
    fields = [FieldSpec("a", offset=0, length=4, type="text"),
              FieldSpec("b", offset=0, length=4, type="text", gaiji_fallback=True),
              FieldSpec("c", offset=0, length=4, type="text", gaiji_fallback=False)]
    res = run(decode, fields, [b"\xf0\x40\xf0\x41"], gaiji=gaiji)
    assert [col(res, n) for n in "abc"] == [["𠮷髙"], ["吉髙"], ["𠮷髙"]]
    res = run(decode, fields, [b"\xf0\x40\xf0\x41"], gaiji=gaiji, gaiji_fallback=True)
    assert [col(res, n) for n in "abc"] == [["吉髙"], ["吉髙"], ["𠮷髙"]]


# -- wareki options ---------------------------------------------------------------------------
def test_wareki_custom_eras_and_markers(decode):
    eras = {1: {"start": "1868-01-25", "end": "1912-07-30"}, 9: {"start": dt.date(2030, 1, 1),
                                                               "base": 2030}}
    f = FieldSpec("x", offset=0, length=7, type="wareki", eras=eras,
                  unknown=["000000", "      ", "99    "], unknown_zero_parts=False)
    recs = [b"9010101", b"4010108", b"3      ", b"399    ", b"3000000", b"1450100", b"1450730",
            b"3999999", b"\x00" * 7]
    res = run(decode, [f], recs)
    assert col(res, "x_status") == ["valid", "impossible", "unknown", "unknown", "unknown",
                                    "impossible", "valid", "impossible", "blank"]
    assert col(res, "x") == [dt.date(2030, 1, 1), None, None, None, None, None,
                             dt.date(1912, 7, 30), None, None]
    assert col(res, "x_raw")[2] == "3      " and col(res, "x_raw")[8] is None


def test_wareki_blank_and_low_value_errors(decode):
    f = FieldSpec("x", offset=0, length=7, type="wareki", blank="error", low_value="error")
    res = run(decode, [f], [b" " * 7, b"\x00" * 7, b"4010108"])
    assert col(res, "x_status") == [None, None, "valid"]
    assert [e[1] for e in errs(res)] == ["BLANK_VALUE", "LOW_VALUE"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(type="zoned", length=39), "too long"),
    (dict(type="packed", length=20), "at most 19"),
    (dict(type="packed", length=3, scale=39), "scale"),  # above 38 (P scaling allows > digits)
    (dict(type="zoned", length=3, zone="x"), "zone"),
    (dict(type="text", length=3, kana_widen="yes"), "kana_widen"),
    (dict(type="int", length=3, blank="empty"), "blank must be one of"),
    (dict(type="text", length=3, low_value="zero"), "low_value"),
    (dict(type="wareki", length=7, eras={1: {"start": "x"}}), "date"),
    (dict(type="wareki", length=7, eras={12: {"start": "2000-01-01"}}), "1-digit"),
    (dict(type="wareki", length=7, unknown=["00000"]), "6 ASCII"),
    (dict(type="wareki", length=7, unknown="000000"), "list"),
    (dict(type="text", length=3, on_error="replace", replacement=""), "replacement"),
    (dict(type="filler", length=3, on_error="null"), "unknown option"),
])
def test_option_validation(kwargs, message):
    with pytest.raises(PlanError, match=message):
        FieldSpec("x", offset=0, **kwargs)


def test_options_survive_pickling():
    import pickle

    fields = [
        FieldSpec("w", offset=0, length=8, type="wareki", eras={12: {"start": "2040-01-01"}},
                  unknown=["      "], unknown_zero_parts=False, blank="error"),
        FieldSpec("t", offset=8, length=6, type="text", kana_widen=True, ascii_narrow=True,
                  trim="both", on_error="replace", replacement="〓", gaiji_fallback=True),
        FieldSpec("p", offset=14, length=4, type="packed", scale=3, signed=False),
        FieldSpec("z", offset=18, length=4, type="zoned", zone="ebcdic", low_value="error"),
    ]
    plan = DecodePlan(record_length=22, fields=fields, gaiji={0xF040: ("𠮷", "吉")},
                      gaiji_fallback=True)
    again = pickle.loads(pickle.dumps(plan))
    assert again == plan
    assert [f.options for f in again.fields] == [f.options for f in fields]
    assert again.schema == plan.schema


def test_yaml_null_means_null_policy():
    f = FieldSpec("x", offset=0, length=3, type="int", blank=None, on_error=None)
    assert f.options["blank"] == "null" and f.options["on_error"] == "null"
    with pytest.raises(PlanError, match="6 ASCII digits"):
        FieldSpec("w", offset=0, length=7, type="wareki", unknown=[0])  # unquoted 000000
