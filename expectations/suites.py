"""Expectation suites as versioned JSON files (``expectations/suites/<target>/<target>.json``).

Each standard file has one suite, generated from its definition by :func:`build_suite` and kept
in git; ``python -m ikou.expectations.suites --write`` regenerates them and a test fails when a
committed suite and its definition drift apart. A suite holds:

- the columns of the generated Arrow schema, in order;
- the row count, equal to the run-time parameter ``expected_rows`` (what reconciliation says);
- per item: not null when required (a date: status not ``blank``), code-table membership, the
  pattern (郵便番号, 識別番号, kana), value lengths within 桁数, integer range within 桁数,
  date statuses, and the check digits (custom expectations, :mod:`ikou.expectations.custom`);
- key uniqueness (宛名番号 in the resident file; compound keys elsewhere).

``expectations/suites/cross/atena_reference.json`` is the cross-file suite, run by the gates
on a joined table (see :mod:`ikou.pipeline.gates`).

Every expectation's ``meta`` names the item (number and 項目名称) so reports read well.
:func:`load_suite` turns a JSON file into a ``gx.ExpectationSuite`` and raises
:class:`SuiteError` (a ``ValueError``) naming the file when an expectation is not valid — GX
itself would only log and skip it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ["GX_ANALYTICS_ENABLED"] = "false"  # before great_expectations is imported

import great_expectations as gx  # noqa: E402

import ikou.expectations.custom  # noqa: E402, F401 - registers the custom expectations
from ikou.pipeline.standard import DATE_STATUSES, Standard, load_standard, standard_names  # noqa: E402

__all__ = ["CROSS_SUITE", "SUITES_DIR", "SUITE_VERSION", "SuiteError", "build_suite",
           "load_suite", "suite_path"]

SUITES_DIR = Path(__file__).resolve().parent / "suites"
CROSS_SUITE = SUITES_DIR / "cross" / "atena_reference.json"
#: Bump when the generated shape changes; stored in every suite's meta.
SUITE_VERSION = 1
KANA_REGEX = "^[\u30a1-\u30f6\u30fc\u30fb\u3000]+$"
_ROW_COUNT = "expect_table_row_count_to_equal"


class SuiteError(ValueError):
    """A suite file is missing or invalid."""


def suite_path(target: str) -> Path:
    return SUITES_DIR / target / f"{target}.json"


def _e(type_: str, meta: dict | None = None, **kwargs) -> dict:
    return {"type": type_, "kwargs": kwargs, "meta": meta or {}}


def build_suite(std: Standard) -> dict:
    """The suite (JSON-ready dict) for a standard definition."""
    exps = [
        _e("expect_table_columns_to_match_ordered_list", {"rule": "schema"},
           column_list=list(std.schema(lineage=True).names)),
        _e(_ROW_COUNT, {"rule": "reconciliation"}, value={"$PARAMETER": "expected_rows"}),
    ]
    for it in std.items:
        meta = {"item_no": it.no, "item": it.name}
        col = it.field
        if it.type == "date":
            status = col + "_status"
            allowed = [s for s in DATE_STATUSES
                       if not (it.required and not it.allow_blank and s == "blank")]
            exps.append(_e("expect_column_values_to_not_be_null", meta, column=status))
            exps.append(_e("expect_column_values_to_be_in_set", meta, column=status,
                           value_set=allowed))
            continue
        if it.required:
            exps.append(_e("expect_column_values_to_not_be_null", meta, column=col))
        if it.type == "code":
            exps.append(_e("expect_column_values_to_be_in_set", meta, column=col,
                           value_set=list(std.codes(it).codes)))
        if it.type == "digits":
            exps.append(_e("expect_column_values_to_match_regex", meta, column=col,
                           regex="^[0-9]+$"))
        if it.type == "kana":
            exps.append(_e("expect_column_values_to_match_regex", meta, column=col,
                           regex=KANA_REGEX))
        if it.pattern:
            exps.append(_e("expect_column_values_to_match_regex", meta, column=col,
                           regex=it.pattern))
        if it.type == "int":
            bound = 10 ** it.length - 1
            exps.append(_e("expect_column_values_to_be_between", meta, column=col,
                           min_value=-bound, max_value=bound))
        elif it.type != "code":
            exps.append(_e("expect_column_value_lengths_to_be_between", meta, column=col,
                           min_value=it.length if it.fixed else 1, max_value=it.length))
        if it.check == "atena_mod11":
            exps.append(_e("expect_column_values_to_have_valid_atena_check_digit", meta,
                           column=col, remainder_one="zero"))
        elif it.check == "kojin_bango":
            exps.append(_e("expect_column_values_to_have_valid_kojin_bango_check_digit", meta,
                           column=col))
    if len(std.keys) == 1:
        exps.append(_e("expect_column_values_to_be_unique", {"rule": "key"}, column=std.keys[0]))
    elif std.keys:
        exps.append(_e("expect_compound_columns_to_be_unique", {"rule": "key"},
                       column_list=list(std.keys)))
    return {
        "name": std.name,
        "expectations": exps,
        "meta": {"ikou": {"suite_version": SUITE_VERSION, "standard": std.name,
                          "standard_spec": std.spec, "label": std.label,
                          "generated_from": f"pipeline/data/standard/{std.name}.yaml"}},
    }


def build_cross_suite() -> dict:
    """Cross-file rule, validated on the joined table the gates build: one row per row of a tax
    or insurance output, ``found_in`` = the output where its 宛名番号 exists (null if none)."""
    return {
        "name": "atena_reference",
        "expectations": [
            _e("expect_column_values_to_not_be_null",
               {"rule": "cross-file: 宛名番号 exists in the resident or 住登外 output"},
               column="found_in"),
        ],
        "meta": {"ikou": {"suite_version": SUITE_VERSION,
                          "applies_to": "items with references: resident"}},
    }


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


def _dump(doc: dict) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def expected_files() -> dict[Path, str]:
    """Every suite file as generated from the shipped definitions."""
    out = {suite_path(n): _dump(build_suite(load_standard(n))) for n in standard_names()}
    out[CROSS_SUITE] = _dump(build_cross_suite())
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Regenerate or check the versioned suite files.")
    ap.add_argument("--write", action="store_true", help="write the files (default: check)")
    args = ap.parse_args(argv)
    stale = []
    for path, text in expected_files().items():
        if args.write:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        elif not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(path)
    for p in stale:
        print(f"stale suite: {p}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
