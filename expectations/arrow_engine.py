"""Validating an expectation suite on a pyarrow table: metrics computed in Arrow, results by GX.

Great Expectations' pandas engine spends most of a large validation in per-metric machinery
(dependency graphs of pydantic objects, whole-dataframe filters for every column condition,
``astype(str)`` copies) and needs a pandas copy of every staged table. Here the *metrics* an
expectation asks for (``table.row_count``, ``table.columns``, ``column_values.nonnull.
unexpected_count``, ``<map metric>.unexpected_count`` / ``.unexpected_index_list`` /
``.filtered_row_count``) are computed with ``pyarrow.compute`` straight from the staged table,
and everything else is Great Expectations' own code:

- the suite is a ``gx.ExpectationSuite``; suite parameters are substituted by
  ``ExpectationConfiguration.process_suite_parameters`` and the expectations are ordered by
  column exactly as GX's validator orders them;
- success (``mostly``), the result dictionary (``_format_map_output``: counts, percentages,
  ``partial_unexpected_index_list``) and the ``ExpectationValidationResult`` come from each
  expectation's ``_validate`` / ``_build_evr``; suite statistics from
  ``calc_validation_statistics``; the ``ExpectationSuiteValidationResult`` is stored in the
  context's validation results store and rendered by GX's Data Docs site builder.

The metric semantics are GX's pandas semantics: nulls are skipped by every condition except
not-null; regex conditions run through pandas' ``str.contains`` (the call GX makes, RE2 with
pandas' own fallbacks to ``re``); lengths are code points; uniqueness counts every non-null
value seen more than once; compound uniqueness ignores rows whose key columns are all null. Unexpected
*values* are never computed (results exclude them anyway); unexpected rows are identified
only by the index columns the caller names, capped at ``partial_unexpected_count``.

:func:`validate_table` returns ``None`` when a suite holds something this module does not
compute (another expectation type, a missing column, a row condition, ``mostly`` on a type
not covered, a value set whose type does not fit the column): the caller then validates that
suite with GX's pandas engine instead. ``tests/test_gates.py`` checks that both give the same
sanitized results on planted failures of every expectation type.
"""

from __future__ import annotations

import os
import re
import uuid
from datetime import datetime, timezone

os.environ["GX_ANALYTICS_ENABLED"] = "false"  # before great_expectations is imported

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

from ikou.expectations.checkdigits import valid_kojin_bango, valid_mod11  # noqa: E402
from ikou.expectations.context import gx  # noqa: E402

__all__ = ["SUPPORTED", "validate_table"]

_NONNULL = "column_values.nonnull"


class _Unsupported(Exception):
    """This suite needs GX's own engine."""


def _combined(table, column: str, copy: bool = False) -> pa.Array:
    if column not in table.column_names:
        raise _Unsupported(f"column {column!r} not in table")
    col = table.column(column)
    if col.num_chunks != 1:
        return col.combine_chunks()
    arr = col.chunk(0)
    # A kept column is copied out of a memory-mapped file, so the file can be unmapped.
    return pa.concat_arrays([arr, arr.slice(0, 0)]) if copy else arr


class _Columns:
    """One combined column at a time (expectations arrive grouped by column), the index
    columns kept: a staged table has one chunk per Beam block."""

    def __init__(self, table: pa.Table, keep: list[str]):
        self.table = table
        self.keep = set(keep)
        self.kept: dict[str, pa.Array] = {}
        self.last: tuple[str, pa.Array] | None = None

    def __call__(self, column: str) -> pa.Array:
        if column in self.kept:
            return self.kept[column]
        if self.last is not None and self.last[0] == column:
            return self.last[1]
        self.last = None  # drop the previous column (and its mapping) first
        arr = _combined(self.table, column, copy=column in self.keep)
        if column in self.keep:
            self.kept[column] = arr
        else:
            self.last = (column, arr)
        return arr


def _on_values(arr: pa.Array, fn) -> np.ndarray:
    """``fn`` (Arrow array of non-null values → numpy bool) evaluated per row; dictionary
    arrays are evaluated once per dictionary entry. Returns a bool array over all rows (null
    rows: False - they are never unexpected for a non-null condition)."""
    if pa.types.is_dictionary(arr.type):
        per_entry = np.asarray(fn(arr.dictionary), dtype=bool) if len(arr.dictionary) else \
            np.zeros(0, dtype=bool)
        idx = arr.indices.to_numpy(zero_copy_only=False)
        if arr.null_count:
            valid = arr.is_valid().to_numpy(zero_copy_only=False)
            out = np.zeros(len(arr), dtype=bool)
            out[valid] = per_entry[idx[valid].astype(np.int64)]
            return out
        return per_entry[idx.astype(np.int64)]
    if arr.null_count:
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
        out = np.zeros(len(arr), dtype=bool)
        out[valid] = np.asarray(fn(pc.drop_null(arr)), dtype=bool)
        return out
    return np.asarray(fn(arr), dtype=bool)


def _np(result) -> np.ndarray:
    if isinstance(result, (pa.Array, pa.ChunkedArray)):
        return pc.fill_null(result, False).to_numpy(zero_copy_only=False)
    return np.asarray(result)


def _string_values(arr: pa.Array) -> pa.Array:
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        raise _Unsupported(f"string condition on {arr.type}")
    return arr


# ---------------------------------------------------------------- map conditions (unexpected)
# Each returns a numpy bool array "row is unexpected" for the non-null rows (False for nulls).

def _in_set(arr: pa.Array, kwargs: dict) -> np.ndarray:
    value_set = kwargs.get("value_set")
    if value_set is None:
        return np.zeros(len(arr), dtype=bool)
    base = arr.type.value_type if pa.types.is_dictionary(arr.type) else arr.type
    try:
        values = pa.array(list(value_set), type=base)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
        raise _Unsupported(f"value_set does not fit {base}") from exc
    if pa.types.is_string(base) and not all(isinstance(v, str) for v in value_set):
        raise _Unsupported("non-string value in value_set")
    return _on_values(arr, lambda v: ~_np(pc.is_in(v, value_set=values)))


#: Anchored ASCII character-class patterns (``^[0-9]+$``, ``^[0-9]{7}$``,
#: ``^[0-9A-Za-z]{1,15}$``) have an exact Arrow equivalent: ``ascii_is_decimal`` /
#: ``ascii_is_alnum`` (true iff non-empty and every character is in the class) and a length
#: range. pandas runs such patterns with RE2, whose ``$`` matches only at the very end, unless a
#: value holds a newline (then Python ``re``, whose ``$`` also matches before a final newline):
#: the fast path is taken only when no value does.
_ASCII_CLASS = re.compile(r"\^\[(0-9|0-9A-Za-z)\](\+|\{(\d+)\}|\{(\d+),(\d+)\})\$")
_CLASS_KERNEL = {"0-9": pc.ascii_is_decimal, "0-9A-Za-z": pc.ascii_is_alnum}


def _ascii_class(regex: str):
    m = _ASCII_CLASS.fullmatch(regex)
    if not m:
        return None
    kernel = _CLASS_KERNEL[m.group(1)]
    if m.group(2) == "+":
        lo, hi = 1, None
    elif m.group(3) is not None:
        lo = hi = int(m.group(3))
    else:
        lo, hi = int(m.group(4)), int(m.group(5))
    if lo < 1 or (hi is not None and hi < lo):
        return None

    def match(values: pa.Array) -> np.ndarray:
        ok = _np(kernel(values))
        if lo > 1 or hi is not None:
            n = pc.binary_length(values).to_numpy(zero_copy_only=False)  # ASCII: bytes = chars
            ok &= (n >= lo) & (n <= (hi if hi is not None else n.max(initial=0)))
        return ok

    return match


def _match_regex(arr: pa.Array, kwargs: dict) -> np.ndarray:
    regex = kwargs["regex"]
    fast = _ascii_class(regex)

    def fn(values):
        values = _string_values(values)
        if fast is not None and not pc.any(pc.match_substring(values, "\n")).as_py():
            return ~fast(values)
        # GX: column.astype(str).str.contains(regex) - the same pandas call on the same values
        series = pa.chunked_array([values]).to_pandas()
        return ~series.astype(str).str.contains(regex).to_numpy(dtype=bool, na_value=False)

    if fast is None and not pa.types.is_dictionary(arr.type) and len(arr) > 4096:
        # A regex per distinct value when values repeat (names, kana): the same answers.
        encoded = pc.dictionary_encode(arr)
        if len(encoded.dictionary) * 2 <= len(arr):
            arr = encoded
    return _on_values(arr, fn)


def _value_lengths_between(arr: pa.Array, kwargs: dict) -> np.ndarray:
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    if lo is None or hi is None or kwargs.get("strict_min") or kwargs.get("strict_max"):
        raise _Unsupported("open or strict length bounds")

    def fn(values):
        n = pc.utf8_length(_string_values(values)).to_numpy(zero_copy_only=False)
        return ~((n >= lo) & (n <= hi))

    return _on_values(arr, fn)


def _between(arr: pa.Array, kwargs: dict) -> np.ndarray:
    lo, hi = kwargs.get("min_value"), kwargs.get("max_value")
    if (lo is None or hi is None or kwargs.get("strict_min") or kwargs.get("strict_max")
            or not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type))
            or isinstance(lo, str) or isinstance(hi, str)):
        raise _Unsupported("between other than closed numeric bounds on a numeric column")

    def fn(values):
        v = values.to_numpy(zero_copy_only=False)
        return ~((v >= lo) & (v <= hi))

    return _on_values(arr, fn)


def _unique(arr: pa.Array, kwargs: dict) -> np.ndarray:
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    counts = pc.value_counts(pc.drop_null(arr)) if arr.null_count else pc.value_counts(arr)
    dup = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    if len(dup) == 0:
        return np.zeros(len(arr), dtype=bool)
    return _np(pc.is_in(arr, value_set=dup)) & arr.is_valid().to_numpy(zero_copy_only=False)


def _atena_check_digit(arr: pa.Array, kwargs: dict) -> np.ndarray:
    remainder_one = kwargs.get("remainder_one", "zero")
    return _on_values(arr, lambda v: ~valid_mod11(v, remainder_one))


def _kojin_bango_check_digit(arr: pa.Array, kwargs: dict) -> np.ndarray:
    return _on_values(arr, lambda v: ~valid_kojin_bango(v))


#: expectation type → condition over the column (unexpected rows among the non-null ones)
_COLUMN_CONDITIONS = {
    "expect_column_values_to_be_in_set": _in_set,
    "expect_column_values_to_match_regex": _match_regex,
    "expect_column_value_lengths_to_be_between": _value_lengths_between,
    "expect_column_values_to_be_between": _between,
    "expect_column_values_to_be_unique": _unique,
    "expect_column_values_to_have_valid_atena_check_digit": _atena_check_digit,
    "expect_column_values_to_have_valid_kojin_bango_check_digit": _kojin_bango_check_digit,
}
SUPPORTED = frozenset(_COLUMN_CONDITIONS) | {
    "expect_column_values_to_not_be_null", "expect_table_columns_to_match_ordered_list",
    "expect_table_row_count_to_equal", "expect_compound_columns_to_be_unique"}


# ---------------------------------------------------------------- metrics

class _Metrics:
    def __init__(self, table: pa.Table, index_cols: list[str], cap: int):
        self.table = table
        self.rows = table.num_rows
        self.index_cols = index_cols
        self.cap = cap
        self.column = _Columns(table, index_cols)

    def index_list(self, unexpected: np.ndarray) -> list:
        """GX's pandas ``unexpected_index_list`` shape for named index columns with
        ``exclude_unexpected_values``: ``[{column: [values...]}]``, here the first ``cap`` rows
        (GX keeps the first ``partial_unexpected_count`` of them in the result)."""
        if not self.index_cols:
            raise _Unsupported("no index columns")
        rows = np.flatnonzero(unexpected)[: self.cap]
        if len(rows) == 0:
            return []
        take = pa.array(rows, pa.int64())
        out = {}
        for col in self.index_cols:
            out[col] = self.column(col).take(take).to_pylist()
        return [out]

    def column_map(self, exp, cond, kwargs: dict) -> dict:
        arr = self.column(exp.column)
        unexpected = cond(arr, kwargs)
        name = exp.map_metric
        return {
            "table.row_count": self.rows,
            f"{_NONNULL}.unexpected_count": arr.null_count,
            f"{name}.unexpected_count": int(np.count_nonzero(unexpected)),
            f"{name}.unexpected_index_list": self.index_list(unexpected),
        }

    def not_null(self, exp) -> dict:
        arr = self.column(exp.column)
        nulls = (arr.is_null().to_numpy(zero_copy_only=False) if arr.null_count
                 else np.zeros(len(arr), dtype=bool))
        return {
            "table.row_count": self.rows,
            f"{_NONNULL}.unexpected_count": arr.null_count,
            f"{exp.map_metric}.unexpected_count": arr.null_count,
            f"{exp.map_metric}.unexpected_index_list": self.index_list(nulls),
        }

    def compound_unique(self, exp) -> dict:
        cols = list(exp.column_list)
        ignore = getattr(exp, "ignore_row_if", "all_values_are_missing")
        if ignore not in ("all_values_are_missing", "any_value_is_missing", "never"):
            raise _Unsupported(f"ignore_row_if {ignore!r}")
        arrays = [self.column(c) for c in cols]
        valid = np.stack([a.is_valid().to_numpy(zero_copy_only=False) for a in arrays])
        keep = {"all_values_are_missing": valid.any(axis=0),
                "any_value_is_missing": valid.all(axis=0),
                "never": np.ones(self.rows, dtype=bool)}[ignore]
        key = np.zeros(self.rows, dtype=np.int64)
        radix = 1
        for a in arrays:  # mixed-radix row key; nulls are one more code (pandas: NaN == NaN)
            enc = pc.dictionary_encode(a.cast(a.type.value_type)
                                       if pa.types.is_dictionary(a.type) else a)
            size = len(enc.dictionary) + 1
            codes = pc.fill_null(enc.indices, size - 1).to_numpy(zero_copy_only=False)
            if radix * size >= 2**62:
                raise _Unsupported("compound key too wide")
            key += codes.astype(np.int64) * radix
            radix *= size
        kept = key[keep]
        values, counts = np.unique(kept, return_counts=True)
        dup = values[counts > 1]
        unexpected = np.zeros(self.rows, dtype=bool)
        if len(dup):
            unexpected[np.flatnonzero(keep)] = np.isin(kept, dup)
        name = exp.map_metric
        return {
            "table.row_count": self.rows,
            f"{name}.unexpected_count": int(np.count_nonzero(unexpected)),
            f"{name}.filtered_row_count": int(np.count_nonzero(keep)),
            f"{name}.unexpected_index_list": self.index_list(unexpected),
        }

    def for_expectation(self, exp, kwargs: dict) -> dict:
        t = exp.expectation_type
        if getattr(exp, "row_condition", None):
            raise _Unsupported("row_condition")
        if t == "expect_table_columns_to_match_ordered_list":
            return {"table.columns": list(self.table.column_names)}
        if t == "expect_table_row_count_to_equal":
            return {"table.row_count": self.rows}
        if t == "expect_column_values_to_not_be_null":
            return self.not_null(exp)
        if t == "expect_compound_columns_to_be_unique":
            return self.compound_unique(exp)
        if t in _COLUMN_CONDITIONS:
            return self.column_map(exp, _COLUMN_CONDITIONS[t], kwargs)
        raise _Unsupported(f"expectation type {t}")


def _ordered(configs: list) -> list:
    """GX's validator order: grouped by column in order of first appearance (no column last
    group in its own first-appearance position), see ``Validator.process_expectations_for_validation``."""
    groups: dict[str, list] = {}
    for cfg in configs:
        col = cfg.kwargs.get("column")
        groups.setdefault(col if isinstance(col, str) else "_nocolumn", []).append(cfg)
    return [cfg for group in groups.values() for cfg in group]


def validate_table(table, suite: gx.ExpectationSuite, *, batch_id: str,
                   asset_name: str, datasource_name: str, result_format: dict,
                   suite_parameters: dict | None = None):
    """Validate ``table`` (a ``pa.Table``, or anything with ``column_names``, ``num_rows`` and
    ``column(name)``, e.g. a staged file read a column at a time) against ``suite``; an
    ``ExpectationSuiteValidationResult`` or None (the suite needs GX's own engine, see the
    module docstring)."""
    try:
        from great_expectations import __version__ as gx_version
        from great_expectations.core import ExpectationSuiteValidationResult
        from great_expectations.validator.validator import calc_validation_statistics
    except ImportError:  # a GX build whose internals moved: GX's own engine instead
        return None

    index_cols = list(result_format.get("unexpected_index_column_names") or [])
    metrics = _Metrics(table, index_cols, int(result_format.get("partial_unexpected_count", 20)))
    configs = _ordered(suite.expectation_configurations)
    results = []
    runtime = {"result_format": dict(result_format)}
    try:
        for cfg in configs:
            if cfg.type not in SUPPORTED:
                raise _Unsupported(f"expectation type {cfg.type}")
            cfg.process_suite_parameters(suite_parameters=suite_parameters or {},
                                         interactive_evaluation=True, data_context=None)
            cfg.kwargs["batch_id"] = batch_id
            exp = cfg.to_domain_obj()
            values = metrics.for_expectation(exp, cfg.kwargs)
            raw = exp._validate(metrics=values, runtime_configuration=dict(runtime))
            evr = exp._build_evr(raw_response=raw)
            results.append(evr)
    except (_Unsupported, AttributeError):  # AttributeError: a GX build whose internals moved
        return None
    stats = calc_validation_statistics(results)
    now = datetime.now(timezone.utc)
    return ExpectationSuiteValidationResult(
        results=results, success=stats.success, suite_name=suite.name,
        statistics={
            "evaluated_expectations": stats.evaluated_expectations,
            "successful_expectations": stats.successful_expectations,
            "unsuccessful_expectations": stats.unsuccessful_expectations,
            "success_percent": stats.success_percent,
        },
        meta={
            "great_expectations_version": gx_version,
            "batch_spec": {"batch_data": "pyarrow.Table", "engine": "ikou.expectations.arrow_engine"},
            "batch_markers": {"ge_load_time": now.strftime("%Y%m%dT%H%M%S.%fZ")},
            "active_batch_definition": {
                "datasource_name": datasource_name, "data_connector_name": "fluent",
                "data_asset_name": asset_name, "batch_identifiers": {"table": "<ARROW TABLE>"}},
            "validation_id": str(uuid.uuid4()),
            "run_id": {"run_name": None, "run_time": now.isoformat()},
            "validation_time": now.isoformat(),
        },
    )
