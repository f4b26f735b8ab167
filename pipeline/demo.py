"""``ikou demo``: generate a synthetic municipality, migrate it, print a short summary.

The summary shows counts, reasons, throughput and where the outputs are: never
a decoded value.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

__all__ = ["format_summary", "run_demo"]


def _rel(path: str) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def format_summary(summary) -> str:
    """Lines describing a finished run (``ikou.pipeline.run.Summary``)."""
    c = summary.counts
    m = summary.manifest
    kinds = ", ".join(f"{k or 'unknown'} {v:,}" for k, v in c["records_by_kind"].items())
    lines = [f"  records read    {c['records']:>10,}  ({kinds})"]
    for o in m["outputs"]:
        path = _rel(os.path.join(summary.out_dir, o["name"]))
        label = "quarantined" if o["kind"] is None else "rows written"
        lines.append(f"  {label:<15} {o['rows']:>10,}  -> {path}")
        if o["kind"] is None:
            for code, n in c["quarantined_by_code"].items():
                lines.append(f"    {code:<24}{n:>9,}")
    for ci in summary.checks["inputs"]:
        t = ci.get("trailer")
        if t is not None and "count" in t:
            lines.append(f"  trailer check   {'ok' if t['ok'] else 'FAILED'} ({ci['source']}: "
                         f"count {t['count']:,} = data records {t['expected']:,})")
    tp = m["throughput"]
    if tp["mb_per_s"] is not None:
        lines.append(f"  throughput      {tp['mb_per_s']:.1f} MB/s, {tp['records_per_s']:,.0f} "
                     f"records/s ({tp['bytes'] / 1e6:.1f} MB in {tp['seconds']:.2f} s, "
                     f"{m['runner']['runner']}, kernel {m['versions']['kernel_impl']})")
    lines.append(f"  manifest        {_rel(summary.manifest_path)}")
    return "\n".join(lines)


def run_demo(workdir: str, residents: int = 10000, seed: int = 20260401,
             corrupt_share: float = 0.005, beam_args: Sequence[str] = (),
             echo: Callable[[str], None] | None = None):
    """Generate into ``<workdir>/input``, migrate into ``<workdir>/out``; returns the Summary."""
    from ikou.pipeline.run import run_migration
    from ikou.pipeline.synth import generate_municipality

    workdir = os.path.abspath(workdir)
    input_dir = os.path.join(workdir, "input")
    out_dir = os.path.join(workdir, "out")
    gen = generate_municipality(input_dir, residents, seed, corrupt_share=corrupt_share)
    if echo:
        echo(f"ikou demo: {residents:,} residents generated (seed {seed}, corrupt share "
             f"{corrupt_share}) in {_rel(input_dir)}")
    summary = run_migration(gen.layout, gen.gaiji, [gen.export], out_dir, beam_args)
    if echo:
        echo(format_summary(summary))
    return summary
