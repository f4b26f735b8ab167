"""Reconciling a run's counts, without Apache Beam (``ikou decode`` and ``ikou run`` alike).

:func:`check` reconciles the counts of a summary (data records read = rows written + data
records quarantined; the trailer's count = data records read; a trailer the layout declares
must be there) and returns the problems found.  ``ikou.pipeline.run`` re-exports all of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ikou.pipeline.layout import Layout
from ikou.transforms.blocks import TRAILER, data_kinds
from ikou.transforms.outputs import QUARANTINE_FILE

__all__ = ["InputError", "ReconciliationError", "check"]


class InputError(ValueError):
    """An input file is missing or unreadable (a user mistake)."""


class ReconciliationError(Exception):
    """The counts do not reconcile; nothing was published."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("reconciliation failed: " + "; ".join(self.problems))


def check(summary: dict[str, Any], layout: Layout,
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
