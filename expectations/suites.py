"""Expectation suites as versioned JSON files (``expectations/suites/<target>/<target>.json``).

Each standard file has one suite, generated from its definition by
:func:`ikou.pipeline.steps.suitegen.build_suite` and kept in git; ``python -m ikou.pipeline.steps.suitegen
--write`` regenerates them and a test fails when a committed suite and its definition drift
apart. (The generator lives in ``ikou.pipeline`` because it reads standard definitions:
``ikou.expectations`` never imports ``ikou.pipeline``; dependencies point one way.) A suite
holds:

- the columns of the generated Arrow schema, in order;
- the row count, equal to the run-time parameter ``expected_rows`` (what reconciliation says);
- per item: not null when required (a date: status not ``blank``), code-table membership, the
  pattern (郵便番号, 識別番号, kana), value lengths within 桁数, integer range within 桁数,
  date statuses, and the check digits (custom expectations, :mod:`ikou.expectations.custom`);
- key uniqueness (宛名番号 in the resident file; compound keys elsewhere).

``expectations/suites/cross/atena_reference.json`` is the cross-file suite, run by the gates
on a joined table (see :mod:`ikou.pipeline.steps.gates`).

Every expectation's ``meta`` names the item (number and 項目名称) so reports read well.
:func:`load_suite` turns a JSON file into a ``gx.ExpectationSuite`` and raises
:class:`SuiteError` (a ``ValueError``) naming the file when an expectation is not valid — GX
itself would only log and skip it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ["GX_ANALYTICS_ENABLED"] = "false"  # before great_expectations is imported

import great_expectations as gx  # noqa: E402

import ikou.expectations.custom  # noqa: E402, F401 - registers the custom expectations

__all__ = ["CROSS_SUITE", "SUITES_DIR", "SUITE_VERSION", "SuiteError", "load_suite",
           "read_suite_dict", "suite_path"]

SUITES_DIR = Path(__file__).resolve().parent / "suites"
CROSS_SUITE = SUITES_DIR / "cross" / "atena_reference.json"
#: Bump when the generated shape changes; stored in every suite's meta.
SUITE_VERSION = 1


class SuiteError(ValueError):
    """A suite file is missing or invalid."""


def suite_path(target: str) -> Path:
    return SUITES_DIR / target / f"{target}.json"


def read_suite_dict(path: str | Path) -> dict:
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SuiteError(f"{path}: suite file not found") from None
    except (OSError, ValueError) as exc:
        raise SuiteError(f"{path}: cannot read suite: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("expectations"), list):
        raise SuiteError(f"{path}: a suite needs 'name' and an 'expectations' list")
    return doc


def load_suite(path_or_target: str | Path, drop_types: tuple[str, ...] = ()) -> gx.ExpectationSuite:
    """A ``gx.ExpectationSuite`` from a suite JSON file (or a target name); expectations whose
    type is in ``drop_types`` are left out."""
    p = Path(path_or_target)
    path = p if p.suffix == ".json" else suite_path(str(path_or_target))
    doc = read_suite_dict(path)
    wanted = [e for e in doc["expectations"] if e.get("type") not in drop_types]
    for i, e in enumerate(wanted):
        if not isinstance(e, dict) or set(e) - {"type", "kwargs", "meta", "id", "notes",
                                                "rendered_content", "severity"}:
            raise SuiteError(f"{path}: expectation {i}: unexpected shape")
    try:
        suite = gx.ExpectationSuite(name=str(doc.get("name") or path.stem), expectations=wanted,
                                    meta=doc.get("meta") or {})
    except Exception as exc:  # GX raises many types; report them as one
        raise SuiteError(f"{path}: invalid suite: {exc}") from None
    if len(suite.expectations) != len(wanted):
        raise SuiteError(f"{path}: {len(wanted) - len(suite.expectations)} expectation(s) are "
                         f"not valid (unknown type or bad kwargs)")
    return suite


