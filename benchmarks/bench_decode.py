"""Benchmark of the decoding kernel ``ikou.kernels.decode_block`` (``kernels/_decode.pyx``).

Fixed-seed synthetic corpora (no personal data): kanji-dense, ASCII-heavy, half-width-kana-heavy,
mixed resident-like records and a numeric-heavy tax-like layout with packed decimals.  For each,
measured in the same run:

* the compiled kernel, one thread (MB/s, records/s; best of several repeats);
* the best pure-Python decoder written for the same job (``struct`` slicing, one bulk codec call
  per column, ``pa.array`` per column) — its output is checked equal to the kernel's;
* CPython's bulk ``bytes.decode("cp932")`` of the same bytes (far less work: no fields, no types);
* the kernel on two threads (two blocks at a time; the GIL is released in the loop).
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
import struct
import time
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import numpy as np
import pyarrow as pa

from ikou.kernels import KERNEL_IMPL, DecodePlan, FieldSpec, decode_block

SEED = 20260401
BLOCK_RECORDS = 20_000

# -- corpora ---------------------------------------------------------------------------------


def _valid_codes(leads, predicate) -> np.ndarray:
    out = []
    for lead in leads:
        for trail in list(range(0x40, 0x7F)) + list(range(0x80, 0xFD)):
            try:
                ch = bytes([lead, trail]).decode("cp932")
            except UnicodeDecodeError:
                continue
            if predicate(ch):
                out.append(bytes([lead, trail]))
    return np.array(out, dtype="S2")


_KANJI = None


def _tables():
    global _KANJI
    if _KANJI is None:
        kanji = _valid_codes(range(0x88, 0xA0), lambda c: "\u4e00" <= c <= "\u9fff")
        hira = _valid_codes([0x82], lambda c: "\u3041" <= c <= "\u3093")
        fwdigit = _valid_codes([0x82], lambda c: "\uff10" <= c <= "\uff19")
        kana = np.array([bytes([b]) for b in range(0xA6, 0xDE)], dtype="S1")
        _KANJI = (kanji, hira, fwdigit, kana)
    return _KANJI


def _pad(b: bytes, n: int, pad: bytes = b" ") -> bytes:
    if len(b) > n:
        b = b[:n]
        # never leave a lead byte cut at the end of the field
        try:
            b.decode("cp932")
        except UnicodeDecodeError:
            b = b[:-1]
    return b + pad * ((n - len(b)) // len(pad)) + b" " * ((n - len(b)) % len(pad))


def _kanji_str(rng, k) -> bytes:
    kanji = _tables()[0]
    return b"".join(kanji[rng.integers(0, len(kanji), k)].tolist())


def _kana_str(rng, k) -> bytes:
    kana = _tables()[3]
    parts = kana[rng.integers(0, len(kana), k)].tolist()
    out = []
    for p in parts:
        out.append(p)
        if rng.random() < 0.2 and p in b"\xb6\xb7\xb8\xb9\xba\xbb\xbc\xbd\xbe\xbf\xc0\xca\xcb\xcc":
            out.append(b"\xde")
    return b"".join(out)


def _wareki(rng) -> bytes:
    era = int(rng.choice([3, 4, 5], p=[0.6, 0.3, 0.1]))
    yy = int(rng.integers(1, {3: 63, 4: 30, 5: 6}[era]))
    r = rng.random()
    if r < 0.01:
        return f"{era}000000".encode()
    return f"{era}{yy:02d}{int(rng.integers(1, 13)):02d}{int(rng.integers(1, 29)):02d}".encode()


GAIJI = {0xF040 + i: chr(0x9AD9 + i) for i in range(16)} | {0xF050: "葛\U000E0100"}


def corpus_mixed(n: int, seed: int = SEED):
    """Resident-like records (300 bytes): digits, kanji and kana names, wareki, address."""
    rng = np.random.default_rng(seed)
    fields = [
        FieldSpec("kind", offset=0, length=1, type="digits"),
        FieldSpec("atena_no", offset=1, length=10, type="digits"),
        FieldSpec("setai_no", offset=11, length=10, type="digits"),
        FieldSpec("name_kanji", offset=21, length=40, type="text"),
        FieldSpec("name_kana", offset=61, length=40, type="text"),
        FieldSpec("birth", offset=101, length=7, type="wareki"),
        FieldSpec("sex", offset=108, length=1, type="digits"),
        FieldSpec("relation", offset=109, length=2, type="digits"),
        FieldSpec("zip", offset=111, length=7, type="digits"),
        FieldSpec("address", offset=118, length=100, type="text"),
        FieldSpec("katagaki", offset=218, length=40, type="text"),
        FieldSpec("moved_in", offset=258, length=8, type="date"),
        FieldSpec("registered", offset=266, length=7, type="wareki"),
        FieldSpec("amount", offset=273, length=9, type="int"),
        FieldSpec("pad", offset=282, length=18, type="filler"),
    ]
    _, hira, fwdigit, _ = _tables()
    recs = []
    for i in range(n):
        name = _kanji_str(rng, int(rng.integers(1, 4))) + b"\x81\x40" + _kanji_str(
            rng, int(rng.integers(1, 4)))
        if rng.random() < 0.05:
            name = name[:2] + (0xF040 + int(rng.integers(0, 17))).to_bytes(2, "big") + name[2:]
        kana = _kana_str(rng, int(rng.integers(3, 7))) + b" " + _kana_str(rng, int(rng.integers(3, 7)))
        addr = (_kanji_str(rng, int(rng.integers(6, 14)))
                + b"".join(fwdigit[rng.integers(0, 10, 1)].tolist()) + "丁目".encode("cp932")
                + f"{int(rng.integers(1, 40))}-{int(rng.integers(1, 30))}".encode()
                + (b"" if rng.random() < 0.6 else hira[rng.integers(0, len(hira), 4)].tobytes()))
        kata = b"" if rng.random() < 0.8 else _kanji_str(rng, 6) + b"\x81\x40" + b"101"
        y = int(rng.integers(1990, 2026))
        rec = b"".join([
            b"2", f"{i + 1:010d}".encode(), f"{int(rng.integers(1, 10**9)):010d}".encode(),
            _pad(name, 40, b"\x81\x40"), _pad(kana, 40), _wareki(rng),
            str(int(rng.integers(1, 3))).encode(), f"{int(rng.integers(1, 20)):02d}".encode(),
            f"{int(rng.integers(0, 10**7)):07d}".encode(), _pad(addr, 100, b"\x81\x40"),
            _pad(kata, 40), f"{y}{int(rng.integers(1, 13)):02d}{int(rng.integers(1, 29)):02d}".encode(),
            _wareki(rng), f"{int(rng.integers(-10**6, 10**8)):>9d}".encode(), b" " * 18,
        ])
        assert len(rec) == 300, len(rec)
        recs.append(rec)
    return DecodePlan(record_length=300, fields=fields, gaiji=GAIJI), b"".join(recs)


def corpus_kanji(n: int, seed: int = SEED + 1):
    """One 200-byte field of dense kanji (100 characters) per record."""
    rng = np.random.default_rng(seed)
    kanji = _tables()[0]
    codes = kanji[rng.integers(0, len(kanji), n * 100)]
    plan = DecodePlan(record_length=200, fields=[FieldSpec("t", offset=0, length=200, type="text")])
    return plan, codes.tobytes()


def corpus_ascii(n: int, seed: int = SEED + 2):
    """Four 50-byte fields of ASCII words and trailing spaces."""
    rng = np.random.default_rng(seed)
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ",
                            dtype="S1")
    recs = []
    for _ in range(n):
        for _f in range(4):
            k = int(rng.integers(10, 50))
            recs.append(_pad(letters[rng.integers(0, len(letters), k)].tobytes(), 50))
    plan = DecodePlan(record_length=200, fields=[
        FieldSpec(f"t{i}", offset=50 * i, length=50, type="text") for i in range(4)])
    return plan, b"".join(recs)


def corpus_kana(n: int, seed: int = SEED + 3):
    """Four 50-byte fields of half-width katakana (with ﾞ), widened to full width."""
    rng = np.random.default_rng(seed)
    recs = [_pad(_kana_str(rng, int(rng.integers(10, 40))), 50) for _ in range(4 * n)]
    plan = DecodePlan(record_length=200, fields=[
        FieldSpec(f"t{i}", offset=50 * i, length=50, type="text", kana_widen=(i % 2 == 0))
        for i in range(4)])
    return plan, b"".join(recs)


def corpus_tax(n: int, seed: int = SEED + 4):
    """Tax-like records (200 bytes): packed and zoned decimals, ints, a date, a short name."""
    rng = np.random.default_rng(seed)
    fields = [FieldSpec("key", offset=0, length=15, type="digits"),
              FieldSpec("year", offset=15, length=4, type="digits"),
              FieldSpec("name", offset=19, length=30, type="text")]
    off = 49
    for i in range(10):
        fields.append(FieldSpec(f"p{i}", offset=off, length=6, type="packed"))
        off += 6
    for i in range(4):
        fields.append(FieldSpec(f"z{i}", offset=off, length=9, type="zoned", scale=2))
        off += 9
    for i in range(2):
        fields.append(FieldSpec(f"i{i}", offset=off, length=10, type="int"))
        off += 10
    fields.append(FieldSpec("d", offset=off, length=11, type="decimal", scale=2))
    fields.append(FieldSpec("when", offset=off + 11, length=8, type="date"))
    fields.append(FieldSpec("pad", offset=off + 19, length=200 - off - 19, type="filler"))
    over = b"{ABCDEFGHI}JKLMNOPQR"
    recs = []
    for i in range(n):
        parts = [f"{i:015d}".encode(), b"2025", _pad(_kanji_str(rng, int(rng.integers(2, 8))), 30)]
        for v in rng.integers(-10**10, 10**11, 10).tolist():
            digits = f"{abs(v):011d}"
            parts.append(bytes.fromhex(digits + ("d" if v < 0 else "c")))
        for v in rng.integers(-10**8, 10**9, 4).tolist():
            d = f"{abs(v):09d}"
            parts.append(d[:-1].encode() + over[int(d[-1]) + (10 if v < 0 else 0):][:1])
        for v in rng.integers(-10**8, 10**9, 2).tolist():
            parts.append(f"{v:>10d}".encode())
        parts.append(f"{int(rng.integers(-10**9, 10**10)):>11d}".encode())
        parts.append(f"2025{int(rng.integers(1, 13)):02d}{int(rng.integers(1, 29)):02d}".encode())
        rec = b"".join(parts)
        recs.append(rec + b" " * (200 - len(rec)))
    return DecodePlan(record_length=200, fields=fields), b"".join(recs)


CORPORA = {
    "mixed": corpus_mixed,
    "kanji": corpus_kanji,
    "ascii": corpus_ascii,
    "kana": corpus_kana,
    "tax": corpus_tax,
}

# -- best-effort pure-Python decoder (the baseline) -------------------------------------------

_PUA = re.compile("[\ue000-\ue757]")
_DEC = codecs.getdecoder("cp932")
_STATUS = pa.array(["valid", "out_of_era", "impossible", "unknown", "blank"])
_OVERPUNCH = {ord(c): (i % 10, i >= 10) for i, c in enumerate("{ABCDEFGHI}JKLMNOPQR")}
_OVERPUNCH.update({0x30 + d: (d, False) for d in range(10)})
_EPOCH = dt.date(1970, 1, 1).toordinal()
# half-width katakana → full width, ﾞ/ﾟ merged (built here from unicodedata, not the kernel's)
_KANA_WIDE = {c: unicodedata.normalize("NFKC", chr(c)) for c in range(0xFF61, 0xFFA0)}
_KANA_WIDE[0xFF9E], _KANA_WIDE[0xFF9F] = "\u309b", "\u309c"
_MERGED = {chr(b) + m: unicodedata.normalize("NFKC", chr(b) + m)
           for b in range(0xFF61, 0xFF9E) for m in "\uff9e\uff9f"}
_MERGED = {k: v for k, v in _MERGED.items() if len(v) == 1}
_KANA_MERGE = re.compile("|".join(sorted(_MERGED)))


def _merge(m: re.Match) -> str:
    return _MERGED[m.group()]


class PurePython:
    """The fastest plain-Python decoder we could write for the same columns (no kernel code)."""

    def __init__(self, plan: DecodePlan):
        self.plan = plan
        fields = sorted((f for f in plan.fields if f.type != "filler"), key=lambda f: f.offset)
        fmt, pos = "", 0
        self.order = []
        for f in fields:
            fmt += f"{f.offset - pos}x{f.length}s"
            pos = f.offset + f.length
            self.order.append(f)
        fmt += f"{plan.record_length - pos}x"
        self.struct = struct.Struct(fmt)
        self.gaiji = {0xE000 + _pua_index(c): s for c, (s, _) in plan.gaiji.items()}
        self.eras = {c: (s, e, b) for c, s, e, b in _default_eras()}

    def decode(self, buf: bytes) -> pa.RecordBatch:
        cols = dict(zip([f.name for f in self.order], zip(*self.struct.iter_unpack(buf), strict=True),
                        strict=True))
        out = {}
        for f in self.plan.fields:
            if f.type == "filler":
                continue
            values = cols[f.name]
            fn = getattr(self, "_" + f.type)
            res = fn(f, values)
            if f.type == "wareki":
                out[f.name], out[f.name + "_raw"], out[f.name + "_status"] = res
            else:
                out[f.name] = res
        return pa.RecordBatch.from_pydict(out, schema=self.plan.schema)

    def _text(self, f, values):
        joined = b"\n".join(values)
        try:  # one codec call for the whole column; per value only if that fails
            s = _DEC(joined)[0]
            parts = s.split("\n")
            if len(parts) != len(values):
                raise ValueError("separator inside a value")
        except (UnicodeDecodeError, ValueError):
            s = None
            parts = [v.decode("cp932", "replace") for v in values]
        if self.gaiji and (s is None or _PUA.search(s)):
            parts = [p.translate(self.gaiji) for p in parts]
        if f.options["kana_widen"]:
            parts = [_KANA_MERGE.sub(_merge, p).translate(_KANA_WIDE) for p in parts]
        return pa.array([p.rstrip(" \u3000") for p in parts], pa.string())

    def _digits(self, f, values):
        blank = b" " * f.length
        return pa.array([None if v == blank or not v.isdigit() else v.decode() for v in values],
                        pa.string())

    def _int(self, f, values):
        out = []
        for v in values:
            try:
                out.append(int(v))
            except ValueError:
                out.append(None)
        return pa.array(out, pa.int64())

    def _date(self, f, values):
        out = []
        for v in values:
            try:
                out.append(dt.date(int(v[:4]), int(v[4:6]), int(v[6:])))
            except ValueError:
                out.append(None)
        return pa.array(out, pa.date32())

    def _wareki(self, f, values):
        dates, raws, status = [], [], []
        eras = self.eras
        for v in values:
            raws.append(v.decode("ascii"))
            ymd = v[1:]
            if v.isspace():
                dates.append(None)
                status.append(4)
                continue
            yy, mm, dd = int(ymd[:2]), int(ymd[2:4]), int(ymd[4:])
            if ymd in (b"000000", b"999999") or mm == 0 or dd == 0:
                dates.append(None)
                status.append(3)
                continue
            era = eras.get(int(v[:1]))
            try:
                day = dt.date(era[2] + yy - 1, mm, dd).toordinal() - _EPOCH
            except (ValueError, TypeError):
                dates.append(None)
                status.append(2)
                continue
            if era[0] <= day <= era[1]:
                dates.append(day)
                status.append(0)
            else:
                dates.append(None)
                status.append(1)
        return (pa.array(dates, pa.int32()).cast(pa.date32()), pa.array(raws, pa.string()),
                pa.DictionaryArray.from_arrays(pa.array(status, pa.int8()), _STATUS))

    def _packed(self, f, values):
        scale = f.options["scale"]
        out = []
        for v in values:
            h = v.hex()
            n = int(h[:-1])
            out.append(Decimal(-n if h[-1] == "d" else n).scaleb(-scale))
        return pa.array(out, pa.decimal128(f.precision, scale))

    def _zoned(self, f, values):
        scale = f.options["scale"]
        out = []
        for v in values:
            d, neg = _OVERPUNCH[v[-1]]
            n = int(v[:-1]) * 10 + d
            out.append(Decimal(-n if neg else n).scaleb(-scale))
        return pa.array(out, pa.decimal128(f.precision, scale))

    def _decimal(self, f, values):
        scale = f.options["scale"]
        return pa.array([Decimal(int(v)).scaleb(-scale) for v in values],
                        pa.decimal128(f.precision, scale))


def _pua_index(code: int) -> int:
    lead, trail = code >> 8, code & 0xFF
    return (lead - 0xF0) * 188 + (trail - 0x40 if trail < 0x80 else trail - 0x41)


def _default_eras():
    """(code, first day, last day, base year) with days since 1970-01-01 (written out here)."""
    spans = [(1, (1868, 1, 25), (1912, 7, 30), 1868), (2, (1912, 7, 30), (1926, 12, 25), 1912),
             (3, (1926, 12, 25), (1989, 1, 7), 1926), (4, (1989, 1, 8), (2019, 4, 30), 1989),
             (5, (2019, 5, 1), (9999, 12, 31), 2019)]
    return [(c, dt.date(*a).toordinal() - _EPOCH, dt.date(*b).toordinal() - _EPOCH, base)
            for c, a, b, base in spans]


# -- measurement -------------------------------------------------------------------------------


def _blocks(plan, data):
    rl = plan.record_length
    n = len(data) // rl
    out = []
    for first in range(0, n, BLOCK_RECORDS):
        k = min(BLOCK_RECORDS, n - first)
        out.append(data[first * rl:(first + k) * rl])
    return out


def _best(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _kernel_all(plan, blocks, starts_for):
    for b in blocks:
        decode_block(b, starts_for(len(b)), plan)


def measure(name: str, n: int, repeats: int) -> dict:
    plan, data = CORPORA[name](n)
    rl = plan.record_length
    blocks = _blocks(plan, data)
    starts_cache = {}

    def starts_for(size):
        if size not in starts_cache:
            starts_cache[size] = np.arange(size // rl, dtype=np.int64) * rl
        return starts_cache[size]

    # correctness first: the kernel and the baseline must agree, and nothing may be rejected
    base = PurePython(plan)
    sample = blocks[0][: min(len(blocks[0]), 2000 * rl)]
    k = decode_block(sample, starts_for(len(sample)), plan)
    same = k.batch.equals(base.decode(sample)) and len(k.errors) == 0

    t_kernel = _best(lambda: _kernel_all(plan, blocks, starts_for), repeats)
    t_python = _best(lambda: [base.decode(b) for b in blocks], 2 if repeats > 1 else 1)
    # errors="replace": the packed decimals of the tax corpus are not text
    t_bulk = _best(lambda: [b.decode("cp932", "replace") for b in blocks], repeats)
    # 1 vs 2 threads over the same even number (>= 4) of blocks
    work = blocks * (-(-4 // len(blocks)))
    work = work[: len(work) // 2 * 2]

    def one():
        for b in work:
            decode_block(b, starts_for(len(b)), plan)

    with ThreadPoolExecutor(2) as pool:
        def two():
            list(pool.map(lambda b: decode_block(b, starts_for(len(b)), plan), work))

        two()  # start the workers
        t_one = _best(one, repeats)
        c0, w0 = time.process_time(), time.perf_counter()
        t_two = _best(two, repeats)
        cpu_per_wall = (time.process_time() - c0) / (time.perf_counter() - w0)
    mb = len(data) / 1e6
    nrec = len(data) // rl
    return {
        "corpus": name,
        "records": nrec,
        "MB": round(mb, 2),
        "kernel_MB_s": round(mb / t_kernel, 1),
        "kernel_rec_s": round(nrec / t_kernel),
        "python_MB_s": round(mb / t_python, 2),
        "bulk_decode_MB_s": round(mb / t_bulk, 1),
        "x_python": round(t_python / t_kernel, 1),
        "x_bulk": round(t_bulk / t_kernel, 2),
        "threads2_scaling": round(t_one / t_two, 2),
        "threads2_cpu_per_wall": round(cpu_per_wall, 2),
        "same_as_python": same,
        "impl": KERNEL_IMPL,
    }


def run(quick: bool = False) -> list[dict]:
    n = 2_000 if quick else 60_000
    repeats = 1 if quick else 5
    return [measure(name, n, repeats) for name in CORPORA]
