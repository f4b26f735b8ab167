"""The run report: one self-contained ``report.html`` a migration lead can sign off.

:func:`write_report` builds it from a run's records only — the run folder's ``manifest.json``,
``summary.json`` and ``gates.json`` and, when the run was published, the release's
``quarantine.avro``, ``match/<target>.links.arrow`` — so ``ikou report RUN_DIR`` rebuilds the
report of an earlier run. The page has inline CSS and inline SVG charts, no script and no
external reference: it opens from a USB stick on an office PC without a network. Japanese by
default, English with ``lang="en"``.

What it shows never includes a decoded value: counts, codes (外字 in hex, reason codes), field
names, record numbers and byte offsets, the header/trailer control values (団体コード, 作成年月日,
合計件数), timings and versions.
"""

from __future__ import annotations

import json
import math
import os
from html import escape
from pathlib import Path
from typing import Any

from ikou.pipeline.report import svg
from ikou.pipeline.report.text import LANGS, texts

__all__ = ["LANGS", "REPORT_FILE", "build_report", "release_for", "write_report"]

REPORT_FILE = "report.html"
#: Quarantined records listed by record number, per source (the counts cover all of them).
EXAMPLES_PER_SOURCE = 20
HIST_BINS = 30

_CSS = """
body{font-family:"Noto Sans JP","Hiragino Kaku Gothic ProN","Yu Gothic","Meiryo",sans-serif;
margin:0 auto;max-width:1000px;padding:16px 24px;color:#222;line-height:1.5}
h1{font-size:1.6em;margin:.2em 0}h2{font-size:1.25em;border-bottom:2px solid #1565c0;
padding-bottom:2px;margin-top:1.8em}h3{font-size:1.05em;margin-bottom:.3em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.92em}
th,td{border:1px solid #cfd8dc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eceff1;white-space:nowrap}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.ok,.ng{white-space:nowrap}
.ok{color:#2e7d32;font-weight:bold}.ng{color:#c62828;font-weight:bold}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.card{border:1px solid #cfd8dc;border-radius:6px;padding:8px 14px;min-width:150px}
.card .v{font-size:1.5em;font-weight:bold;font-variant-numeric:tabular-nums}
.note{color:#555;font-size:.9em}.legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
svg.chart{display:block;max-width:100%;height:auto;margin:6px 0}
footer{margin-top:2em;color:#555;font-size:.85em;border-top:1px solid #cfd8dc;padding-top:6px}
@media print{h2{page-break-after:avoid}table{page-break-inside:avoid}}
"""


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def release_for(run_dir: Path) -> Path | None:
    """The release folder of a run (``OUT/releases/<run id>``) when it still exists."""
    release = run_dir.parent.parent / "releases" / run_dir.name
    return release if release.is_dir() else None


def _n(v) -> str:
    return "" if v is None else f"{v:,}" if isinstance(v, int) else escape(str(v))


def _td(v, cls: str = "n") -> str:
    return f'<td class="{cls}">{_n(v)}</td>'


def _state(ok: bool | None, t) -> str:
    if ok is None:
        return "<span>–</span>"
    return f'<span class="ok">✔ {t["passed"]}</span>' if ok else \
        f'<span class="ng">✘ {t["failed"]}</span>'


def _legend(items) -> str:
    return '<div class="legend">' + "".join(
        f'<span><i style="background:{c}"></i>{escape(n)}</span>' for n, c in items) + "</div>"


# -- the data ----------------------------------------------------------------------------------

def _quarantine_details(release: Path | None, manifest: dict) -> dict | None:
    """From ``quarantine.avro``: counts per (source, field, code) and the first records of
    each source (record number, byte offset, field, code, byte in record). None: no file."""
    path = release / "quarantine.avro" if release else None
    if path is None or not path.exists():
        return None
    import fastavro

    names = {i: x["source"] for i, x in enumerate(manifest.get("inputs", []))}
    counts: dict[tuple[str, str, str], int] = {}
    examples: dict[str, list[dict]] = {}
    totals: dict[str, int] = {}
    with open(path, "rb") as f:
        for rec in fastavro.reader(f):
            src = names.get(rec.get("input"), rec.get("source") or "?")
            totals[src] = totals.get(src, 0) + 1
            reasons = rec.get("reasons") or [{}]
            for r in reasons:
                key = (src, r.get("field") or "–", r.get("code") or "?")
                counts[key] = counts.get(key, 0) + 1
            ex = examples.setdefault(src, [])
            if len(ex) < EXAMPLES_PER_SOURCE:
                first = reasons[0]
                ex.append({"record": rec.get("record"), "offset": rec.get("offset"),
                           "kind": rec.get("kind"), "field": first.get("field") or "–",
                           "code": first.get("code"), "position": first.get("position"),
                           "reasons": len(reasons)})
    return {"counts": counts, "examples": examples, "totals": totals}


def _logit2(p: float) -> float:
    return math.log2(p / (1 - p))


def _thresholds(config: str | None) -> dict[str, float]:
    if not config or not os.path.exists(config):
        return {}
    import yaml

    with open(config, encoding="utf-8") as f:
        th = (yaml.safe_load(f) or {}).get("thresholds") or {}
    out = {}
    for k in ("match", "possible"):
        if isinstance(th.get(k), (int, float)) and 0 < th[k] < 1:
            out[k] = th[k]
    return out


def _scores(release: Path | None, target: str) -> dict | None:
    """Score histogram of a target's links by decision and method (``links.arrow``)."""
    path = release / "match" / f"{target}.links.arrow" if release else None
    if path is None or not path.exists():
        return None
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.ipc as ipc

    with open(path, "rb") as f:
        t = ipc.open_file(f).read_all().select(["method", "decision", "score"])

    def mask(column: str, value: str) -> np.ndarray:
        col = t.column(column)
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        return pc.fill_null(pc.equal(col, value), False).to_numpy(zero_copy_only=False)

    score = t.column("score").to_numpy(zero_copy_only=False).astype(float)
    method_key, match, possible = mask("method", "key"), mask("decision", "match"), \
        mask("decision", "possible")
    ok = np.isfinite(score)
    if not ok.any():
        return None
    lo, hi = math.floor(score[ok].min()), math.ceil(score[ok].max())
    if hi <= lo:
        hi = lo + 1
    edges = np.linspace(lo, hi, HIST_BINS + 1)
    groups = {"key": ok & method_key, "fuzzy": ok & ~method_key & match,
              "possible": ok & possible}
    return {"edges": edges.tolist(),
            "series": {k: np.histogram(score[m], bins=edges)[0].tolist()
                       for k, m in groups.items()}}


# -- the sections ------------------------------------------------------------------------------

def _kind_name(kind: str, t) -> str:
    return t.get(f"kind_{kind or 'unknown'}", kind)


def _flow(m: dict, summary: dict | None, t) -> str:
    sources = (summary or {}).get("sources", {})
    targets = {x["source"]: x for x in m.get("targets", [])}
    refs = {x["source"] for x in m.get("references", [])}
    labels = {x["name"]: x.get("label") or "" for x in m.get("sources", [])}
    recon = ((m.get("matching") or {}).get("reconciliation")) or {}
    checks = (m.get("checks") or {}).get("sources", {})
    rows, bars_ = [], []
    head = (f"<tr><th>{t['source']}</th><th>{t['label']}</th><th>{t['kind']}</th>"
            f"<th>{t['read']}</th><th>{t['to_standard']}</th><th>{t['review']}</th>"
            f"<th>{t['quarantined']}</th><th>{t['trailer_count']}</th>"
            f"<th>{t['reconciliation']}</th><th>{t['output']}</th></tr>")
    for name, s in sources.items():
        q_kind = s.get("quarantined_by_kind", {})
        target = targets.get(name)
        review = target.get("review", 0) if target else 0
        data_q = s.get("data_quarantined", 0)
        if target:
            rows_out, out = target["rows"], f"{target['name']}.arrow"
        else:
            rows_out = s.get("rows_written", 0)
            out = (f"reference/{name}.arrow" if name in refs else
                   ", ".join(k for k in s.get("outputs", {}) if k != "quarantine.avro"))
        c = checks.get(name, {})
        ok = c.get("ok")
        if name in recon:
            ok = bool(ok) and recon[name].get("ok", False)
        trailer = [i.get("trailer") for i in c.get("inputs", []) if i.get("trailer")]
        tr_txt = ", ".join(f"{x.get('count'):,}" if isinstance(x.get("count"), int) else "–"
                           for x in trailer) or "–"
        tr_ok = all(x.get("ok") for x in trailer) if trailer else None
        kinds = s.get("records_by_kind", {})
        first = True
        for kind in ["data"] + sorted(k for k in kinds if k != "data"):
            n = kinds.get(kind, 0)
            if kind != "data" and not n:
                continue
            if kind == "data":
                cells = (_td(n) + _td(rows_out) + _td(review) + _td(data_q)
                         + f'<td class="n">{tr_txt} {_state(tr_ok, t) if tr_ok is not None else ""}</td>'
                         + f"<td>{_state(ok, t)}</td><td>{escape(out)}</td>")
            else:
                qk = q_kind.get(kind, 0)
                cells = (_td(n) + _td(n - qk) + _td(0) + _td(qk)
                         + "<td></td><td></td><td></td>")
            rows.append(f"<tr><td>{escape(name) if first else ''}</td>"
                        f"<td>{escape(labels.get(name, '')) if first else ''}</td>"
                        f"<td>{escape(_kind_name(kind, t))}</td>{cells}</tr>")
            first = False
        bars_.append((name, [(t["to_standard"], rows_out, svg.PALETTE["ok"]),
                             (t["review"], review, svg.PALETTE["review"]),
                             (t["quarantined"], data_q, svg.PALETTE["bad"])]))
    legend = _legend([(t["to_standard"], svg.PALETTE["ok"]), (t["review"], svg.PALETTE["review"]),
                      (t["quarantined"], svg.PALETTE["bad"])])
    return (f"<h2 id='flow'>{t['sec_flow']}</h2><p class='note'>{t['flow_note']}</p>"
            + legend + svg.stacked(bars_) + f"<table>{head}{''.join(rows)}</table>")


def _quarantine(m: dict, summary: dict | None, details: dict | None, t) -> str:
    out = [f"<h2 id='quarantine'>{t['sec_quarantine']}</h2>"]
    if not m.get("quarantined"):
        return out[0] + f"<p>{t['q_none']}</p>"
    out.append(f"<p class='note'>{t['q_note']}</p>")
    by_code = m.get("quarantined_by_code", {})
    out.append(svg.bars(sorted(by_code.items(), key=lambda kv: -kv[1]), svg.PALETTE["bad"]))
    if details is None:
        out.append(f"<p class='note'>{t['q_details_missing']}</p>")
        rows = []
        for name, s in ((summary or {}).get("sources") or {}).items():
            for code, n in s.get("quarantined_by_code", {}).items():
                rows.append(f"<tr><td>{escape(name)}</td><td>–</td><td>{escape(code)}</td>"
                            f"{_td(n)}</tr>")
    else:
        rows = [f"<tr><td>{escape(src)}</td><td>{escape(fld)}</td><td>{escape(code)}</td>"
                f"{_td(n)}</tr>" for (src, fld, code), n in sorted(details["counts"].items())]
    out.append(f"<table><tr><th>{t['source']}</th><th>{t['field']}</th><th>{t['reason']}</th>"
               f"<th>{t['count']}</th></tr>{''.join(rows)}</table>")
    if details is not None:
        out.append(f"<h3>{t['q_examples']}</h3>")
        for src, ex in details["examples"].items():
            rows = [f"<tr>{_td(e['record'])}{_td(e['offset'])}"
                    f"<td>{escape(_kind_name(e['kind'] or '', t))}</td>"
                    f"<td>{escape(e['field'])}</td><td>{escape(e['code'] or '')}</td>"
                    f"{_td(e['position'])}</tr>" for e in ex]
            more = details["totals"][src] - len(ex)
            out.append(f"<p><b>{escape(src)}</b>"
                       + (f" （{t['q_more'].format(n=f'{more:,}')}）" if more > 0 else "")
                       + "</p>"
                       f"<table><tr><th>{t['record_no']}</th><th>{t['byte_offset']}</th>"
                       f"<th>{t['kind']}</th><th>{t['field']}</th><th>{t['reason']}</th>"
                       f"<th>{t['byte_pos']}</th></tr>{''.join(rows)}</table>")
    return "".join(out)


def _gaiji(summary: dict | None, t) -> str:
    out = [f"<h2 id='gaiji'>{t['sec_gaiji']}</h2>"]
    counts = (summary or {}).get("gaiji") or {}
    if not counts:
        return out[0] + f"<p>{t['gaiji_none']}</p>"
    out.append(f"<p class='note'>{t['gaiji_note']}</p>")
    per_state = {s: 0 for s in ("mapped", "fallback", "unmapped")}
    codes: dict[str, dict[str, int]] = {}
    for key, n in counts.items():
        code, state = key.split(" ", 1)
        per_state[state] = per_state.get(state, 0) + n
        codes.setdefault(code, {})[state] = codes.get(code, {}).get(state, 0) + n
    seen = sum(per_state.values())
    out.append('<div class="cards">' + "".join(
        f'<div class="card">{t[k]}<div class="v">{v:,}</div></div>'
        for k, v in (("gaiji_seen", seen), ("gaiji_mapped", per_state["mapped"]),
                     ("gaiji_fallback", per_state["fallback"]),
                     ("gaiji_unmapped", per_state["unmapped"]))) + "</div>")
    out.append(svg.stacked([(t["gaiji_seen"], [
        (t["gaiji_mapped"], per_state["mapped"], svg.PALETTE["ok"]),
        (t["gaiji_fallback"], per_state["fallback"], svg.PALETTE["review"]),
        (t["gaiji_unmapped"], per_state["unmapped"], svg.PALETTE["bad"])])]))
    rows = []
    for code in sorted(codes):
        c = codes[code]
        rows.append(f"<tr><td><code>0x{escape(code)}</code></td>{_td(sum(c.values()))}"
                    f"{_td(c.get('mapped', 0))}{_td(c.get('fallback', 0))}"
                    f"{_td(c.get('unmapped', 0))}</tr>")
    out.append(f"<table><tr><th>{t['code']}</th><th>{t['gaiji_seen']}</th>"
               f"<th>{t['gaiji_mapped']}</th><th>{t['gaiji_fallback']}</th>"
               f"<th>{t['gaiji_unmapped']}</th></tr>{''.join(rows)}"
               f"<tr><th>{t['total']} ({len(codes)} {t['gaiji_codes']})</th>{_td(seen)}"
               f"{_td(per_state['mapped'])}{_td(per_state['fallback'])}"
               f"{_td(per_state['unmapped'])}</tr></table>")
    return "".join(out)


def _gates(m: dict, docs_href: str | None, t) -> str:
    g = m.get("gates")
    out = [f"<h2 id='gates'>{t['sec_gates']}</h2>"]
    if not g:
        return out[0] + f"<p>{t['gates_none']}</p>"
    out.append(f"<p>{t['result']}: {_state(g.get('passed'), t)} — {t['gates_mode']}: "
               f"{t['mode_' + g.get('mode', 'fail')]}"
               + (f" — <a href=\"{escape(docs_href)}\">{t['data_docs']}</a>" if docs_href else "")
               + "</p>")
    rows = []
    for name, x in g.get("gates", {}).items():
        fails = "".join(
            f"<div>{escape(f['expectation'])}"
            + (f" [{escape(f['column'])}]" if f.get("column") else "")
            + (f" {escape(str(f['item']))}" if f.get("item") else "")
            + (f": {f['unexpected_count']:,} / {f['element_count']:,}"
               if isinstance(f.get("unexpected_count"), int)
               and isinstance(f.get("element_count"), int) else "")
            + "</div>" for f in x.get("failures", []))
        rows.append(f"<tr><td>{escape(name)}</td><td>{escape(x.get('suite') or '')}</td>"
                    f"<td>{_state(x.get('success'), t)}</td>{_td(x.get('evaluated'))}"
                    f"{_td(x.get('rows'))}<td>{fails or '–'}</td></tr>")
    out.append(f"<table><tr><th>{t['gate']}</th><th>{t['suite']}</th><th>{t['result']}</th>"
               f"<th>{t['evaluated']}</th><th>{t['rows']}</th><th>{t['failing']}</th></tr>"
               f"{''.join(rows)}</table>")
    if g.get("unchecked"):
        out.append(f"<p class='note'>{t['unchecked']}: {escape(', '.join(g['unchecked']))}</p>")
    return "".join(out)


def _matching(m: dict, scores: dict, t) -> str:
    mt = m.get("matching")
    out = [f"<h2 id='matching'>{t['sec_matching']}</h2>"]
    if not mt:
        return out[0] + f"<p>{t['matching_none']}</p>"
    rows = []
    for target, x in mt.get("targets", {}).items():
        c = x.get("counts", {})
        fuzzy = x.get("resolved", 0)
        possible = c.get("possible", 0)
        review = x.get("review", 0)
        none = max(0, review - possible)
        rows.append(f"<tr><td>{escape(target)}</td>{_td(c.get('right_records'))}"
                    f"{_td(c.get('key_links'))}{_td(fuzzy)}{_td(review)}{_td(possible)}"
                    f"{_td(none)}</tr>")
    out.append(f"<table><tr><th>{t['target']}</th><th>{t['right_records']}</th>"
               f"<th>{t['by_key']}</th><th>{t['by_fuzzy']}</th><th>{t['to_review']}</th>"
               f"<th>{t['possible']}</th><th>{t['no_candidate']}</th></tr>"
               f"{''.join(rows)}</table>")
    for target, x in mt.get("targets", {}).items():
        c = x.get("counts", {})
        out.append(f"<h3>{escape(target)}</h3>")
        amb = [(t["amb_key_rejected"], c.get("key_rejected", 0)),
               (t["amb_key_ambiguous"], c.get("key_ambiguous", 0)),
               (t["amb_ambiguous"], c.get("ambiguous", 0)),
               (t["amb_possible"], max(0, c.get("possible", 0) - c.get("ambiguous", 0))),
               (t["amb_unmatched"], c.get("unmatched", 0))]
        out.append(f"<p><b>{t['ambiguity']}</b></p><table>" + "".join(
            f"<tr><td>{escape(k)}</td>{_td(v)}</tr>" for k, v in amb) + "</table>")
        th = _thresholds(x.get("config"))
        hist = scores.get(target)
        if hist:
            lines = [(t[f"threshold_{k}"], _logit2(p)) for k, p in th.items()]
            out.append(f"<p><b>{t['scores']}</b></p>" + _legend([
                (t["by_key"], svg.PALETTE["ok"]), (t["by_fuzzy"], svg.PALETTE["info"]),
                (t["possible"], svg.PALETTE["review"])]))
            out.append(svg.histogram(hist["edges"], [
                (t["by_key"], hist["series"]["key"], svg.PALETTE["ok"]),
                (t["by_fuzzy"], hist["series"]["fuzzy"], svg.PALETTE["info"]),
                (t["possible"], hist["series"]["possible"], svg.PALETTE["review"])], lines))
            if th:
                out.append("<p class='note'>" + t["score_note"].format(
                    match=f"{_logit2(th.get('match', 0.99)):.1f}",
                    possible=f"{_logit2(th.get('possible', 0.5)):.1f}") + "</p>")
        acc = x.get("accuracy")
        if acc:
            cells = "".join(f"<tr><td>{escape(k)}</td><td class='n'>{a['precision']:.4f}</td>"
                            f"<td class='n'>{a['recall']:.4f}</td></tr>"
                            for k, a in acc.items() if isinstance(a, dict) and "precision" in a)
            out.append(f"<p class='note'>{t['accuracy']}</p><table><tr><th></th>"
                       f"<th>{t['precision']}</th><th>{t['recall']}</th></tr>{cells}</table>")
    return "".join(out)


def _time(m: dict, t) -> str:
    st = m.get("stages") or {}
    stages = st.get("stages", {})
    total = st.get("total") or 0
    records = m.get("records") or 0
    out = [f"<h2 id='time'>{t['sec_time']}</h2>"]
    rows = []
    for k, v in stages.items():
        s = v.get("seconds") or 0
        rate = f"{records / s:,.0f}" if s >= 0.01 and k in ("pipeline", "total") else ""
        rows.append(f"<tr><td>{escape(t.get('stage_' + k, k))}</td>"
                    f"<td class='n'>{s:,.2f}</td><td class='n'>{100 * (v.get('share') or 0):.1f} %"
                    f"</td><td class='n'>{rate}</td></tr>")
    added = sum((v.get("seconds") or 0) for v in stages.values())
    rows.append(f"<tr><th>{t['total']}</th><th class='n'>{total:,.2f}</th>"
                f"<th class='n'>{100 * added / total if total else 0:.1f} %</th>"
                f"<th class='n'>{records / total if total else 0:,.0f}</th></tr>")
    out.append(svg.bars([(t.get("stage_" + k, k), v.get("seconds") or 0)
                         for k, v in stages.items()], unit=" s"))
    out.append(f"<table><tr><th>{t['stage']}</th><th>{t['seconds']}</th><th>{t['share']}</th>"
               f"<th>{t['rec_s']}</th></tr>{''.join(rows)}</table>")
    parts = st.get("pipeline_parts") or {}
    if parts:
        out.append(f"<p><b>{t['pipeline_parts']}</b></p><table>" + "".join(
            f"<tr><td>{escape(t.get('part_' + k, k))}</td><td class='n'>{v:,.2f}</td></tr>"
            for k, v in parts.items()) + "</table>")
    tp = m.get("throughput") or {}
    if tp.get("mb_per_s"):
        out.append(f"<p>{t['throughput']}: {tp['mb_per_s']:,.2f} {t['mb_s']}, "
                   f"{tp['records_per_s']:,.0f} {t['rec_s']} "
                   f"({t['input_bytes']} {tp['bytes'] / 1e6:,.1f} MB, "
                   f"{t['stage_pipeline']} {tp['seconds']:,.2f} {t['seconds']})</p>")
    mach = m.get("machine") or {}
    runner = m.get("runner") or {}
    ver = m.get("versions") or {}
    rows = []
    if mach:
        rows += [(t["os"], mach.get("system")), (t["cpus"], mach.get("cpus")),
                 (t["memory"], f"{mach['memory_bytes'] / 2**30:.1f} GiB"
                  if mach.get("memory_bytes") else None)]
    rows += [(t["runner"], runner.get("runner")),
             (t["workers"], runner.get("direct_num_workers")),
             (t["kernel"], ver.get("kernel_impl"))]
    out.append(f"<h3>{t['machine']}</h3><table>" + "".join(
        f"<tr><td>{escape(k)}</td><td>{_n(v)}</td></tr>" for k, v in rows if v is not None)
        + "</table>")
    out.append(f"<h3>{t['versions']}</h3><table>" + "".join(
        f"<tr><td>{escape(k)}</td><td>{_n(v)}</td></tr>" for k, v in ver.items()
        if k != "kernel_impl" and v is not None) + "</table>")
    return "".join(out)


def _overview(m: dict, t) -> str:
    review = sum(x.get("review", 0) for x in m.get("targets", []))
    checks_ok = bool((m.get("checks") or {}).get("ok", True)) and all(
        r.get("ok", True) for r in (((m.get("matching") or {}).get("reconciliation")) or {}
                                    ).values())
    gates_ok = (m.get("gates") or {}).get("passed", True)
    ok = checks_ok and gates_ok and m.get("published", False)
    job = m.get("job") or {}
    rows = (sum(x.get("rows", 0) for x in m.get("targets", []))
            + sum(x.get("rows", 0) for x in m.get("references", []))
            + sum(x.get("rows", 0) for x in m.get("decoded", [])))
    cards = [(t["records_read"], m.get("records", 0)),
             (t["rows_published"], rows),
             (t["review"], review), (t["quarantined"], m.get("quarantined", 0))]
    return (f"<h1>{t['title']}</h1><p class='note'>{t['subtitle']}</p>"
            f"<table><tr><th>{t['job']}</th><td>{escape(str(job.get('name', '')))}</td></tr>"
            f"<tr><th>{t['run_id']}</th><td>{escape(str(job.get('run_id', '')))}</td></tr>"
            f"<tr><th>{t['published']}</th><td>"
            f"{t['published_yes'] if m.get('published') else t['published_no']}</td></tr>"
            f"<tr><th>{t['reconciliation']}</th><td>{_state(checks_ok, t)}</td></tr>"
            f"<tr><th>{t['sec_gates'].split(' ', 1)[1]}</th><td>"
            f"{_state(gates_ok if m.get('gates') else None, t)}</td></tr>"
            f"<tr><th>{t['verdict']}</th><td class='{'ok' if ok else 'ng'}'>"
            f"{t['verdict_ok'] if ok else t['verdict_ng']}</td></tr></table>"
            '<div class="cards" id="totals">' + "".join(
                f'<div class="card">{escape(k)}<div class="v">{v:,}</div></div>'
                for k, v in cards) + "</div>")


def build_report(run_dir: str | os.PathLike, release_dir: str | os.PathLike | None = None,
                 lang: str = "ja", docs_href: str | None = None,
                 manifest: dict | None = None, cache: dict | None = None) -> str:
    """The report's HTML for a run folder (``OUT/runs/<run id>``). ``release_dir``: where the
    published files are (default: the run's release when it still exists); ``docs_href``: the
    link to Data Docs (default: relative to the run folder). ``cache``: a dict kept between
    two builds of the same run (the release's copy, then the run folder's), so the result
    files are read once."""
    t = texts(lang)
    run = Path(run_dir)
    m = manifest if manifest is not None else _read_json(run / "manifest.json")
    if m is None:
        raise FileNotFoundError(f"{run / 'manifest.json'}: no manifest (not a run folder, or "
                                "the run stopped before its manifest)")
    summary = _read_json(run / "summary.json")
    release = Path(release_dir) if release_dir is not None else (
        release_for(run) if m.get("published") else None)
    if docs_href is None and (run / "data_docs" / "index.html").exists():
        docs_href = "data_docs/index.html"
    cache = {} if cache is None else cache
    if "quarantine" not in cache:
        cache["quarantine"] = _quarantine_details(release, m)
    if "scores" not in cache:
        cache["scores"] = {target: _scores(release, target)
                           for target in ((m.get("matching") or {}).get("targets") or {})}
    body = "".join([
        _overview(m, t),
        _flow(m, summary, t),
        _quarantine(m, summary, cache["quarantine"], t),
        _gaiji(summary, t),
        _gates(m, docs_href, t),
        _matching(m, cache["scores"], t),
        _time(m, t),
        f"<footer>{t['footer']}</footer>",
    ])
    return (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
            "style-src 'unsafe-inline'; img-src data:\">"
            f"<title>{t['title']} — {escape(str((m.get('job') or {}).get('name', '')))}</title>"
            f"<style>{_CSS}</style></head><body>{body}</body></html>\n")


def write_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None,
                 lang: str = "ja", release_dir: str | os.PathLike | None = None,
                 manifest: dict | None = None, cache: dict | None = None) -> Path:
    """Write ``report.html`` (into the run folder unless ``out`` names another file); the
    Data Docs link is made relative to where the report is written."""
    run = Path(run_dir)
    target = Path(out) if out is not None else run / REPORT_FILE
    docs = run / "data_docs" / "index.html"
    href = (os.path.relpath(docs, target.parent) if docs.exists() else None)
    html = build_report(run, release_dir, lang, href, manifest, cache)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, target)
    return target
