"""Peak memory of a run over one large file: ``ikou run --layout`` (decode, parts, merge,
reconcile, publish; the in-process FnApiRunner) on a 住民記録 export of N records, measured as
the run process's peak RSS (``wait4``'s ``ru_maxrss``: the command runs in a process of its own).

The file is made from a generated town (seed 11, 2,000 residents): its data records repeated
to N, then a trailer with the count N, so the run reconciles. The result must be the N rows
published (checked from the manifest) — a fast wrong answer is not a result.

    python -m benchmarks.bench_memory                  # 500,000 and 5,000,000 records
    python -m benchmarks.bench_memory --records 200000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_RECORDS = (500_000, 5_000_000)
RECORD = 322  # 320 bytes + CRLF


def make_file(town: Path, records: int, path: Path) -> int:
    data = (town / "juki.dat").read_bytes()
    recs = [data[i:i + RECORD] for i in range(0, len(data), RECORD)]
    header, body, trailer = recs[0], recs[1:-1], recs[-1]
    chunk = b"".join(body)
    with open(path, "wb") as f:
        f.write(header)
        full, rest = divmod(records, len(body))
        for _ in range(full):
            f.write(chunk)
        f.write(b"".join(body[:rest]))
        f.write(trailer[:1] + b"%08d" % records + trailer[9:])
    return path.stat().st_size


def measure(work: Path, records: int) -> dict:
    town = work / "town"
    if not town.exists():
        subprocess.run([sys.executable, "-m", "ikou.pipeline.cli", "generate", "--residents",
                        "2000", "--seed", "11", "--sources", "juki", "--out", str(town)],
                       check=True, stdout=subprocess.DEVNULL)
    src = work / f"juki-{records}.dat"
    size = make_file(town, records, src)
    out = work / f"out-{records}"
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "ikou.pipeline.cli", "run", "--layout",
                             str(town / "juki.layout.yaml"), "--gaiji", str(town / "gaiji.csv"),
                             "--out", str(out), str(src)], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"the run failed ({status})")
    manifest = json.loads((out / "current" / "manifest.json").read_text(encoding="utf-8"))
    rows = sum(o["rows"] for o in manifest["outputs"] if o["name"] == "juki.arrow")
    if rows != records:
        raise RuntimeError(f"{rows} rows published, expected {records}")
    src.unlink()
    shutil.rmtree(out)
    return {"benchmark": "memory", "records": records, "file_MB": round(size / 1e6),
            "seconds": round(seconds, 1), "peak_rss_MB": round(usage.ru_maxrss / 1024),
            "records_per_s": round(records / seconds)}


def run(quick: bool = False, records=None) -> list[dict]:
    sizes = records or ((20_000,) if quick else DEFAULT_RECORDS)
    work = Path(tempfile.mkdtemp(prefix="ikou-bench-memory-"))
    try:
        return [measure(work, n) for n in sizes]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_memory",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, action="append", help="records (repeatable)")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    for row in run(args.quick, args.records):
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
