"""Variable-length records: a VB file of resident records against the same records fixed-length.

The generator's 住民記録 export (fixed seed) and its VB copy (``ikou.pipeline.synth.records``,
trailing spaces trimmed) are decoded end to end with what ``ikou decode`` runs (plan, decode
the blocks on one thread, merge the outputs: per core); the index pass alone is timed over the
VB file in memory; and a pure-Python reader (RDWs with ``int.from_bytes``, fields sliced and
decoded with ``bytes.decode("cp932")``) is timed on the same VB file in the same run.

    python -m benchmarks.bench_records [--residents N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time

__all__ = ["run"]


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _decoder(layout, gaiji, tmp):
    from ikou.transforms.decode.blocks import BlockDecoder

    dec = BlockDecoder(layout, gaiji, tmp)
    dec.quarantine_parts = dec.row_parts = False
    dec.gaiji_counts = False
    return dec


def _decode_file(path, layout, gaiji, tmp, dec=None) -> int:
    """What ``ikou decode`` runs on one thread (a new decoder: plans compiled, as a run does;
    ``dec``: a decoder whose plans are compiled already)."""
    from ikou.transforms.decode.blocks import decode_blocks, plan_blocks
    from ikou.transforms.decode.outputs import finalize_results

    dec = dec or _decoder(layout, gaiji, tmp)
    blocks = plan_blocks(0, path, os.path.getsize(path), layout)
    results, _ = decode_blocks(dec, blocks, workers=1, digest=False)
    summary = finalize_results(layout, results, None, tmp, b"\0" * 16,
                               outputs={"data": os.path.join(tmp, "o.arrow")},
                               quarantine_path=os.path.join(tmp, "q.avro"))
    return summary["records"]


def python_reader(data: bytes, layout) -> int:
    """The best plain-Python V reader and decoder: RDW by RDW, each data field sliced and
    decoded (text: cp932, trailing spaces trimmed; digits kept as text; int parsed)."""
    kinds = {k.code: [(f.name, f.offset, f.end, f.type) for f in k.fields
                      if f.type != "filler"] for k in layout.kinds.values()}
    off, ln = layout.record_type
    rows = 0
    pos, n = 0, len(data)
    out = []
    while pos < n:
        length = int.from_bytes(data[pos:pos + 2], "big")
        rec = data[pos + 4:pos + length]
        pos += length
        fields = kinds.get(rec[off:off + ln])
        if fields is None:
            continue
        row = {}
        size = len(rec)
        for name, a, b, typ in fields:
            if a >= size:
                row[name] = None
                continue
            raw = rec[a:b]
            if typ == "text":
                row[name] = raw.decode("cp932", "replace").rstrip(" \u3000")
            elif typ == "int":
                s = raw.strip()
                row[name] = int(s) if s else None
            else:
                row[name] = raw.decode("ascii", "replace")
        out.append(row)
        rows += 1
        if len(out) >= 65536:
            out.clear()
    return rows


def run(quick: bool = False, residents: int | None = None) -> list[dict]:
    from ikou.kernels import scan_records
    from ikou.pipeline.config.gaiji import load_gaiji
    from ikou.pipeline.config.layout import load_layout
    from ikou.pipeline.synth.municipality import generate_municipality
    from ikou.pipeline.synth.records import to_variable, variable_layout_text

    residents = residents or (2000 if quick else 60000)
    repeats = 1 if quick else 3
    tmp = tempfile.mkdtemp(prefix="ikou-bench-records-")
    try:
        gen = generate_municipality(tmp, residents, 20260503, write_expected=False)
        fixed = load_layout(gen.layout)
        gaiji = load_gaiji(gen.gaiji)
        raw = open(gen.export, "rb").read()
        vb = to_variable(raw, fixed, "VB", trim=True)
        vb_path = os.path.join(tmp, "juki.vb")
        open(vb_path, "wb").write(vb)
        vb_layout_path = os.path.join(tmp, "juki-vb.layout.yaml")
        with open(vb_layout_path, "w", encoding="utf-8") as f:
            f.write(variable_layout_text(open(gen.layout, encoding="utf-8").read(), "VB"))
        vb_layout = load_layout(vb_layout_path)
        work = os.path.join(tmp, "work")
        os.makedirs(work)
        records = _decode_file(vb_path, vb_layout, gaiji, work)
        fmt = vb_layout.framing.kernel_format()
        rows = []
        for name, path, layout, size in (("decode F (fixed)", gen.export, fixed, len(raw)),
                                         ("decode VB", vb_path, vb_layout, len(vb))):
            s = _best(lambda p=path, lay=layout: _decode_file(p, lay, gaiji, work), repeats)
            rows.append({"case": name, "bytes": size, "records": records, "seconds": s,
                         "MB/s": size / s / 1e6, "records/s": records / s})
        for name, path, layout, size in (("warm F (plans compiled)", gen.export, fixed,
                                          len(raw)),
                                         ("warm VB (plans compiled)", vb_path, vb_layout,
                                          len(vb))):
            dec = _decoder(layout, gaiji, work)
            _decode_file(path, layout, gaiji, work, dec)
            s = _best(lambda p=path, lay=layout, d=dec: _decode_file(p, lay, gaiji, work, d),
                      repeats)
            rows.append({"case": name, "bytes": size, "records": records, "seconds": s,
                         "MB/s": size / s / 1e6, "records/s": records / s})
        s = _best(lambda: scan_records(vb, 0, len(vb), fmt), repeats)
        rows.append({"case": "index pass VB (in memory)", "bytes": len(vb), "records": records,
                     "seconds": s, "MB/s": len(vb) / s / 1e6, "records/s": records / s})
        s = _best(lambda: python_reader(_strip_bdws(vb), vb_layout), 1)
        rows.append({"case": "pure Python V reader + decoder", "bytes": len(vb),
                     "records": records, "seconds": s, "MB/s": len(vb) / s / 1e6,
                     "records/s": records / s})
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        rows.append({"case": "VB / F time ratio (end to end)",
                     "seconds": rows[1]["seconds"] / rows[0]["seconds"], "load": load})
        rows.append({"case": "VB / F time ratio (warm)",
                     "seconds": rows[3]["seconds"] / rows[2]["seconds"], "load": load})
        return rows
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _strip_bdws(vb: bytes) -> bytes:
    """The V records of a VB file (its BDWs dropped), for the pure-Python reader."""
    out, pos = [], 0
    while pos < len(vb):
        end = pos + int.from_bytes(vb[pos:pos + 2], "big")
        out.append(vb[pos + 4:end])
        pos = end
    return b"".join(out)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--residents", type=int, default=None)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    rows = run(args.quick, args.residents)
    from benchmarks.__main__ import table

    print(table(rows))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
