"""Generating the versioned expectation suites from the standard definitions.

``python -m ikou.pipeline.steps.suitegen --write`` regenerates ``expectations/suites/*/*.json`` from
``pipeline/data/standard/*.yaml``; without ``--write`` it checks that the committed files are
current (exit 1 naming the stale ones). It lives here, not in ``ikou.expectations``, because it
reads the definitions: ``ikou.pipeline`` may use ``ikou.expectations``, never the other way round.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ikou.expectations.suites import CROSS_SUITE, SUITE_VERSION, suite_path
from ikou.pipeline.config.standard import DATE_STATUSES, Standard, load_standard, standard_names

__all__ = ["KANA_REGEX", "build_cross_suite", "build_suite", "expected_files", "main"]

KANA_REGEX = "^[\u30a1-\u30f6\u30fc\u30fb\u3000]+$"
_ROW_COUNT = "expect_table_row_count_to_equal"


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
