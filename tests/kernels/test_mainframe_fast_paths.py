"""The compiled mixed kernel's fast loops (plain single-byte characters eight at a time; double-byte
codes whose table entry holds their UTF-8) against the pure-Python twin: every byte value at every
position of an eight-byte word among plain characters and spaces, with every trim; every code whose
first byte may begin a shift sequence, inside double-byte runs, text and dbcs fields."""

import numpy as np
import pytest
from test_decode_hypothesis import assert_same

from ikou.kernels import ENCODINGS, DecodePlan, FieldSpec, get_encoding

pytest.importorskip("ikou.kernels._decode")

MIXED = [e for e in ENCODINGS if e != "cp932" and get_encoding(e).mixed]


def _block(rows):
    rl = len(rows[0])
    assert all(len(r) == rl for r in rows)
    return b"".join(rows), np.arange(len(rows), dtype=np.int64) * rl


def _singles(enc):
    single = {s: b for b, s in enumerate(enc.single) if s is not None}
    sp = bytes([single[" "]])
    letters = bytes(single[c] for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return sp, letters


def _kanji(enc, n):
    codes = [c for c, s in sorted(enc.double.items()) if "\u4e00" <= s <= "\u9fff"][:n]
    return b"".join(c.to_bytes(2, "big") for c in codes)


@pytest.mark.parametrize("enc_name", MIXED)
def test_every_byte_at_every_position_among_plain_characters(enc_name):
    enc = get_encoding(enc_name)
    sp, letters = _singles(enc)
    si, so = enc.shift_in[0], enc.shift_out[0]
    kanji = _kanji(enc, 3)
    rl = 26
    bases = [letters[:rl], sp * 3 + letters[:rl - 3], letters[:5] + sp * (rl - 5), sp * rl,
             letters[:2] + sp * 2 + letters[2:rl - 2],
             (letters[:3] + si + kanji + so + letters[3:] + sp * rl)[:rl]]
    rows = []
    for b in range(256):
        for q in range(17):
            base = bases[(b + q) % len(bases)]
            rows.append(base[:q] + bytes([b]) + base[q + 1:])
    for k in range(len(bases)):  # a kana byte, ﾞ-like bytes: two non-plain bytes in a row
        for b in (0x81, 0x8A, 0xBE, 0xBF, 0xE1, 0x0E, 0x28):
            rows.append(bases[k][:7] + bytes([b, b]) + bases[k][9:])
    data, starts = _block(rows)
    variants = [{"trim": t} for t in ("none", "left", "right", "both")] + [
        {"trim": "both", "on_error": "replace", "replacement": "?"},
        {"trim": "none", "kana_widen": True}]
    fields = [FieldSpec(f"t{k}", offset=k % 2 * 3, length=rl - k % 2 * 3, type="text",
                        encoding=enc_name, **v) for k, v in enumerate(variants)]
    res = assert_same(DecodePlan(rl, fields), data, starts)
    assert res.batch.num_rows == len(rows)
    # the clean rows decode to what they say
    plan = DecodePlan(rl, [FieldSpec("t", offset=0, length=rl, type="text", encoding=enc_name,
                                     trim="none")])
    got = assert_same(plan, *_block(bases[:5])).batch.column("t").to_pylist()
    assert got[0] == "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    assert got[2] == "ABCDE" + " " * (rl - 5)
    assert got[3] == ""  # nothing but spaces: the blank policy (empty)


@pytest.mark.parametrize("enc_name", MIXED)
def test_codes_that_may_begin_a_shift_sequence_inside_double_byte_runs(enc_name):
    enc = get_encoding(enc_name)
    sp, letters = _singles(enc)
    si, so = enc.shift_in[0], enc.shift_out[0]
    kanji = _kanji(enc, 4)
    fsp = enc.spaces[0].to_bytes(2, "big")
    leads = sorted({q[0] for q in enc.shift_in + enc.shift_out} | {0x40, 0xA1, fsp[0]})
    rows = []
    for lead in leads:
        for trail in range(256):
            code = bytes([lead, trail])
            # the code inside a run of kanji (text, then dbcs), and as the run's last code
            text = (letters[:1] + si + kanji[:4] + code + kanji[4:] + so + sp * 20)[:20]
            last = (si + kanji + code + so + sp * 20)[:20]
            dbcs = kanji[:4] + code + fsp * 10
            rows.append(text + last + dbcs[:20] + (fsp + code + kanji)[:12])
    plan_fields = [FieldSpec("t", offset=0, length=20, type="text", encoding=enc_name),
                   FieldSpec("l", offset=20, length=20, type="text", encoding=enc_name),
                   FieldSpec("d", offset=40, length=20, type="dbcs", encoding=enc_name),
                   FieldSpec("o", offset=60, length=11, type="dbcs", encoding=enc_name,
                             trim="both"),
                   FieldSpec("s", offset=60, length=12, type="text", encoding=enc_name,
                             shift_state="double", trim="left")]
    data, starts = _block(rows)
    res = assert_same(DecodePlan(72, plan_fields), data, starts)
    assert len(res.errors) > 0  # most of these codes are errors, each reported as the twin does
