"""The errors ikou raises on purpose, under one root.

- :class:`UserError` — something the user gave is wrong: a layout, 外字 table, job, mapping or
  matching file, an option, an input path. The command line prints one line ``ikou: error: ...``
  and exits 2. It is a ``ValueError`` too, as pyarrow's ``ArrowInvalid`` is.
- :class:`DataError` — the data failed a check and nothing was published: the counts do not
  reconcile (:class:`ReconciliationError`, exit 3) or a gate failed (``GateFailure``, exit 4).

Everything else is a bug and keeps its traceback (a ``ValueError`` from pyarrow is not a user
mistake). Kernel errors (``ikou.kernels.PlanError``, ``MatchConfigError``) sit below the
pipeline layer and cannot subclass these; the command line treats them as user mistakes, since
they are raised only for a bad specification.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["DataError", "GateFailure", "IkouError", "InputError", "ReconciliationError",
           "UserError"]


class IkouError(Exception):
    """Root of the errors ikou raises on purpose."""


class UserError(IkouError, ValueError):
    """A mistake in what the user gave (reported as one line, exit 2)."""


class InputError(UserError):
    """An input file is missing or unreadable, or an output path is unusable."""


class DataError(IkouError):
    """The data failed a check; nothing was published."""


class ReconciliationError(DataError):
    """The counts do not reconcile; nothing was published."""

    def __init__(self, problems: Sequence[str], inputs: Sequence[str] = ()):
        self.problems = list(problems)
        #: the input files concerned (named by the command's error line)
        self.inputs = list(inputs)
        super().__init__("reconciliation failed: " + "; ".join(self.problems))

    def line(self) -> str:
        """The one-line message: the problems and the input files they concern."""
        if not self.inputs:
            return str(self)
        return f"{self} (input{'s' if len(self.inputs) > 1 else ''}: {', '.join(self.inputs)})"


class GateFailure(DataError):
    """A gate failed in mode ``fail``: nothing was published. ``report`` is the
    :class:`~ikou.pipeline.steps.gates.GateReport`, ``run_dir`` the run folder with the
    validation results and Data Docs."""

    def __init__(self, report, run_dir):
        self.report = report
        self.run_dir = run_dir
        super().__init__(f"gates failed ({', '.join(report.failed)}): nothing published")
