"""COBOL records from a copybook: Cobrix's type-variety record replicated to many records.

Cobrix's own test file ``INTEGR.TYPES.NOV28.DATA.dat`` (tests/data/cobrix/type_variety: 100
records of 1,493 bytes, 195 fields: text, zoned with overpunched and separate signs, binary,
packed, IEEE floats, P scaling, edited numbers) is repeated to ``--records`` records; its copybook
is imported by ``ikou layout import``'s converter. Measured in the same run:

* ``ikou decode`` end to end (a new process: start-up, reading, decoding on 2 threads, writing
  the Arrow file), MB/s of the machine and per core;
* the kernel alone on one thread (``decode_block`` over 8 MiB blocks already in memory), the
  per-core figure of the hot core;
* the best pure-Python decoder we could write for the same record (bytes.translate / int() for
  zoned, ``bytes.hex`` for packed, ``int.from_bytes``, ``struct``, CPython's ``cp037`` codec),
  on the first records, checked equal to the kernel's values;
* Cobrix's published single-executor figure for fixed records (6.3 MB/s, README
  "Performance Analysis", 2018), for scale.

    python -m benchmarks.bench_copybook [--records N] [--json PATH]
"""

from __future__ import annotations

import argparse
import codecs
import decimal
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["run"]

CASE = Path(__file__).resolve().parents[1] / "tests" / "data" / "cobrix" / "type_variety"
COBRIX_MB_S = 6.3  # Cobrix README, test 1: fixed length, 1 executor (1 core)
_EBC_DIGITS = bytes.maketrans(bytes(range(0xF0, 0xFA)), b"0123456789")


def _layout(tmp: Path) -> Path:
    from ikou.pipeline.config.copybook import CopybookOptions, copybook_layout, dump_layout

    book = CASE / "test6_copybook.cob"
    doc = copybook_layout(book, CopybookOptions(cobrix_binary=True, float_format="ieee"))
    path = tmp / "types.yaml"
    path.write_text(dump_layout(doc, book), encoding="utf-8")
    return path


def _py_field(f):
    """A pure-Python decoder of one field: bytes -> value (unscaled int for numbers)."""
    t, o, n = f.type, f.offset, f.length
    opts = f.options
    if t == "text":
        dec = codecs.getdecoder("cp037")
        return lambda r: dec(r[o:o + n])[0].rstrip(" ")
    if t == "binary":
        signed, order = opts.get("signed", True), opts.get("byte_order", "big")
        return lambda r: int.from_bytes(r[o:o + n], order, signed=signed)
    if t == "packed":
        def packed(r):
            h = r[o:o + n].hex()
            v = int(h[:-1])
            return -v if h[-1] == "d" else v
        return packed
    if t == "float":
        fmt = ">f" if n == 4 else ">d"
        return lambda r: struct.unpack_from(fmt, r, o)[0]
    if t == "zoned":
        lead = opts.get("sign_position") == "leading"
        sep = opts.get("sign_separate", False)

        def zoned(r):
            b = r[o:o + n]
            if sep:
                sign, b = (b[0], b[1:]) if lead else (b[-1], b[:-1])
                v = int(b.translate(_EBC_DIGITS))
                return -v if sign == 0x60 else v
            s = b[0] if lead else b[-1]
            digits = bytearray(b.translate(_EBC_DIGITS))
            digits[0 if lead else -1] = 0x30 + (s & 0x0F)
            v = int(digits)
            return -v if s >> 4 == 0xD else v
        return zoned
    if t == "edited":
        dec = codecs.getdecoder("cp037")

        def edited(r):
            s = dec(r[o:o + n])[0].strip()
            neg = s.endswith(("-", "CR", "DB")) or s.startswith("-")
            digits = "".join(c for c in s if c.isdigit())
            v = int(digits) if digits else 0
            return -v if neg else v
        return edited
    return lambda r: r[o:o + n]  # bytes


def _pure_python(layout, data: bytes, n: int):
    import pyarrow as pa

    kind = layout.kinds["data"]
    fields = [f for f in kind.fields if f.type != "filler"]
    decoders = [_py_field(f) for f in fields]
    rl = layout.record_length
    cols = [[] for _ in fields]
    for i in range(n):
        rec = data[i * rl:(i + 1) * rl]
        for col, d in zip(cols, decoders, strict=True):
            col.append(d(rec))
    out = []
    for f, col in zip(fields, cols, strict=True):  # into Arrow, as the kernel's output is
        if f.type in ("zoned", "packed", "edited") or (f.type == "binary" and (
                f.options.get("scale") or 0)):
            scale = f.options.get("scale") or 0
            if f.type == "edited":  # the scale of an edited number is in its picture
                from ikou.kernels._decode_common import parse_picture

                scale = parse_picture(f.options["picture"])[4]
            out.append(pa.array([decimal.Decimal(v).scaleb(-scale) for v in col]))
        elif f.type in ("binary",):
            out.append(pa.array(col, pa.int64()))
        else:
            out.append(pa.array(col))
    return fields, out


def _check(layout, data: bytes, fields, py_cols) -> int:
    """Fields on which the pure-Python decoder and the kernel disagree (first records)."""
    import numpy as np

    from ikou.kernels import decode_block

    plan = layout.plan("data")
    n = len(py_cols[0])
    res = decode_block(data[:n * layout.record_length],
                       np.arange(n, dtype=np.int64) * layout.record_length, plan)
    bad = 0
    for f, col in zip(fields, py_cols, strict=True):
        if f.type in ("bytes", "text"):
            continue
        kernel = res.batch.column(f.name).to_pylist()
        ours = col.to_pylist()
        if any(a is not None and float(a) != float(b) for a, b in zip(kernel, ours, strict=True)):
            bad += 1
    return bad


def run(quick: bool = False, records: int | None = None) -> list[dict]:
    import numpy as np

    from ikou.kernels import KERNEL_IMPL, decode_block
    from ikou.pipeline.config.layout import load_layout

    records = records or (20_000 if quick else 1_000_000)
    tmp = Path(tempfile.mkdtemp(prefix="ikou-bench-copybook-"))
    try:
        layout_path = _layout(tmp)
        layout = load_layout(layout_path)
        unit = (CASE / "INTEGR.TYPES.NOV28.DATA.dat").read_bytes()
        rl = layout.record_length
        assert len(unit) == 100 * rl
        data_path = tmp / "types.dat"
        reps, rest = divmod(records, 100)
        with open(data_path, "wb") as f:
            for _ in range(reps):
                f.write(unit)
            f.write(unit[:rest * rl])
        size = os.path.getsize(data_path)
        mb = size / 1e6
        rows = []

        # ikou decode, end to end (a new process)
        out = tmp / "types.arrow"
        cmd = [sys.executable, "-m", "ikou.pipeline.cli", "decode", str(data_path),
               "--layout", str(layout_path), "--out", str(out)]
        best = float("inf")
        for _ in range(1 if quick else 2):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            best = min(best, time.perf_counter() - t0)
            out.unlink()
        cores = min(2, os.cpu_count() or 1)
        rows.append({"what": "ikou decode, end to end", "records": records, "MB": mb,
                     "seconds": best, "MB/s": mb / best, "MB/s per core": mb / best / cores,
                     "records/s per core": records / best / cores,
                     "x Cobrix per core": mb / best / cores / COBRIX_MB_S})

        # the kernel alone, one thread
        plan = layout.plan("data")
        data = data_path.read_bytes()
        per_block = max(1, (8 << 20) // rl)
        starts = np.arange(per_block, dtype=np.int64) * rl
        best = float("inf")
        for _ in range(1 if quick else 3):
            t0 = time.perf_counter()
            for first in range(0, records, per_block):
                n = min(per_block, records - first)
                decode_block(memoryview(data)[first * rl:(first + n) * rl], starts[:n], plan)
            best = min(best, time.perf_counter() - t0)
        rows.append({"what": f"kernel ({KERNEL_IMPL}), one thread", "records": records, "MB": mb,
                     "seconds": best, "MB/s per core": mb / best,
                     "records/s per core": records / best,
                     "x Cobrix per core": mb / best / COBRIX_MB_S})
        kernel_mb_s = mb / best

        # the best pure-Python decoder, on the first records
        n_py = min(records, 2_000 if quick else 20_000)
        t0 = time.perf_counter()
        fields, cols = _pure_python(layout, data, n_py)
        py = time.perf_counter() - t0
        py_mb = n_py * rl / 1e6
        rows.append({"what": "pure Python, one thread", "records": n_py, "MB": py_mb,
                     "seconds": py, "MB/s per core": py_mb / py, "records/s per core": n_py / py,
                     "x Cobrix per core": py_mb / py / COBRIX_MB_S,
                     "fields differing from the kernel": _check(layout, data, fields, cols)})
        rows.append({"what": "kernel / pure Python", "MB/s per core": kernel_mb_s / (py_mb / py)})
        return rows
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", type=int, default=None)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    rows = run(args.quick, args.records)
    from benchmarks.__main__ import table

    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
