"""Reconciliation: every record read is a row written or a quarantined record, the trailer's
count is the number of data records, the merged files hold what the blocks wrote.

:func:`check` reconciles one source (its summary from the pipeline and its layout);
:func:`check_job` every source of a job plus the job's one ``quarantine.avro``. Both return
(problems, the checks for the manifest); any problem means nothing is published.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ikou.transforms.decode.blocks import HEADER, TRAILER, data_kinds
from ikou.transforms.decode.outputs import QUARANTINE_FILE

if TYPE_CHECKING:
    from ikou.transforms.decode.sources import SourceStep

__all__ = ["check", "check_job"]


def check(summary: dict[str, Any], layout,
          n_inputs: int | None = None) -> tuple[list[str], dict[str, Any]]:
    """Reconcile the counts; returns (problems, the checks for the manifest)."""
    problems: list[str] = []
    checks: dict[str, Any] = {"inputs": []}
    if n_inputs is not None and len(summary["inputs"]) != n_inputs:
        problems.append(f"inputs reported ({len(summary['inputs'])}) != inputs given "
                        f"({n_inputs})")
    many = len(summary["inputs"]) > 1
    has_trailer = TRAILER in layout.kinds
    count_field = layout.kinds[TRAILER].count_field if has_trailer else None
    for s in summary["inputs"]:
        where = f"{s['source']}: " if many else ""
        c: dict[str, Any] = {"source": s["source"], "data_records": s["data_records"],
                             "rows_written": s["rows_written"],
                             "data_quarantined": s["data_quarantined"]}
        if s["data_records"] != s["rows_written"] + s["data_quarantined"]:
            problems.append(
                f"{where}data records read ({s['data_records']}) != rows written "
                f"({s['rows_written']}) + data records quarantined ({s['data_quarantined']})")
        if s["records"] != s["rows_written"] + s["quarantined"] + len(s["headers"]) + len(
                s["trailers"]):
            problems.append(
                f"{where}records read ({s['records']}) != rows written ({s['rows_written']}) "
                f"+ quarantined ({s['quarantined']}) + header/trailer records "
                f"({len(s['headers']) + len(s['trailers'])})")
        unknown = s["records_by_kind"].get("", 0)
        if unknown:
            c["unknown_records"] = unknown
        if HEADER in layout.kinds:
            headers = s["headers"]
            bad = s["quarantined_by_kind"].get(HEADER, 0)
            c["header"] = {"found": len(headers), "quarantined": bad,
                           "ok": len(headers) == 1}
            if not headers:
                problems.append(f"{where}the header record is unreadable (quarantined)" if bad
                                else f"{where}header missing: the layout declares a header "
                                     "record, the file has none")
            elif len(headers) > 1:
                problems.append(f"{where}{len(headers)} header records, expected 1")
        if has_trailer:
            trailers = s["trailers"]
            bad = s["quarantined_by_kind"].get(TRAILER, 0)
            t: dict[str, Any] = {"found": len(trailers), "quarantined": bad}
            if not trailers:
                t["ok"] = False
                if bad:
                    problems.append(f"{where}the trailer record is unreadable (quarantined), "
                                    "its record count cannot be checked")
                else:
                    problems.append(f"{where}trailer missing: the layout declares a trailer "
                                    "record, the file has none")
            elif len(trailers) > 1:
                t["ok"] = False
                problems.append(f"{where}{len(trailers)} trailer records, expected 1")
            elif count_field:
                value = trailers[0]["values"].get(count_field)
                try:
                    value = int(value)
                except (TypeError, ValueError):
                    value = None
                t.update(count=value, expected=s["data_records"])
                t["ok"] = value == s["data_records"]
                if not t["ok"]:
                    extra = (f", {unknown} record{'s' if unknown > 1 else ''} of unknown type"
                             if unknown else "")
                    problems.append(
                        f"{where}trailer count ({value}) != data records read "
                        f"({s['data_records']}{extra})")
            else:
                t["ok"] = True
            c["trailer"] = t
        checks["inputs"].append(c)
    written = {name: o["rows"] for name, o in summary["outputs"].items()}
    data_out = sum(o["rows"] for o in summary["outputs"].values() if o["kind"] in
                   data_kinds(layout))
    if data_out != summary["rows_written"]:
        problems.append(f"rows in the outputs ({data_out}) != rows decoded "
                        f"({summary['rows_written']})")
    if written.get(QUARANTINE_FILE) != summary["quarantined"]:
        problems.append(f"records in {QUARANTINE_FILE} ({written.get(QUARANTINE_FILE)}) != "
                        f"records quarantined ({summary['quarantined']})")
    checks["ok"] = not problems
    checks["problems"] = problems
    return problems, checks


def check_job(summary: dict[str, Any], steps: Sequence[SourceStep]):
    problems: list[str] = []
    checks: dict[str, Any] = {"sources": {}}
    for step in steps:
        p, c = check(summary["sources"][step.name], step.layout, len(step.inputs))
        problems += [f"{step.name}: {x}" if len(steps) > 1 else x for x in p]
        checks["sources"][step.name] = c
    q = summary["outputs"][QUARANTINE_FILE]["rows"]
    if q != summary["quarantined"]:
        problems.append(f"records in {QUARANTINE_FILE} ({q}) != records quarantined "
                        f"({summary['quarantined']})")
    checks["ok"] = not problems
    checks["problems"] = problems
    return problems, checks
