"""Decoding kernel: the COBOL types — float (COMP-1/COMP-2), edited (numeric-edited PIC),
national (PIC N, UTF-16) — and binary byte order / digits, zoned sign position / separate sign /
strict_sign, and P scaling (negative scale, scale above the digit count)."""

import math
import struct
from decimal import Decimal as D
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pytest
from decode_helpers import decode_checked

from ikou.kernels import DecodePlan, ErrorCode, FieldSpec, PlanError, _decode_py, format_error

_decode = pytest.importorskip("ikou.kernels._decode")


@pytest.fixture(params=["compiled", "python"])
def decode(request):
    return _decode.decode_block if request.param == "compiled" else _decode_py.decode_block


def run(decode, fields, records):
    return decode_checked(decode, fields, records)[1]


def col(res, name="x"):
    return res.batch.column(name).to_pylist()


def errs(res):
    return [(r, ErrorCode(c).name, p, v) for r, _f, c, p, v, _j in res.errors]


def field(length, type_, **opts):
    return FieldSpec("x", offset=0, length=length, type=type_, **opts)


def ebcdic(s: str) -> bytes:
    return s.encode("cp037")


# -- float -----------------------------------------------------------------------------------
def ibm_exact(raw: bytes) -> Fraction:
    """The exact value of an IBM hexadecimal float (hand formula, no kernel code)."""
    u = int.from_bytes(raw, "big")
    bits = 8 * len(raw) - 8
    frac = u & ((1 << bits) - 1)
    expo = (u >> bits) & 0x7F
    v = Fraction(frac, 1 << bits) * Fraction(16) ** (expo - 64)
    return -v if u >> (8 * len(raw) - 1) else v


def test_ibm_short_hand_vectors(decode):
    recs = [bytes.fromhex(h) for h in (
        "42640000",  # 100.0
        "C276A000",  # -118.625
        "00000000",  # 0
        "41100000",  # 1.0
        "42064000",  # unnormalised: 0.064 (hex) x 16**2 = 6.25
        "80000000",  # negative zero
        "7FFFFFFF",  # 7.2e75: beyond float32
        "00000001",  # 16**-70: below float32 (not exact)
        "3F100000",  # 0.1 (hex) x 16**-1 = 1/256
    )]
    res = run(decode, [field(4, "float")], recs)
    assert res.batch.schema.field("x").type == pa.float32()
    got = col(res)
    assert got[:6] == [100.0, -118.625, 0.0, 1.0, 6.25, 0.0]
    assert math.copysign(1, got[5]) == -1
    assert got[6] is None and got[7] is None
    assert got[8] == float(ibm_exact(recs[8])) == 16.0 ** -2
    assert errs(res) == [(6, "FLOAT_RANGE", 0, 0), (7, "FLOAT_RANGE", 0, 0)]
    # little-endian: the same numbers with their bytes reversed
    res = run(decode, [field(4, "float", byte_order="little")], [r[::-1] for r in recs[:5]])
    assert col(res) == [100.0, -118.625, 0.0, 1.0, 6.25]


def test_ibm_long_rounds_to_nearest(decode):
    rng = np.random.default_rng(5)
    recs = [bytes.fromhex(h) for h in ("4264000000000000", "C276A00000000000",
                                       "411FFFFFFFFFFFFF", "7FFFFFFFFFFFFFFF", "0000000000000001",
                                       "4120000000000001", "4120000000000003")]
    recs += [rng.integers(0, 256, 8, dtype=np.uint8).tobytes() for _ in range(300)]
    res = run(decode, [field(8, "float")], recs)
    assert res.batch.schema.field("x").type == pa.float64()
    got = col(res)
    assert got[:2] == [100.0, -118.625]
    # float(Fraction) is correctly rounded (nearest, ties to even): the oracle
    assert got == [float(ibm_exact(r)) for r in recs]
    # (2**53 + 1) / 2**52: a tie between 53-bit neighbours → the even one (2.0); 2**53 + 3 → up
    assert got[5] == 2.0 and got[6] == 2.0 + 2.0 ** -50
    assert not res.errors.row.size


def test_ieee_matches_struct(decode):
    rng = np.random.default_rng(9)
    raw4 = [rng.integers(0, 256, 4, dtype=np.uint8).tobytes() for _ in range(400)]
    raw4 += [struct.pack(">f", v) for v in (1.5, -0.0, float("inf"), float("nan"))]
    for order, fmt in (("big", ">f"), ("little", "<f")):
        recs = raw4 if order == "big" else [r[::-1] for r in raw4]
        res = run(decode, [field(4, "float", format="ieee", byte_order=order)], recs)
        want = [struct.unpack(fmt, r)[0] for r in recs]
        bad = {i for i, v in enumerate(want) if not math.isfinite(v)}
        assert col(res) == [None if i in bad else v for i, v in enumerate(want)]
        assert errs(res) == [(i, "NOT_FINITE", 0, 0) for i in sorted(bad)]
    raw8 = [rng.integers(0, 256, 8, dtype=np.uint8).tobytes() for _ in range(300)]
    raw8 += [struct.pack(">d", v) for v in (-3050393257.6762, float("-inf"))]
    res = run(decode, [field(8, "float", format="ieee")], raw8)
    want = [struct.unpack(">d", r)[0] for r in raw8]
    assert col(res) == [v if math.isfinite(v) else None for v in want]
    assert len(res.errors) == sum(not math.isfinite(v) for v in want) >= 1


# -- binary ----------------------------------------------------------------------------------
def test_binary_little_endian_and_digits(decode):
    recs = [(9999).to_bytes(2, "little", signed=True), (-9999).to_bytes(2, "little", signed=True),
            (10000).to_bytes(2, "little", signed=True), (-10000).to_bytes(2, "little", signed=True)]
    res = run(decode, [field(2, "binary", byte_order="little", digits=4)], recs)
    assert res.batch.schema.field("x").type == pa.int64()
    assert col(res) == [9999, -9999, None, None]
    assert errs(res) == [(2, "DIGITS_OVERFLOW", 0, 0), (3, "DIGITS_OVERFLOW", 0, 0)]
    # PIC S9(7)V99 COMP: 4 bytes, decimal128(9, 2)
    recs = [(123456789).to_bytes(4, "big", signed=True), (-1).to_bytes(4, "big", signed=True),
            (10**9).to_bytes(4, "big", signed=True)]
    res = run(decode, [field(4, "binary", digits=9, scale=2)], recs)
    assert res.batch.schema.field("x").type == pa.decimal128(9, 2)
    assert col(res) == [D("1234567.89"), D("-0.01"), None]
    # unsigned 9(18) in 8 bytes, and without digits (COMP-5) the full range as before
    big = (10**18).to_bytes(8, "big")
    res = run(decode, [field(8, "binary", signed=False, digits=18)], [big, (10**18 - 1).to_bytes(8, "big")])
    assert col(res) == [None, 10**18 - 1]
    res = run(decode, [field(8, "binary", signed=False)], [big])
    assert col(res) == [10**18]


def test_binary_p_scaling(decode):
    # PIC S9PPP COMP (x 1000) and SPPP9 COMP (0.000d): Cobrix's test6 COMMON-UPI1BIN / UPC1BIN
    recs = [(3).to_bytes(2, "big"), (-7).to_bytes(2, "big", signed=True)]
    res = run(decode, [FieldSpec("a", offset=0, length=2, type="binary", digits=1, scale=-3),
                       FieldSpec("b", offset=0, length=2, type="binary", digits=1, scale=4)], recs)
    assert res.batch.schema.field("a").type == pa.decimal128(4, 0)
    assert res.batch.schema.field("b").type == pa.decimal128(4, 4)
    assert col(res, "a") == [D(3000), D(-7000)]
    assert col(res, "b") == [D("0.0003"), D("-0.0007")]


# -- zoned -----------------------------------------------------------------------------------
def test_zoned_leading_overpunch_and_separate_sign(decode):
    fields = [
        FieldSpec("lo", offset=0, length=4, type="zoned", zone="ebcdic", sign_position="leading"),
        FieldSpec("ts", offset=4, length=5, type="zoned", zone="ebcdic", sign_separate=True,
                  scale=2),
        FieldSpec("ls", offset=9, length=5, type="zoned", sign_separate=True,
                  sign_position="leading"),
    ]
    recs = [ebcdic("J050") + ebcdic("3050-") + b"-1234",
            ebcdic("C050") + ebcdic("3050+") + b"+0001",
            ebcdic("3J50") + ebcdic("30503") + b"12345",
            ebcdic("A050") + ebcdic("30-5+") + b" 1234"]
    res = run(decode, fields, recs)
    assert res.batch.schema.field("ts").type == pa.decimal128(4, 2)
    assert res.batch.schema.field("ls").type == pa.decimal128(4, 0)
    assert col(res, "lo") == [D(-1050), D(3050), None, D(1050)]
    assert col(res, "ts") == [D("-30.50"), D("30.50"), None, None]
    assert col(res, "ls") == [D(-1234), D(1), None, None]
    assert errs(res) == [(2, "NOT_DIGITS", 1, 0xD1), (2, "INVALID_SIGN", 8, 0xF3),
                         (2, "INVALID_SIGN", 9, 0x31), (3, "NOT_DIGITS", 6, 0x60),
                         (3, "INVALID_SIGN", 9, 0x20)]


def test_strict_sign_on_unsigned_zoned(decode):
    """Cobrix's sign_overpunch case: 9(4) then S9(4), EBCDIC `123{456}`, `789J123A`,
    `65432101`; strict: an overpunch on the unsigned field is INVALID_SIGN."""
    recs = [ebcdic(s) for s in ("123{456}", "789J123A", "65432101")]
    for strict, want_a in ((True, [None, None, D(6543)]), (False, [D(1230), None, D(6543)])):
        fields = [FieldSpec("a", offset=0, length=4, type="zoned", zone="ebcdic", signed=False,
                            strict_sign=strict),
                  FieldSpec("b", offset=4, length=4, type="zoned", zone="ebcdic")]
        res = run(decode, fields, recs)
        assert col(res, "a") == want_a
        assert col(res, "b") == [D(-4560), D(1231), D(2101)]
        bad = [(0, "INVALID_SIGN", 3, 0xC0)] if strict else []
        assert errs(res) == bad + [(1, "INVALID_SIGN", 3, 0xD1)]
    # ASCII: a strict unsigned field takes plain digits only in the sign position
    res = run(decode, [field(4, "zoned", signed=False, strict_sign=True)],
              [b"123{", b"123A", b"1234"])
    assert col(res) == [None, None, D(1234)]
    assert [e[1:3] for e in errs(res)] == [("INVALID_SIGN", 3), ("INVALID_SIGN", 3)]


# -- P scaling -------------------------------------------------------------------------------
def test_p_scaling_types_and_values(decode):
    fields = [
        # PPP9(5) COMP-3: 0.000ddddd, decimal128(8, 8); 9(5)PPP COMP-3: x 1000, decimal128(8, 0)
        FieldSpec("pc", offset=0, length=3, type="packed", scale=8, signed=False),
        FieldSpec("pi", offset=0, length=3, type="packed", scale=-3),
        FieldSpec("zc", offset=3, length=5, type="zoned", zone="ebcdic", scale=8),
        FieldSpec("zi", offset=3, length=5, type="zoned", zone="ebcdic", scale=-3),
        FieldSpec("di", offset=8, length=3, type="decimal", scale=-2),
    ]
    recs = [bytes.fromhex("30503F") + ebcdic("3050") + b"\xd3" + b"-12",
            bytes.fromhex("99999F") + ebcdic("9999I") + b"999"]
    res = run(decode, fields, recs)
    types = {n: res.batch.schema.field(n).type for n in res.batch.schema.names}
    assert types == {"pc": pa.decimal128(8, 8), "pi": pa.decimal128(8, 0),
                     "zc": pa.decimal128(8, 8), "zi": pa.decimal128(8, 0),
                     "di": pa.decimal128(5, 0)}
    assert col(res, "pc") == [D("0.00030503"), D("0.00099999")]
    assert col(res, "pi") == [D(30503000), D(99999000)]
    assert col(res, "zc") == [D("-0.00030503"), D("0.00099999")]
    assert col(res, "zi") == [D(-30503000), D(99999000)]
    assert col(res, "di") == [D(-1200), D(99900)]


@pytest.mark.parametrize("kwargs, message", [
    (dict(type="zoned", length=5, scale=-34), "scale"),  # 5 + 34 digits > 38
    (dict(type="zoned", length=5, scale=39), "scale"),
    (dict(type="binary", length=2, digits=5), "digits"),
    (dict(type="binary", length=4, byte_order="middle"), "byte_order"),
    (dict(type="float", length=6), "4 bytes"),
    (dict(type="float", length=4, format="vax"), "format"),
    (dict(type="national", length=5), "even"),
    (dict(type="zoned", length=4, sign_position="middle"), "sign_position"),
    (dict(type="zoned", length=1, sign_separate=True), "separate"),
    (dict(type="edited", length=9), "picture"),
    (dict(type="edited", length=8, picture="Z(8)-"), "positions"),
    (dict(type="edited", length=4, picture="9X99"), "only"),
    (dict(type="edited", length=4, picture="+99-"), "sign"),
    (dict(type="edited", length=4, picture="Z*99"), "Z and"),
    (dict(type="edited", length=5, picture="9.9V9"), "decimal point"),
    (dict(type="edited", length=3, picture="9(3", blank="zero"), "repetition"),
    (dict(type="edited", length=4, picture="ZZZ9", blank="empty"), "blank"),
])
def test_option_validation(kwargs, message):
    with pytest.raises(PlanError, match=message):
        FieldSpec("x", offset=0, **kwargs)


# -- edited ----------------------------------------------------------------------------------
EDITED_CASES = [
    # picture, text, value (None: error), error (code, index) or None
    ("+9(8)", "-30503932", D(-30503932), None),
    ("+9(8)", "+00000001", D(1), None),
    ("+9(8)", " 00000001", None, ("INVALID_SIGN", 0)),
    ("9(8)+", "30503932-", D(-30503932), None),
    ("-9(8)", " 30503932", D(30503932), None),
    ("-9(8)", "+30503932", D(30503932), None),  # + states the same sign
    ("Z(8)-", "     123-", D(-123), None),
    ("Z(8)-", "00000123 ", D(123), None),
    ("Z(8)-", "   1 23  ", None, ("NOT_DIGITS", 4)),
    ("Z(8)-", "     123*", None, ("INVALID_SIGN", 8)),
    ("+9(6)V99", "-30503932", D("-305039.32"), None),
    ("Z(6)VZZ-", "      05 ", D("0.05"), None),
    ("9(6).99-", "305039.32-", D("-305039.32"), None),
    ("9(6).99-", "305039,32-", None, ("NOT_DIGITS", 6)),
    ("9(8).9(2)", "00000789.09", D("789.09"), None),
    ("9(8).9(2)", "789.09     ", None, ("NOT_DIGITS", 3)),
    ("ZZ,ZZ9.99CR", " 1,234.50CR", D("-1234.50"), None),
    ("ZZ,ZZ9.99CR", "     5.00  ", D("5.00"), None),
    ("ZZ,ZZ9.99CR", "     5.00C ", None, ("INVALID_SIGN", 10)),
    ("ZZ,ZZ9.99CR", "    ,5.00  ", None, ("NOT_DIGITS", 4)),
    ("ZZ,ZZ9.99DB", "    12.00DB", D("-12.00"), None),
    ("**,**9.99", "*****5.00", D("5.00"), None),
    ("**,**9.99", "*1,234.00", D("1234.00"), None),
    ("**,**9.99", "*** 12.00", None, ("NOT_DIGITS", 3)),
    ("$$$,$$9.99", "    $12.34", D("12.34"), None),
    ("$$$,$$9.99", " $1,234.56", D("1234.56"), None),
    ("$$$,$$9.99", "     12.34", None, ("NOT_DIGITS", 5)),
    ("+++9", "  -5", D(-5), None),
    ("+++9", "+123", D(123), None),
    ("+++9", "  5 ", None, ("INVALID_SIGN", 2)),
    ("---9.99", "  -5.25", D("-5.25"), None),
    ("---9.99", "  15.25", D("15.25"), None),
    ("ZZZ.ZZ", "   .05", D("0.05"), None),
    ("99/99/99", "12/31/99", D(123199), None),
    ("999B999", "123 456", D(123456), None),
    ("9990", "1230", D(123), None),
]


@pytest.mark.parametrize("pic, text, value, error", EDITED_CASES)
def test_edited_pictures(decode, pic, text, value, error):
    f = FieldSpec("x", offset=0, length=len(text), type="edited", picture=pic)
    g = FieldSpec("y", offset=0, length=len(text), type="edited", picture=pic, encoding="cp037")
    res = run(decode, [f], [text.encode("ascii")])
    res_e = run(decode, [g], [ebcdic(text)])
    assert col(res) == [value] and col(res_e, "y") == [value]
    if error is None:
        assert not len(res.errors)
    else:
        code, i = error
        assert errs(res)[0] == (0, code, i, ord(text[i]))
        assert errs(res_e) == [(0, code, i, ebcdic(text)[i])]


def test_edited_output_type_and_blank_policies(decode):
    f = FieldSpec("x", offset=0, length=9, type="edited", picture="Z(6)VZZ-")
    assert f.output_fields()[0].type == pa.decimal128(8, 2)
    recs = [b" " * 9, b"\x00" * 9, b"\xff" * 9]
    res = run(decode, [f], recs)
    assert col(res) == [None, None, None] and not len(res.errors)
    res = run(decode, [FieldSpec("x", offset=0, length=9, type="edited", picture="Z(6)VZZ-",
                                 blank="zero", high_value="error", encoding="cp037")],
              [b"\x40" * 9, b"\xff" * 9, b" " * 9])
    assert col(res) == [D("0.00"), None, None]
    assert errs(res) == [(1, "HIGH_VALUE", 0, 0xFF), (2, "NOT_DIGITS", 0, 0x20)]
    res = run(decode, [FieldSpec("x", offset=0, length=4, type="edited", picture="ZZZ9",
                                 blank="error")], [b"    "])
    assert errs(res) == [(0, "BLANK_VALUE", 0, 0x20)]


def test_edited_free_form(decode):
    """Cobrix's display_numbers_invalid: `9(8).9(2)` holding a left-aligned `789.09     `."""
    f = FieldSpec("x", offset=0, length=11, type="edited", picture="9(8).9(2)", free_form=True,
                  encoding="cp037")
    recs = [ebcdic(t) for t in ("789.09     ", "   38945.09", "00000789.09", "7589.1     ",
                                "123456789.0", "1.234      ", "-789.09    ", "78 9.09    ",
                                "   .       ")]
    res = run(decode, [f], recs)
    assert col(res) == [D("789.09"), D("38945.09"), D("789.09"), D("7589.10"), None, None, None,
                        None, None]
    assert [e[1:3] for e in errs(res)] == [("NOT_DIGITS", 8), ("NOT_DIGITS", 4),
                                           ("INVALID_SIGN", 0), ("NOT_DIGITS", 3),
                                           ("NOT_DIGITS", 4)]
    g = FieldSpec("x", offset=0, length=10, type="edited", picture="9(6).99-", free_form=True)
    res = run(decode, [g], [b"-5.25     ", b"  5.25-   ", b"305039.32-"])
    assert col(res) == [D("-5.25"), D("-5.25"), D("-305039.32")]


# -- national --------------------------------------------------------------------------------
def test_national_utf16(decode):
    """Cobrix's national_pic_n_utf16: X(3) + N(3), big- and little-endian."""
    for order in ("big", "little"):
        enc = "utf-16-be" if order == "big" else "utf-16-le"
        fields = [FieldSpec("x", offset=0, length=3, type="text", encoding="cp037"),
                  FieldSpec("n", offset=3, length=6, type="national", byte_order=order)]
        recs = [ebcdic("123") + "123".encode(enc), ebcdic("abc") + "abc".encode(enc)]
        res = run(decode, fields, recs)
        assert col(res, "x") == ["123", "abc"] and col(res, "n") == ["123", "abc"]
    recs = ["漢字𠮷\u3000 ".encode("utf-16-be"), " ａ\u3000   ".encode("utf-16-be"),
            "\u3000    \u3000".encode("utf-16-be"),
            b"\x00a\xd8\x00\x00b\x00c\x00 \x00 ", b"\xdc\x00\x00a\xd8\x3d\xde\x00\x00 \x00 ",
            b"\x00" * 12]
    res = run(decode, [field(12, "national")], recs)
    assert res.batch.schema.field("x").type == pa.string()
    assert col(res) == ["漢字𠮷", " ａ", "", None, None, "\x00" * 6]
    assert errs(res) == [(3, "UNPAIRED_SURROGATE", 2, 0xD800), (4, "UNPAIRED_SURROGATE", 0, 0xDC00)]
    res = run(decode, [field(12, "national", trim="both", blank="null", low_value="error",
                             on_error="null")], recs)
    assert col(res) == ["漢字𠮷", "ａ", None, None, None, None]
    assert [e[1] for e in errs(res)] == ["UNPAIRED_SURROGATE"] * 2 + ["LOW_VALUE"]
    assert not res.errors.reject.any()


def test_new_error_messages():
    plan = DecodePlan(record_length=4, fields=[field(4, "national"), ])
    msg = format_error(plan, 0, ErrorCode.UNPAIRED_SURROGATE, 2, 0xD800)
    assert msg == ("field x (national): UNPAIRED_SURROGATE: UTF-16 surrogate without its pair "
                   "at byte 2 (code 0xD800)")
    for code in ("FLOAT_RANGE", "NOT_FINITE", "DIGITS_OVERFLOW"):
        assert format_error(plan, 0, ErrorCode[code], 0, 0).endswith("at byte 0")


def test_an_ebcdic_zoned_blank_is_ebcdic_spaces(decode):
    """0x40 bytes are an EBCDIC zoned field's blank (its `blank` policy applies); ASCII spaces
    in an EBCDIC field are no digits."""
    recs = [b"\x40" * 4, b"\x20" * 4, b"\xf1\xf2\xf3\xc4"]
    res = run(decode, [field(4, "zoned", zone="ebcdic", blank="error")], recs)
    assert col(res) == [None, None, D(1234)]
    assert [(r, c) for r, c, _p, _v in errs(res)] == [(0, "BLANK_VALUE"), (1, "NOT_DIGITS")]
    res = run(decode, [field(4, "zoned", zone="ebcdic")], recs[:1])
    assert col(res) == [None] and not errs(res)
