"""Benchmark of the mixed single/double-byte path of ``ikou.kernels.decode_block``
(``k_mixed`` in ``kernels/_decode.pyx``) for every shift-coded mainframe encoding.

A fixed-seed resident-like corpus per encoding (no personal data): 200-byte records with a
mixed name field (single-byte letters, then kanji between the encoding's shift codes, padded
with full-width and single-byte spaces), a double-byte-only kana field (PIC N), a mixed address,
EBCDIC digits and a date. Measured in the same run, one thread:

* the compiled kernel (MB/s, records/s, best of several repeats);
* the best pure-Python decoder we could write for the same job — single-byte runs through a
  C ``codecs.charmap_decode`` table, double-byte runs through one ``dict`` look-up a code,
  shift codes found with ``bytes.find`` — checked equal to the kernel's output;
* the kernel on two threads (the GIL is released in the decode loop).

    python -m benchmarks.bench_encodings [--records N]
"""

from __future__ import annotations

import argparse
import codecs
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa

from ikou.kernels import KERNEL_IMPL, DecodePlan, FieldSpec, decode_block, get_encoding

SEED = 20260401
ENCODINGS = ("ibm930", "ibm939", "ibm1390", "ibm1399", "jef", "keis83", "keis78", "jips-j",
             "jips-e")
RL = 200
FIELDS = [("name", 0, 40, "text"), ("kana", 40, 30, "dbcs"), ("addr", 70, 100, "text"),
          ("atena", 170, 10, "digits"), ("birth", 180, 8, "date"), ("pad", 188, 12, "filler")]


def corpus(name: str, n: int) -> bytes:
    enc = get_encoding(name)
    rng = np.random.default_rng(SEED)
    kanji = np.array([c for c, s in enc.double.items() if "\u4e00" <= s <= "\u9fff"])
    kana = np.array([c for c, s in enc.double.items() if "\u30a1" <= s <= "\u30f6"])
    single = {s: b for b, s in enumerate(enc.single) if s is not None}
    sp = bytes([single[" "]])
    fsp = (enc.spaces[0]).to_bytes(2, "big")
    si, so = enc.shift_in[0], enc.shift_out[0]
    letters = bytes(single[c] for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    digit = [single[str(d)] for d in range(10)]

    def dbl(codes):
        return b"".join(int(c).to_bytes(2, "big") for c in codes)

    recs = []
    for _ in range(n):
        k = int(rng.integers(2, 8))
        name = (letters[:int(rng.integers(0, 3))] + si + dbl(rng.choice(kanji, k)) + fsp + so)
        name = (name + sp * 40)[:40]
        kn = (dbl(rng.choice(kana, int(rng.integers(3, 12)))) + fsp * 15)[:30]
        a = int(rng.integers(8, 30))
        addr = si + dbl(rng.choice(kanji, a)) + so + bytes(digit[d] for d in rng.integers(0, 10, 4))
        addr = (addr + sp * 100)[:100]
        num = bytes(digit[d] for d in rng.integers(0, 10, 10))
        birth = bytes(digit[int(c)] for c in f"19{int(rng.integers(30, 99))}0{int(rng.integers(1, 9))}1{int(rng.integers(0, 9))}")
        recs.append(name + kn + addr + num + birth + sp * 12)
    return b"".join(recs)


def plan(name: str) -> DecodePlan:
    return DecodePlan(RL, [FieldSpec(n, offset=o, length=ln, type=t, encoding=name)
                           if t != "filler" else FieldSpec(n, offset=o, length=ln, type=t)
                           for n, o, ln, t in FIELDS])


class PurePython:
    """The best pure-Python decoder for one encoding (no validation beyond the kernel's tables)."""

    def __init__(self, name: str):
        enc = get_encoding(name)
        self.charmap = "".join(s if s is not None and len(s) == 1 else "\ufffe"
                               for s in enc.single)
        self.table = self.charmap  # decoding table: U+FFFE marks an undefined byte
        self.double = {c.to_bytes(2, "big"): s for c, s in enc.double.items()}
        self.si, self.so = enc.shift_in[0], enc.shift_out[0]
        self.digits = bytes.maketrans(bytes(enc.single.index(str(d)) for d in range(10)),
                                      b"0123456789")

    def mixed(self, b: bytes, double: bool = False) -> str:
        out, i, n, d = [], 0, len(b), self.double
        while i < n:
            if double:
                j = b.find(self.so, i)
                j = n if j < 0 else j
                out.extend(d[b[k:k + 2]] for k in range(i, j - 1, 2))
                i = j + len(self.so)
                double = False
            else:
                j = b.find(self.si, i)
                j = n if j < 0 else j
                out.append(codecs.charmap_decode(b[i:j], "strict", self.table)[0])
                i = j + len(self.si)
                double = True
        return "".join(out).rstrip(" \u3000")

    def dbcs(self, b: bytes) -> str:
        d = self.double
        return "".join([d[b[k:k + 2]] for k in range(0, len(b), 2)]).rstrip("\u3000")

    def decode(self, buf: bytes) -> pa.RecordBatch:
        n = len(buf) // RL
        recs = [buf[k * RL:(k + 1) * RL] for k in range(n)]
        names = [self.mixed(r[0:40]) for r in recs]
        kana = [self.dbcs(r[40:70]) for r in recs]
        addr = [self.mixed(r[70:170]) for r in recs]
        atena = [r[170:180].translate(self.digits).decode("ascii") for r in recs]
        birth = np.array([f"{x[:4]}-{x[4:6]}-{x[6:]}" for x in
                          (r[180:188].translate(self.digits).decode("ascii") for r in recs)],
                         dtype="datetime64[D]")
        return pa.RecordBatch.from_arrays(
            [pa.array(names), pa.array(kana), pa.array(addr), pa.array(atena),
             pa.array(birth).cast(pa.date32())], names=["name", "kana", "addr", "atena", "birth"])


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _time(buf, starts, p, pure, repeats):
    t_kernel = best(lambda: decode_block(buf, starts, p), repeats)
    t_pure = best(lambda: pure.decode(buf), 1)
    half = len(starts) // 2
    with ThreadPoolExecutor(2) as ex:
        def two():
            list(ex.map(lambda s: decode_block(buf, s, p), [starts[:half], starts[half:]]))
        t_two = best(two, repeats)
    return t_kernel, t_pure, t_two


def run(quick: bool = False, records: int | None = None, repeats: int | None = None) -> list[dict]:
    """One row per encoding (``python -m benchmarks`` calls ``run(quick)``)."""
    records = records or (2_000 if quick else 100_000)
    repeats = repeats or (1 if quick else 5)
    rows = []
    for name in ENCODINGS:
        buf = corpus(name, records)
        p = plan(name)
        starts = np.arange(records, dtype=np.int64) * RL
        res = decode_block(buf, starts, p)
        assert len(res.errors) == 0, (name, list(res.errors)[:3])
        pure = PurePython(name)
        ref = pure.decode(buf)
        assert ref.equals(res.batch), name  # a fast wrong answer is not a result
        t_kernel, t_pure, t_two = _time(buf, starts, p, pure, repeats)
        mb = len(buf) / 1e6
        rows.append({"encoding": name, "MB": round(mb, 1),
                     "kernel_MB_s": round(mb / t_kernel), "kernel_rec_s": round(records / t_kernel),
                     "two_threads_MB_s": round(mb / t_two),
                     "pure_python_MB_s": round(mb / t_pure, 1),
                     "speedup": round(t_pure / t_kernel, 1)})
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="mixed single/double-byte kernel per encoding")
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    print(f"kernel: {KERNEL_IMPL}; {args.records} records of {RL} bytes per encoding; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'encoding':10} {'MB/s':>7} {'rec/s':>10} {'2 thr MB/s':>10} {'pure MB/s':>9} {'x':>6}")
    for r in run(False, args.records, args.repeats):
        print(f"{r['encoding']:10} {r['kernel_MB_s']:>7} {r['kernel_rec_s']:>10} "
              f"{r['two_threads_MB_s']:>10} {r['pure_python_MB_s']:>9} {r['speedup']:>6}")
    print(f"load average {os.getloadavg()[0]:.2f} at the end (a figure measured while other work "
          "shares the cores is low; the ratio, measured in the same run, is what compares)")


if __name__ == "__main__":
    main()
