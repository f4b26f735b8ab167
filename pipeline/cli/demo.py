"""``ikou demo``: generate a synthetic municipality (住民記録, 個人住民税, 国保, 住登外), run its
job (three standard files, gated and published), print a short summary.

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
    """Lines describing a finished run (``ikou.pipeline.run.single.Summary``)."""
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


#: Share of tax and 国保 records whose 宛名番号 the demo's generator drops or mistypes (record
#: matching resolves them before the gates).
DEMO_KEY_ERROR_SHARE = 0.05
#: Share of tax and 国保 records the demo's generator makes corrupt (bad bytes, non-digits, bad
#: packed / zoned signs): they land in quarantine.avro while the rest still passes the gates.
DEMO_SOURCE_CORRUPT_SHARE = 0.003
#: Share of corrupt 住民記録 records (bad bytes, unmapped 外字, non-digits, a cut double-byte
#: character, an impossible date, a truncated last record): quarantined; the tax and 国保 records
#: of those residents then have no resident to link to and go to review, not to the gates.
DEMO_CORRUPT_SHARE = 0.002


def format_matching(matching) -> list[str]:
    """Lines on record matching (名寄せ): per matched target, what was resolved or left for
    review, and precision / recall / F1 when the run had a truth file."""
    if not matching:
        return []
    lines = []
    for target, m in matching["targets"].items():
        c = m["counts"]
        lines.append(f"  matching        {target:<15}{c['key_links']:>7,} by key, "
                     f"{m['resolved']:>5,} resolved (fuzzy match), {m['review']:>4,} to "
                     f"review/{target}.arrow")
        acc = m.get("accuracy")
        if acc:
            if acc.get("quarantined_right_records"):
                lines.append(f"    truth: {acc['linkable_right_records']:,} linkable records "
                             f"({acc['quarantined_right_records']:,} quarantined, not counted)")
            for name in ("match", "match+possible"):
                a = acc[name]
                lines.append(f"    {name:<15} precision {a['precision']:.4f}  recall "
                             f"{a['recall']:.4f}  F1 {a['f1']:.4f}")
    bad = [s for s, r in matching["reconciliation"].items() if not r["ok"]]
    lines.append(f"  matching recon. {'ok' if not bad else 'FAILED: ' + ', '.join(bad)} "
                 "(data records read = standard rows + review + quarantined)")
    return lines


def format_job_summary(result) -> str:
    """Lines describing a finished job run (``ikou.pipeline.run.job.JobResult``)."""
    s, m, report = result.summary, result.manifest, result.report
    cur = _rel(str(result.current))
    lines = [f"  {'target':<16}{'source':<19}{'records':>11}{'rows':>11}{'quarantined':>12}"]
    for t in m["targets"]:
        src = s["sources"][t["source"]]
        lines.append(f"  {t['name']:<16}{t['source']:<19}{src['data_records']:>11,}"
                     f"{t['rows']:>11,}{t['quarantined']:>12,}  -> {cur}/{t['name']}.arrow")
    for r in m["references"]:
        src = s["sources"][r["source"]]
        lines.append(f"  {'(reference)':<16}{r['source']:<19}{src['data_records']:>11,}"
                     f"{r['rows']:>11,}{src['quarantined']:>12,}  -> "
                     f"{cur}/reference/{r['source']}.arrow")
    if s["quarantined_by_code"]:
        lines.append(f"  quarantined by reason ({s['quarantined']:,} records -> "
                     f"{cur}/quarantine.avro):")
        for code, n in s["quarantined_by_code"].items():
            lines.append(f"    {code:<26}{n:>8,}")
    else:
        lines.append("  quarantined     none (every record became a standard row)")
    lines += format_matching(m.get("matching"))
    bad = [n for n, c in result.checks["sources"].items() if not c["ok"]]
    lines.append(f"  reconciliation  {'ok' if not bad else 'FAILED: ' + ', '.join(bad)} "
                 f"({len(result.checks['sources'])} sources: records read = rows + "
                 "quarantined, trailer counts)")
    n_exp = sum(g.evaluated for g in report.gates.values())
    state = "PASSED" if report.passed else "FAILED (published anyway: --gates warn)"
    lines.append(f"  gates           {state}: {len(report.gates)} validations, {n_exp} "
                 f"expectations")
    for name, g in report.gates.items():
        if not g.success:
            for f in g.failures:
                lines.append(f"    {name}: {f.describe()}")
    tm, tp = m["timings"], m["throughput"]
    total = tm.get("total") or 0.0
    lines.append(f"  throughput      {tp['mb_per_s']:.1f} MB/s, {tp['records_per_s']:,.0f} "
                 f"records/s in the pipeline ({tp['bytes'] / 1e6:.1f} MB in "
                 f"{tp['seconds']:.2f} s, {m['runner']['runner']}, kernel "
                 f"{m['versions']['kernel_impl']})")
    lines.append(f"  time            pipeline {tm.get('pipeline', 0):.2f} s (decode "
                 f"{tm.get('pipeline.decode', 0):.2f} s + mapping "
                 f"{tm.get('pipeline.mapping', 0):.2f} s of block time), gates "
                 f"{tm.get('gates', 0):.2f} s ({100 * tm.get('gates', 0) / total:.0f} %), "
                 f"publish {tm.get('publish', 0):.3f} s, total {total:.2f} s"
                 if total else "")
    lines.append(f"  published       {cur} -> {os.readlink(result.current)}")
    if report.data_docs:
        lines.append(f"  data docs       {_rel(str(report.data_docs))}")
    lines.append(f"  manifest        {cur}/manifest.json (run folder {_rel(str(result.run_dir))})")
    return "\n".join(x for x in lines if x)


def run_demo(workdir: str, residents: int = 10000, seed: int = 20260401,
             corrupt_share: float = DEMO_CORRUPT_SHARE, beam_args: Sequence[str] = (),
             echo: Callable[[str], None] | None = None,
             key_error_share: float = DEMO_KEY_ERROR_SHARE, gates: str = "fail",
             source_corrupt_share: float = DEMO_SOURCE_CORRUPT_SHARE):
    """Generate every source into ``<workdir>/input`` (with mapping files and ``job.yaml``),
    run the job into ``<workdir>/out``; returns the ``JobResult``."""
    from ikou.pipeline.config.job import write_demo_job
    from ikou.pipeline.run.job import run_job
    from ikou.pipeline.synth.municipality import ALL_SOURCES, generate_municipality

    workdir = os.path.abspath(workdir)
    input_dir = os.path.join(workdir, "input")
    out_dir = os.path.join(workdir, "out")
    gen = generate_municipality(input_dir, residents, seed, corrupt_share=corrupt_share,
                                sources=ALL_SOURCES, key_error_share=key_error_share,
                                source_corrupt_share=source_corrupt_share)
    job = write_demo_job(input_dir, gen.sources)
    if echo:
        echo(f"ikou demo: {residents:,} residents generated (seed {seed}, corrupt share "
             f"{corrupt_share}, source corrupt share {source_corrupt_share}, key error share "
             f"{key_error_share}) in {_rel(input_dir)}; job {_rel(str(job))}")
        made = {n: q for n, q in gen.quarantined_by_source.items() if q}
        if made:
            echo("  generated corrupt records (expected in quarantine): "
                 + ", ".join(f"{n} {q:,}" for n, q in made.items()))
    result = run_job(job, out_dir, gates, beam_args, truth=gen.truth)
    if echo:
        echo(format_job_summary(result))
    return result
