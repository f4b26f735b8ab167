"""What the commands print about a finished run: counts, reasons, matching, gates, time per
stage and where the outputs are. Never a decoded value: record numbers, keys and counts only.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["format_job_summary", "format_matching", "format_stages", "rel_path"]


def rel_path(path: str) -> str:
    """``path`` relative to the working folder when it lies below it (a URL as it is)."""
    if "://" in path:
        return path
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


_rel = rel_path


def format_stages(stages: dict[str, Any] | None) -> list[str]:
    """The time line: every stage with its share of the total (they add up to it), and the
    pipeline's parts."""
    if not stages or not stages.get("total"):
        return []
    st = stages["stages"]
    parts = stages["pipeline_parts"]
    cells = ", ".join(f"{k} {v['seconds']:.2f} s ({100 * v['share']:.0f} %)"
                      for k, v in st.items() if v["seconds"] >= 0.005)
    pipe = " + ".join(f"{k} {v:.2f}" for k, v in parts.items() if v >= 0.005)
    return [f"  time            total {stages['total']:.2f} s = {cells}",
            f"    pipeline      {st['pipeline']['seconds']:.2f} s = {pipe} s"
            + (f" (block work / {stages['pipeline_workers']} workers)"
               if stages["pipeline_workers"] > 1 else "")]


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
    for d in m.get("decoded", []):
        src = s["sources"][d["source"]]
        for name in d["outputs"]:
            lines.append(f"  {'(decoded)':<16}{d['source']:<19}{src['data_records']:>11,}"
                         f"{s['outputs'][name]['rows']:>11,}{src['quarantined']:>12,}  -> "
                         f"{cur}/{name}")
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
    if report is not None:
        n_exp = sum(g.evaluated for g in report.gates.values())
        state = "PASSED" if report.passed else "FAILED (published anyway: --gates warn)"
        lines.append(f"  gates           {state}: {len(report.gates)} validations, {n_exp} "
                     f"expectations")
        for name, g in report.gates.items():
            if not g.success:
                for f in g.failures:
                    lines.append(f"    {name}: {f.describe()}")
    else:
        lines.append("  gates           none (no standard file in this run)")
    tp = m["throughput"]
    lines.append(f"  throughput      {tp['mb_per_s']:.1f} MB/s, {tp['records_per_s']:,.0f} "
                 f"records/s in the pipeline ({tp['bytes'] / 1e6:.1f} MB in "
                 f"{tp['seconds']:.2f} s, {m['runner']['runner']}, kernel "
                 f"{m['versions']['kernel_impl']})")
    lines += format_stages(m.get("stages"))
    remote = not os.path.islink(str(result.current))  # an object store: the CURRENT pointer
    lines.append(f"  published       {cur} -> "
                 f"{result.release_dir if remote else os.readlink(result.current)}")
    if report is not None and report.data_docs and not remote:
        lines.append(f"  data docs       {_rel(str(report.data_docs))}")
    where = result.release_dir if remote else cur
    if remote or (result.run_dir / "report.html").exists():
        lines.append(f"  report          {_rel(str(result.run_dir / 'report.html'))} (also "
                     f"{where}/report.html)")
    lines.append(f"  manifest        {where}/manifest.json (run folder {_rel(str(result.run_dir))})")
    return "\n".join(x for x in lines if x)
