"""Benchmark of the whole migration job as a user runs it: ``ikou run job.yaml`` as a command
(start-up included), every source decoded and mapped per block on Beam, reconciliation, record
matching, the GX gates and the atomic publish.

The command is timed from outside (wall clock and peak RSS of the process and its workers); its
``manifest.json`` gives every stage's wall time (startup, prepare, hash_inputs, pipeline, check,
matching, gates, publish), measured back to back so that they add up to the run's total, and the
pipeline's parts. The rest of the command's wall time (interpreter exit) is reported as ``exit``,
so the rows add up to what the user waited. Baseline, measured in the same run: the decoding
kernel alone over the same export bytes in process (``kernel decode, in process``): how far the
whole job is from the raw speed of its hot core.

The municipality is generated with a fixed seed (every source: 住民記録, 個人住民税, 国保 世帯/被保険者,
住登外; 5 % of tax / 国保 records with a missing or mistyped 宛名番号, so matching has work) into a
temporary folder and never kept. A run whose gates do not pass or whose 住民記録 rows are not the
residents generated raises instead of reporting (a fast wrong answer is not a result).

    python -m benchmarks.bench_pipeline                     # 1,000,000 residents
    python -m benchmarks.bench_pipeline --quick             # 20,000 residents
    python -m benchmarks.bench_pipeline --data DIR          # reuse a set made by `ikou generate`
    python -m benchmarks.bench_pipeline --data DIR --workers 1,2   # in process and 2 processes
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

from benchmarks import command_env

SEED = 20261127
IKOU = os.path.join(os.path.dirname(sys.executable), "ikou")


def _impl(workers: int) -> str:
    return ("FnApiRunner in process" if workers <= 1
            else f"FnApiRunner, {workers} worker processes")


def _rss_probe(cmd: list[str]) -> tuple[float, float, int, str]:
    """Run ``cmd``; returns (wall s, peak RSS MB of the process tree, return code, stderr)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=command_env())
    peak = 0
    while proc.poll() is None:  # sum the RSS of the command and all its descendants
        try:
            table = subprocess.run(["ps", "-e", "-o", "pid=,ppid=,rss="], capture_output=True,
                                   text=True).stdout.split()
            rows = [(int(table[i]), int(table[i + 1]), int(table[i + 2]))
                    for i in range(0, len(table) - 2, 3)]
            tree, total, grew = {proc.pid}, 0, True
            while grew:  # workers run under a shell: walk the whole process tree
                grew = False
                for pid, ppid, _ in rows:
                    if ppid in tree and pid not in tree:
                        tree.add(pid)
                        grew = True
            total = sum(rss for pid, _, rss in rows if pid in tree)
        except (OSError, ValueError):
            total = 0
        peak = max(peak, total)
        time.sleep(0.2)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    return wall, max(peak / 1024, 0.0), proc.returncode, err + out


def kernel_baseline(data: Path) -> float:
    """Seconds for the decoding kernel alone over every export of the job, in process."""
    from ikou.pipeline.config.gaiji import load_gaiji
    from ikou.pipeline.config.job import load_job
    from ikou.transforms.decode.blocks import BlockDecoder, plan_blocks

    job = load_job(data / "job.yaml")
    staging = tempfile.mkdtemp(prefix="ikou-bench-kernel-")
    try:
        t0 = time.perf_counter()
        for source in job.sources.values():
            dec = BlockDecoder(source.layout, job.gaiji or load_gaiji(None), staging, False)
            for path in source.inputs:
                for b in plan_blocks(0, str(path), path.stat().st_size, source.layout):
                    dec.decode(b)
        return time.perf_counter() - t0
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def measure(data: Path, residents: int, workers: int = 1) -> list[dict]:
    case = f"{residents:,} residents"
    impl = _impl(workers)
    beam = ([] if workers <= 1 else ["--direct_running_mode=multi_processing",
                                     f"--direct_num_workers={workers}"])
    with tempfile.TemporaryDirectory(prefix="ikou-bench-out-") as out:
        wall, peak_mb, rc, err = _rss_probe([IKOU, "run", str(data / "job.yaml"), "--out", out,
                                             *beam])
        if rc != 0:
            raise RuntimeError(f"ikou run failed (exit {rc}): {err[-2000:]}")
        m = json.loads((Path(out) / "current" / "manifest.json").read_text(encoding="utf-8"))
    if not m["gates"]["passed"]:
        raise RuntimeError("gates failed: not a benchmark result")
    juki = next(t for t in m["targets"] if t["name"] == "juki")
    if juki["rows"] + juki["quarantined"] != residents:
        raise RuntimeError(f"juki rows {juki['rows']} != residents {residents}")
    st = m["stages"]
    rows = []
    for name, s in st["stages"].items():
        rows.append({"benchmark": "job", "case": f"{case}: {name}", "impl": impl,
                     "value": s["seconds"], "unit": f"s ({100 * s['seconds'] / wall:.1f} %)"})
    exit_s = max(0.0, wall - st["total"])
    rows.append({"benchmark": "job", "case": f"{case}: exit", "impl": impl,
                 "value": round(exit_s, 3), "unit": f"s ({100 * exit_s / wall:.1f} %)"})
    for name, v in st["pipeline_parts"].items():
        rows.append({"benchmark": "job", "case": f"{case}:   pipeline part {name}", "impl": impl,
                     "value": v, "unit": "s"})
    added = sum(s["seconds"] for s in st["stages"].values()) + exit_s
    rows += [
        {"benchmark": "job", "case": f"{case}: command wall (stages + exit = {added:.2f} s)",
         "impl": impl, "value": round(wall, 3), "unit": "s"},
        {"benchmark": "job", "case": f"{case}: peak RSS (command and workers)", "impl": impl,
         "value": round(peak_mb), "unit": "MB"},
        {"benchmark": "job", "case": f"{case}: whole command", "impl": impl,
         "value": round(m["records"] / wall), "unit": "records/s"},
        {"benchmark": "job", "case": f"{case}: records / standard rows", "impl": impl,
         "value": m["records"], "unit": f"records ({m['rows_written']:,} rows)"},
    ]
    return rows


def run(quick: bool = False, data: str | None = None, workers=(1,),
        baseline: bool = True) -> list[dict]:
    residents = 20_000 if quick else 1_000_000
    tmp = None
    if data is not None:
        folder = Path(data)
        if (folder / "bench.json").exists():
            residents = json.loads((folder / "bench.json").read_text())["residents"]
        else:
            residents = sum(1 for _ in open(folder / "juki.dat", "rb")) - 2  # header, trailer
    else:
        from ikou.pipeline.config.job import write_demo_job
        from ikou.pipeline.synth.municipality import ALL_SOURCES, generate_municipality

        folder = tmp = Path(tempfile.mkdtemp(prefix="ikou-bench-town-"))
        gen = generate_municipality(tmp, residents, SEED, sources=ALL_SOURCES,
                                    write_expected=False, key_error_share=0.05)
        write_demo_job(tmp, gen.sources)
    try:
        rows = []
        walls = {}
        for w in workers:
            got = measure(folder, residents, w)
            walls[w] = next(r["value"] for r in got if "command wall" in r["case"])
            rows += got
        if baseline:
            k = kernel_baseline(folder)
            rows.append({"benchmark": "job", "case": f"{residents:,} residents: baseline",
                         "impl": "kernel decode, in process", "value": round(k, 3),
                         "unit": f"s (whole command {walls[workers[0]] / k:.1f}x)"})
        if len(walls) > 1:
            w0, *rest = workers
            for w in rest:
                rows.append({"benchmark": "job",
                             "case": f"{residents:,} residents: {w} workers vs {w0}",
                             "impl": _impl(w), "value": round(walls[w0] / walls[w], 2),
                             "unit": "x faster"})
        return rows
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--data", help="a set made by `ikou generate` (with job.yaml) to reuse")
    ap.add_argument("--workers", default="1",
                    help="comma-separated worker counts to run (1: in process)")
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--json", help="write the rows as JSON")
    args = ap.parse_args(argv)
    workers = tuple(int(w) for w in args.workers.split(","))
    rows = run(args.quick, args.data, workers, not args.no_baseline)
    for r in rows:
        print(f"{r['case']:<64} {r['value']:>12} {r['unit']}  [{r['impl']}]")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
