"""What the gates report: :class:`GateReport` per run, :class:`OutputGate` per validated
output, :class:`Failure` per failing expectation (counts and record numbers / keys only), and
:class:`GateError`. Plain dataclasses without Great Expectations, so a report that comes back
from the gate worker process is read without importing it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ikou.pipeline.errors import UserError

__all__ = ["Failure", "GateError", "GateReport", "OutputGate"]


class GateError(UserError):
    """Gates cannot run (bad mode, unreadable staged file, missing suite...)."""


@dataclass
class Failure:
    expectation: str
    column: str | None
    item: str | None              # "3 氏名" when the expectation belongs to an item
    unexpected_count: int | None
    element_count: int | None
    observed: Any = None          # aggregate expectations: e.g. the row count
    sample: list[dict] = field(default_factory=list)  # [{_record, 宛名番号 column}], capped

    def describe(self) -> str:
        what = self.expectation + (f" [{self.column}]" if self.column else "")
        if self.item:
            what += f" ({self.item})"
        if self.unexpected_count is not None:
            what += f": {self.unexpected_count} of {self.element_count} rows"
        elif self.observed is not None and not isinstance(self.observed, (list, dict)):
            what += f": observed {self.observed}"
        if self.sample:
            what += "; e.g. " + ", ".join(
                " ".join(f"{k}={v}" for k, v in row.items()) for row in self.sample[:3])
        return what


@dataclass
class OutputGate:
    name: str
    suite: str
    success: bool
    rows: int
    evaluated: int
    failures: list[Failure]
    seconds: float
    notes: list[str] = field(default_factory=list)
    results_file: str | None = None
    engine: str = "arrow"           # "arrow" (metrics in Arrow, results by GX) or "gx-pandas"


@dataclass
class GateReport:
    mode: str
    gates: dict[str, OutputGate]
    unchecked: list[str]
    run_dir: Path
    data_docs: Path | None
    seconds: float
    analytics: dict = field(default_factory=dict)
    #: the gate step's split in seconds: load (map the staged files, cross-file lookup), setup
    #: (GX context), validate, results (trim, store, write), data_docs
    timings: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(g.success for g in self.gates.values())

    @property
    def publish(self) -> bool:
        """May the staged outputs be published?"""
        return self.passed or self.mode == "warn"

    @property
    def exit_code(self) -> int:
        return 0 if self.publish else 1

    @property
    def failed(self) -> list[str]:
        return [name for name, g in self.gates.items() if not g.success]

    def summary(self) -> str:
        lines = [f"gates ({self.mode}): {'PASSED' if self.passed else 'FAILED'}"
                 + ("" if self.passed or self.publish is False else " - published anyway")]
        for name, g in self.gates.items():
            state = "ok" if g.success else f"FAILED {len(g.failures)} of {g.evaluated}"
            lines.append(f"  {name}: {state} ({g.rows} rows, suite {g.suite})")
            lines.extend(f"    - {f.describe()}" for f in g.failures)
            lines.extend(f"    note: {n}" for n in g.notes)
        for name in self.unchecked:
            lines.append(f"  {name}: no suite - not validated")
        if self.data_docs:
            lines.append(f"  data docs: {self.data_docs}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "mode": self.mode, "passed": self.passed, "publish": self.publish,
            "exit_code": self.exit_code, "seconds": round(self.seconds, 3),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "unchecked": self.unchecked, "analytics": self.analytics,
            "data_docs": str(self.data_docs) if self.data_docs else None,
            "gates": {k: asdict(v) for k, v in self.gates.items()},
        }
