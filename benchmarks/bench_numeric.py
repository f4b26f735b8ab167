"""Benchmark of the decoding kernel on COBOL-style numeric records (``type_variety``-like).

A fixed-seed synthetic record of about 1,500 bytes with 195 numeric fields, mixed like Cobrix's
type-variety copybook (test6): EBCDIC zoned of 1–37 digits (unsigned, overpunched, separate and
leading signs, V decimals), COMP/BINARY of 2/4/8 bytes with PIC digits, COMP-3 of 1–37 digits,
COMP-1/COMP-2 (IBM and IEEE), P scaling and numeric-edited pictures.  Measured in the same run:
the compiled kernel on one core (100,000 records in the pipeline's 8 MiB blocks, best of several
repeats; also as one call over all of them) and the pure-Python
twin (``_decode_py``) on a slice of the same corpus, whose output is checked equal to the kernel's.

    python -m benchmarks.bench_numeric [--quick] [--records N]
"""

from __future__ import annotations

import argparse
import random
import struct
import time

import numpy as np

from ikou.kernels import DecodePlan, FieldSpec, _decode_py, decode_block
from ikou.kernels._decode_common import parse_picture
from ikou.transforms.decode.blocks import DEFAULT_BLOCK_SIZE

SEED = 20261202
DISTINCT = 1_000  # distinct records, tiled to the corpus size
ZONED_DIGITS = [1, 2, 3, 4, 5, 8, 9, 10, 11, 17, 18, 19, 20, 37]
DEC = [(2, 1), (2, 2), (3, 2), (4, 4), (5, 4), (5, 5), (15, 2), (16, 2), (17, 2), (18, 10)]
BIN = [(1, 2), (2, 2), (3, 2), (4, 2), (5, 4), (8, 4), (9, 4), (10, 8), (11, 8), (17, 8), (18, 8)]
EDITED = ["+9(8)", "9(8)+", "-9(8)", "Z(8)-", "+9(6)V99", "Z(6)VZZ-", "9(6).99-"]


def _specs() -> list[tuple[str, int, dict, int, int]]:
    """(type, length, options, digits, scale) of every field, in record order."""
    out = []
    for signed in (False, True):
        for d in ZONED_DIGITS:
            out.append(("zoned", d, {"zone": "ebcdic", "signed": signed}, d, 0))
        for d, s in DEC:
            out.append(("zoned", d + s, {"zone": "ebcdic", "signed": signed, "scale": s},
                        d + s, s))
    for signed in (False, True):
        for d, n in BIN:
            out.append(("binary", n, {"digits": d, "signed": signed}, d, 0))
        for d, s in DEC:
            if d + s <= 18:
                n = 2 if d + s <= 4 else 4 if d + s <= 9 else 8
                out.append(("binary", n, {"digits": d + s, "scale": s, "signed": signed},
                            d + s, s))
    for signed in (False, True):
        for d in ZONED_DIGITS:
            out.append(("packed", d // 2 + 1, {"signed": signed}, d // 2 * 2 + 1, 0))
        for d, s in DEC:
            n = (d + s) // 2 + 1
            out.append(("packed", n, {"signed": signed, "scale": s}, 2 * n - 1, s))
    for pos in ("leading", "trailing"):
        out.append(("zoned", 10, {"zone": "ebcdic", "sign_separate": True, "sign_position": pos},
                    9, 0))
        out.append(("zoned", 7, {"zone": "ebcdic", "sign_position": pos, "scale": 7}, 7, 7))
    out += [("float", 4, {"format": "ieee"}, 0, 0), ("float", 8, {"format": "ieee"}, 0, 0),
            ("float", 4, {}, 0, 0), ("float", 8, {}, 0, 0)]
    for s in (8, -3):
        out.append(("packed", 3, {"scale": s}, 5, s))
        out.append(("zoned", 5, {"zone": "ebcdic", "scale": s}, 5, s))
        for d, n in ((1, 2), (3, 2), (5, 4), (10, 8)):
            out.append(("binary", n, {"digits": d, "scale": s if s < 0 else d + 3}, d, 0))
    for pic in EDITED:
        out.append(("edited", len(parse_picture(pic)[0]), {"picture": pic, "encoding": "cp037"},
                    0, 0))
    while len(out) < 195:  # common COMP / COMP-3 fields to 195
        out.append(("packed", 5, {"scale": 2}, 9, 2))
        out.append(("binary", 4, {"digits": 9}, 9, 0))
    return out[:195]


def plan() -> DecodePlan:
    fields, off = [], 0
    for i, (t, n, opts, _d, _s) in enumerate(_specs()):
        fields.append(FieldSpec(f"f{i:03d}", offset=off, length=n, type=t, **opts))
        off += n
    rl = max(1_500, off)
    return DecodePlan(record_length=rl, fields=fields)


def _ebc(s: str) -> bytes:
    return s.encode("cp037")


def _value(rnd: random.Random, f: FieldSpec) -> bytes:
    """Valid bytes of field f (random value)."""
    t, n, o = f.type, f.length, f.options
    if t == "float":
        x = rnd.uniform(-1e6, 1e6)
        if o["format"] == "ieee":
            return struct.pack(">f" if n == 4 else ">d", x)
        frac_bits = 8 * n - 8
        m, e = abs(x), 64
        while m >= 1:
            m, e = m / 16, e + 1
        frac = int(m * (1 << frac_bits))
        return (((0x80 if x < 0 else 0) | e) << frac_bits | frac).to_bytes(n, "big")
    if t == "edited":
        pic = o["picture"]
        v = rnd.randrange(10**8)
        neg = rnd.random() < 0.5
        digits = f"{v:08d}"
        text = {"+9(8)": ("-" if neg else "+") + digits, "9(8)+": digits + ("-" if neg else "+"),
                "-9(8)": ("-" if neg else " ") + digits,
                "Z(8)-": digits.lstrip("0").rjust(8) + ("-" if neg else " "),
                "+9(6)V99": ("-" if neg else "+") + digits,
                "Z(6)VZZ-": digits.lstrip("0").rjust(8) + ("-" if neg else " "),
                "9(6).99-": digits[:6] + "." + digits[6:] + ("-" if neg else " ")}[pic]
        return _ebc(text)
    d = f.precision
    signed = o.get("signed", True)
    v = rnd.randrange(10 ** min(d, 18)) * (-1 if signed and rnd.random() < 0.5 else 1)
    if t == "binary":
        return v.to_bytes(n, "big", signed=True)
    if t == "packed":
        ds = f"{abs(v):0{2 * n - 1}d}"
        nib = [int(c) for c in ds] + [0xD if v < 0 else 0xC]
        return bytes(nib[i] << 4 | nib[i + 1] for i in range(0, len(nib), 2))
    sep = o["sign_separate"]
    ds = f"{abs(v):0{d}d}"
    if sep:
        sign = "-" if v < 0 else "+"
        return _ebc(sign + ds if o["sign_position"] == "leading" else ds + sign)
    raw = bytearray(_ebc(ds))
    at = 0 if o["sign_position"] == "leading" else n - 1
    if signed:
        raw[at] = (0xD0 if v < 0 else 0xC0) | (raw[at] & 0x0F)
    return bytes(raw)


def corpus(p: DecodePlan, records: int) -> bytes:
    rnd = random.Random(SEED)
    rows = []
    for _ in range(min(DISTINCT, records)):
        rec = bytearray(b"\x40" * p.record_length)
        for f in p.fields:
            rec[f.offset:f.offset + f.length] = _value(rnd, f)
        rows.append(bytes(rec))
    base = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), -1)
    reps = -(-records // len(rows))
    return np.tile(base, (reps, 1))[:records].tobytes()


def _best(fn, repeats: int) -> tuple[float, float]:
    """Best wall time and best CPU time of the process (the machine may be shared: CPU time
    is the better figure of the work itself)."""
    best = cpu = float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        best = min(best, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return best, cpu


def run(quick: bool = False, records: int | None = None, repeats: int | None = None) -> list[dict]:
    records = records or (5_000 if quick else 100_000)
    repeats = repeats or (1 if quick else 7)
    twin_records = 200 if quick else 2_000
    p = plan()
    buf = corpus(p, records)
    rl = p.record_length
    starts = np.arange(records, dtype=np.int64) * rl
    res = decode_block(buf, starts, p)
    assert len(res.errors) == 0, list(res.errors)[:3]
    # as the pipeline decodes: blocks of DEFAULT_BLOCK_SIZE bytes (8 MiB), one call each
    per = max(1, DEFAULT_BLOCK_SIZE // rl)
    blocks = [(memoryview(buf)[i * rl:(i + per) * rl], np.arange(min(per, records - i),
                                                              dtype=np.int64) * rl)
              for i in range(0, records, per)]

    def all_blocks():
        for b, st in blocks:
            decode_block(b, st, p)

    t_kernel, c_kernel = _best(all_blocks, repeats)
    t_one, _ = _best(lambda: decode_block(buf, starts, p), max(1, repeats // 2))
    tw = starts[:twin_records]
    t0 = time.perf_counter()
    twin = _decode_py.decode_block(buf, tw, p)
    t_twin = time.perf_counter() - t0
    assert twin.batch.equals(res.batch.slice(0, twin_records)) and len(twin.errors) == 0
    mb = records * rl / 1e6
    return [{
        "corpus": f"cobol numeric {len(p.fields)} fields x {rl} B",
        "records": records,
        "kernel MB/s": round(mb / t_kernel, 1),
        "kernel MB/s (cpu time)": round(mb / c_kernel, 1),
        "kernel rec/s": round(records / t_kernel),
        "block records": per,
        "one-call MB/s": round(mb / t_one, 1),
        "twin MB/s": round(twin_records * rl / 1e6 / t_twin, 2),
        "twin records": twin_records,
        "speed-up": round((mb / t_kernel) / (twin_records * rl / 1e6 / t_twin)),
    }]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="COBOL numeric records (type-variety-like)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--records", type=int)
    args = ap.parse_args(argv)
    for row in run(args.quick, args.records):
        print("  ".join(f"{k}={v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
