"""Property tests for the COBOL types: compiled kernel == pure-Python twin on arbitrary bytes."""

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_decode_hypothesis import assert_same

from ikou.kernels import DecodePlan, FieldSpec
from ikou.kernels._decode_common import ED_FLOAT, ED_FLOAT_HEAD, parse_picture

pytest.importorskip("ikou.kernels._decode")

# pieces that hit the edited / zoned / national / float paths often
PIECES = [b" ", b"  ", b"0", b"1", b"9", b"12", b"-", b"+", b".", b",", b"*", b"$", b"/", b"CR",
          b"DB", b"C", b"\x00", b"\xff", b"\x40", b"\x4e", b"\x60", b"\x4b", b"\x6b", b"\x5c",
          b"\x5b", b"\xf0", b"\xf5", b"\xc3\xd9", b"\xc4\xc2", b"\xc1", b"\xd1", b"{", b"}", b"A",
          b"J", b"\xd8\x00", b"\xdc\x00", b"\x00 ", b"\x30\x00", b"\x42\x64", b"\x7f\x80",
          b"\x7f\xf0", b"\x00\x00\x00\x01"]
PICTURES = ["Z(8)-", "+9(8)", "9(6).99-", "9(8).9(2)", "Z(6)VZZ-", "-9(4)", "9(4)+",
            "ZZ,ZZ9.99CR", "ZZ9.99DB", "**,**9.99", "$$$,$$9.99", "+++9", "---9.99", "ZZZ.ZZ",
            "99/99/99", "999B999", "9990", "$ZZ9", "+9V99", "ZZZZ"]
NUM_POL = st.sampled_from(["null", "error"])


@st.composite
def field_specs(draw, name, record_length):
    t = draw(st.sampled_from(["float", "binary", "zoned", "zoned", "packed", "decimal", "edited",
                              "edited", "edited", "national"]))
    opts = {}
    common = {"on_error": st.sampled_from(["reject", "null"])}
    if t == "float":
        length = draw(st.sampled_from([4, 8]))
        opts = draw(st.fixed_dictionaries({}, optional={
            "format": st.sampled_from(["ibm", "ieee"]),
            "byte_order": st.sampled_from(["big", "little"]), **common}))
    elif t == "binary":
        length = draw(st.sampled_from([2, 4, 8]))
        opts = draw(st.fixed_dictionaries({}, optional={
            "byte_order": st.sampled_from(["big", "little"]), "signed": st.booleans(), **common}))
        if draw(st.booleans()):
            opts["digits"] = draw(st.integers(1, {2: 4, 4: 9, 8: 18}[length]))
        digits = opts.get("digits", {2: 5, 4: 10, 8: 19}[length])
        opts["scale"] = draw(st.integers(-3, digits + 3))
    elif t in ("zoned", "packed", "decimal"):
        length = draw(st.integers(2 if t == "zoned" else 1, 12))
        opts = draw(st.fixed_dictionaries({}, optional={
            "signed": st.booleans(), "blank": NUM_POL, "low_value": NUM_POL, **common}))
        if t == "zoned":
            opts.update(draw(st.fixed_dictionaries({}, optional={
                "zone": st.sampled_from(["ascii", "ebcdic"]),
                "sign_position": st.sampled_from(["trailing", "leading"]),
                "sign_separate": st.booleans(), "strict_sign": st.booleans()})))
        if t == "decimal" and draw(st.booleans()):
            opts["encoding"] = "cp037"
        digits = FieldSpec("p", offset=0, length=length, type=t, **opts).precision
        opts["scale"] = draw(st.integers(-3, digits + 3))
    elif t == "edited":
        pic = draw(st.sampled_from(PICTURES))

        length = len(parse_picture(pic)[0])
        opts = {"picture": pic, **draw(st.fixed_dictionaries({}, optional={
            "encoding": st.sampled_from(["cp932", "cp037"]),
            "blank": st.sampled_from(["null", "error", "zero"]), "high_value": NUM_POL,
            "free_form": st.booleans(), **common}))}
    else:
        length = 2 * draw(st.integers(1, 8))
        opts = draw(st.fixed_dictionaries({}, optional={
            "byte_order": st.sampled_from(["big", "little"]),
            "trim": st.sampled_from(["none", "left", "right", "both"]),
            "blank": st.sampled_from(["empty", "null", "error"]),
            "low_value": st.sampled_from(["decode", "empty", "null", "error"]), **common}))
    if length > record_length:
        return FieldSpec(name, offset=0, length=record_length, type="bytes")
    offset = draw(st.integers(0, record_length - length))
    return FieldSpec(name, offset=offset, length=length, type=t, **opts)


# plausible characters for each edited op (ASCII), so that most values get far into the loop
_ED_CHARS = {1: "0123456789", 2: "0123456789", 3: "0123456789", 4: None, 5: ".", 6: "+-",
             7: " -+", 8: "C", 9: "D", 10: "RB", 11: " +-$", 12: "0123456789"}
_UNITS = [(0x41,), (0x20,), (0x3000,), (0xD800,), (0xDFFF,), (0xD83D, 0xDE00), (0xDBFF, 0xDC00),
          (0,), (0x6F22,), (0xFFFF,)]


def plausible(draw, f: FieldSpec) -> bytes:
    """Bytes for field f that are valid or one step from valid."""
    o, n = f.options, f.length
    if f.type == "edited":
        ops, lits, fills = parse_picture(o["picture"])[:3]
        rnd = random.Random(draw(st.integers(0, 2**32)))
        k = rnd.randint(0, n)  # positions before k show their fill (suppressed)
        out = []
        for i, (op, lit, fill) in enumerate(zip(ops, lits, fills, strict=True)):
            if op in (ED_FLOAT, ED_FLOAT_HEAD):
                c = " " if i < k - 1 else (rnd.choice("+-$") if i == k - 1 else rnd.choice(
                    "0123456789"))
            elif i < k and fill:
                c = chr(fill)
            else:
                c = rnd.choice(_ED_CHARS[op] or chr(lit))
            out.append(c)
        if rnd.random() < 0.3:
            out[rnd.randrange(n)] = rnd.choice("0123456789 +-.,*$CRDB/")
        return "".join(out).encode("cp037" if f.encoding != "cp932" else "ascii")
    if f.type == "zoned":
        ebc = o["zone"] == "ebcdic"
        digits = draw(st.lists(st.sampled_from(b"\xf1\xf9\xf0" if ebc else b"190"),
                               min_size=n, max_size=n))
        at = 0 if o["sign_position"] == "leading" else n - 1
        digits[at] = draw(st.sampled_from(
            b"\x4e\x60\xc1\xd1\xf3\xc0" if ebc else b"+-{}AJ3p"))
        return bytes(digits)
    if f.type == "national":
        tokens = draw(st.lists(st.sampled_from(_UNITS), min_size=n // 2, max_size=n // 2))
        units = [u for t in tokens for u in t][:n // 2]
        return b"".join(u.to_bytes(2, o["byte_order"]) for u in units)
    return draw(st.binary(min_size=n, max_size=n))


@st.composite
def cases(draw):
    rl = draw(st.integers(2, 32))
    fields = [draw(field_specs(f"f{i}", rl)) for i in range(draw(st.integers(1, 5)))]
    nrec = draw(st.integers(0, 8))
    chunks = draw(st.lists(st.one_of(st.sampled_from(PIECES), st.binary(min_size=1, max_size=4)),
                           max_size=nrec * rl))
    data = bytearray((b"".join(chunks) + b" " * (rl * nrec))[:rl * nrec])
    for r in range(nrec):
        for f in fields:
            if draw(st.integers(0, 4)):
                at = r * rl + f.offset
                data[at:at + f.length] = plausible(draw, f)
    starts = np.arange(nrec, dtype=np.int64) * rl
    return DecodePlan(record_length=rl, fields=fields), bytes(data), starts


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_cobol_types_compiled_equals_twin(case):
    assert_same(*case)


def test_many_rows_cobol_types_equal_twin():
    """More rows than one C chunk (256), every new type and option: compiled == twin."""
    rng = np.random.default_rng(11)
    fields = [
        FieldSpec("f4", offset=0, length=4, type="float"),
        FieldSpec("d8", offset=4, length=8, type="float", format="ieee", byte_order="little"),
        FieldSpec("b4", offset=12, length=4, type="binary", digits=7, scale=-2),
        FieldSpec("z", offset=16, length=6, type="zoned", zone="ebcdic", sign_separate=True,
                  sign_position="leading", scale=8),
        FieldSpec("e", offset=22, length=10, type="edited", picture="9(6).99-", encoding="cp037"),
        FieldSpec("n", offset=32, length=8, type="national", trim="both"),
    ]
    plan = DecodePlan(record_length=40, fields=fields)
    pieces = np.array(PIECES, dtype=object)
    records = []
    for _ in range(1200):
        raw = b"".join(pieces[rng.integers(0, len(pieces), 30)].tolist())
        records.append((raw + b" " * 40)[:40])
    res = assert_same(plan, b"".join(records), np.arange(1200, dtype=np.int64) * 40)
    assert len(res.errors) > 100


def test_wide_records_equal_twin():
    """Records over 512 bytes go in small chunks with the next chunk prefetched: compiled == twin
    over many chunks, with errors in some rows."""
    rng = np.random.default_rng(13)
    kinds = [("zoned", 23, {"zone": "ebcdic", "scale": 2}), ("packed", 10, {"scale": -2}),
             ("binary", 8, {"digits": 18}), ("float", 8, {}),
             ("edited", 10, {"picture": "9(6).99-", "encoding": "cp037"}),
             ("national", 12, {}), ("zoned", 7, {"zone": "ebcdic", "sign_separate": True})]
    fields, off = [], 0
    while off < 1_150:
        t, n, opts = kinds[len(fields) % len(kinds)]
        fields.append(FieldSpec(f"f{len(fields)}", offset=off, length=n, type=t, **opts))
        off += n
    plan = DecodePlan(record_length=1_200, fields=fields)
    recs = bytearray(rng.integers(0, 256, 1_200 * 400, dtype=np.uint8).tobytes())
    rnd = random.Random(3)
    for r in range(400):
        for f in fields:
            if rnd.random() < 0.9 and f.type in ("zoned", "edited", "national"):
                at = r * 1_200 + f.offset
                if f.type == "zoned":
                    digits = bytes(rnd.choice(b"\xf0\xf5\xf9") for _ in range(f.length))
                    sign = b"\x60" if f.options["sign_separate"] else bytes([0xD0 | digits[-1] & 15])
                    recs[at:at + f.length] = digits[:-1] + sign
                elif f.type == "edited":
                    recs[at:at + 10] = f"{rnd.randrange(10**8):08d}".encode("cp037")[:6] + (
                        b"\x4b" + bytes(rnd.choice(b"\xf1\xf2") for _ in range(2)) + b"\x60")
                else:
                    recs[at:at + 12] = "漢字ｶﾅ12".encode("utf-16-be")
    res = assert_same(plan, bytes(recs), np.arange(400, dtype=np.int64) * 1_200)
    decoded = sum(len(c) - c.null_count for c in res.batch.columns)
    assert len(res.errors) > 400 and decoded > 5_000
