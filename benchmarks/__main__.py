"""Run every ``benchmarks/bench_*.py`` module, print the figures, optionally write JSON.

One report: a table per module (each module has its own columns).

    python -m benchmarks                 # full run
    python -m benchmarks --quick         # tiny smoke run (seconds)
    python -m benchmarks --json out.json # also write the figures (compare between commits)
    python -m benchmarks --only decode   # only bench_decode.py
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import platform
import sys
import time

import benchmarks


def discover() -> list[str]:
    """Names of the bench_* modules, sorted (so the order of the table is stable)."""
    return sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules(benchmarks.__path__)
                  if m.name.startswith("bench_"))


def table(rows: list[dict]) -> str:
    """One text table over the union of the rows' keys (first-seen order)."""
    cols: list[str] = []
    for r in rows:
        cols.extend(k for k in r if k not in cols)
    cells = [[_fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny inputs, one repeat (smoke run)")
    p.add_argument("--json", metavar="PATH", help="write the figures as JSON to PATH")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these (e.g. decode)")
    args = p.parse_args(argv)
    names = discover()
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            p.error(f"unknown benchmark(s) {', '.join(unknown)} (available: {', '.join(names)})")
        names = [n for n in names if n in args.only]
    rows: list[dict] = []
    timings = {}
    for name in names:
        t0 = time.perf_counter()
        module = importlib.import_module(f"benchmarks.bench_{name}")
        result = module.run(args.quick)
        timings[name] = round(time.perf_counter() - t0, 2)
        for r in result:
            rows.append({**r, "bench": name})
        print(f"# bench_{name}: {len(result)} rows in {timings[name]} s", file=sys.stderr)
    for name in names:
        mine = [r for r in rows if r["bench"] == name]
        if mine:
            print(f"\n== bench_{name} ==")
            print(table([{k: v for k, v in r.items() if k != "bench"} for r in mine]))
    if args.json:
        doc = {
            "quick": args.quick,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "seconds": timings,
            "rows": rows,
        }
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2, ensure_ascii=False)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
