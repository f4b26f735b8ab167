"""JEF, KEIS and JIPS against an independent oracle: CPython's ``euc_jp`` (JIS X 0208).

KEIS83 is JIS X 0208 + 0x8080 per byte (one documented exception, A1BD); KEIS78, JEF and JIPS(J)
differ from ``euc_jp`` only at the codes the jef4j ``*-vs-eucjp.tsv`` files list
(``differs``: another character; ``extra``: a character ``euc_jp`` lacks; ``missing``: no
character). Codes jef4j cannot map (``unmappable``, NEC's conflicting rows) are errors.
One decode_block call per encoding covers every code of the JIS area.
"""

import unicodedata
from pathlib import Path

import numpy as np
import pytest

from ikou.kernels import DecodePlan, ErrorCode, FieldSpec, _decode_py, get_encoding

_decode = pytest.importorskip("ikou.kernels._decode")

JEF4J = Path(__file__).resolve().parent / "data" / "jef4j"  # CC0, see its README
DIFFS = {"keis83": "hitachi_keis83-vs-eucjp.tsv", "keis78": "hitachi_keis78-vs-eucjp.tsv",
         "jef": "fujitsu_jef-vs-eucjp.tsv", "jips-j": "nec_jipsj-vs-eucjp.tsv"}
# the one documented KEIS83 exception, written here independently of the diff files
KEIS83_EXCEPTION = {0xA1BD: "\u2014"}  # EM DASH where euc_jp has U+2015 HORIZONTAL BAR
CODES = [lead << 8 | trail for lead in range(0xA1, 0xFF) for trail in range(0xA1, 0xFF)]


def _diffs(enc):
    path = JEF4J / DIFFS[enc]
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        status, code, ours, _theirs, *opts = line.split("\t")
        c = int(code, 16) | (0x8080 if enc == "jips-j" else 0)
        if opts and "cjk_ci" in opts[0]:
            status = "cjk_ci"  # a compatibility ideograph: the main row where jef4j has one
        out[c] = (status, None if ours in ("-", "") else
                  "".join(chr(int(u[2:], 16)) for u in ours.split()))
    return out


def _decode_codes(impl, enc, codes):
    wire = [c & 0x7F7F if enc == "jips-j" else c for c in codes]
    plan = DecodePlan(2, [FieldSpec("t", offset=0, length=2, type="dbcs", encoding=enc,
                                    trim="none")])
    buf = b"".join(c.to_bytes(2, "big") for c in wire)
    res = impl(buf, np.arange(len(codes), dtype=np.int64) * 2, plan)
    errs = {row: ErrorCode(code) for row, _f, code, _p, _v, _r in res.errors}
    return res.batch.column(0).to_pylist(), errs


def _euc(code):
    try:
        return code.to_bytes(2, "big").decode("euc_jp")
    except UnicodeDecodeError:
        return None


def _blank(s):
    return "" if s is not None and s.strip("\u3000") == "" else s


@pytest.mark.parametrize("impl", [_decode.decode_block, _decode_py.decode_block],
                         ids=["compiled", "python"])
@pytest.mark.parametrize("enc", list(DIFFS))
def test_jis_area_against_euc_jp(enc, impl):
    diffs = _diffs(enc)
    if enc == "keis83":
        assert {c: s for c, (_st, s) in diffs.items()} == KEIS83_EXCEPTION
    got, errs = _decode_codes(impl, enc, CODES)
    table = get_encoding(enc)
    counted = {"same": 0, "listed": 0, "error": 0}
    for k, code in enumerate(CODES):
        wire = code & 0x7F7F if enc == "jips-j" else code
        if table.user(wire):
            assert errs.get(k) == ErrorCode.UNMAPPED_GAIJI
            continue
        if code in diffs:
            status, ours = diffs[code]
            counted["listed"] += 1
            if status == "cjk_ci":
                assert got[k] in (ours, _euc(code)), hex(code)
                assert unicodedata.normalize("NFC", got[k]) == _euc(code), hex(code)
            elif status == "missing" or wire in table.unmappable:
                assert got[k] is None and k in errs, hex(code)
            else:
                assert got[k] == _blank(ours), hex(code)
            continue
        want = _euc(code)
        if wire in table.unmappable:  # jef4j cannot map it: an error, whatever euc_jp says
            assert errs.get(k) == ErrorCode.UNMAPPABLE_CODE, hex(code)
            counted["error"] += 1
        elif want is None:
            assert got[k] is None and errs.get(k) == ErrorCode.INVALID_DBCS, hex(code)
        else:
            assert k not in errs and got[k] == _blank(want), hex(code)
            counted["same"] += 1
    assert counted["same"] > 6000
