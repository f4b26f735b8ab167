"""Custom Great Expectations 1.x expectations for municipal identifiers.

- ``expect_column_values_to_have_valid_atena_check_digit`` (宛名番号 / 世帯番号, mod 11 with
  weights 2–7; ``remainder_one`` = ``"zero"`` | ``"reject"``, unverified, configurable)
- ``expect_column_values_to_have_valid_kojin_bango_check_digit`` (個人番号, 12 digits)

Each is a ``ColumnMapExpectation`` backed by a ``ColumnMapMetricProvider`` whose pandas
condition is vectorised (:mod:`ikou.expectations.checkdigits`). Importing this module registers
both with GX, so suites loaded from JSON can name them. Nulls are not checked (GX skips them in
map metrics): a required identifier is checked by ``expect_column_values_to_not_be_null``.

The cross-file rule (every 宛名番号 in the tax and insurance outputs exists in the resident or
住登外 output) is not a custom expectation: :mod:`ikou.pipeline.steps.gates` validates a joined table
(see ``expectations/suites/cross/atena_reference.json`` and docs/standard-layouts.md).
"""

from __future__ import annotations

import os

os.environ["GX_ANALYTICS_ENABLED"] = "false"  # before great_expectations is imported

from typing import ClassVar, Literal  # noqa: E402

import pandas as pd  # noqa: E402
from great_expectations.execution_engine import PandasExecutionEngine  # noqa: E402
from great_expectations.expectations.expectation import ColumnMapExpectation  # noqa: E402
from great_expectations.expectations.metrics.map_metric_provider import (  # noqa: E402
    ColumnMapMetricProvider,
    column_condition_partial,
)

from ikou.expectations.checkdigits import valid_kojin_bango, valid_mod11  # noqa: E402

__all__ = [
    "ExpectColumnValuesToHaveValidAtenaCheckDigit",
    "ExpectColumnValuesToHaveValidKojinBangoCheckDigit",
]


class ColumnValuesValidAtenaCheckDigit(ColumnMapMetricProvider):
    condition_metric_name = "column_values.ikou_valid_atena_check_digit"
    condition_value_keys = ("remainder_one",)

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, remainder_one="zero", **kwargs):
        return pd.Series(valid_mod11(column, remainder_one), index=column.index)


class ColumnValuesValidKojinBango(ColumnMapMetricProvider):
    condition_metric_name = "column_values.ikou_valid_kojin_bango"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column, **kwargs):
        return pd.Series(valid_kojin_bango(column), index=column.index)


class ExpectColumnValuesToHaveValidAtenaCheckDigit(ColumnMapExpectation):
    """Expect 宛名番号 / 世帯番号 values to end in their mod-11 check digit (weights 2–7)."""

    remainder_one: Literal["zero", "reject"] = "zero"

    map_metric = "column_values.ikou_valid_atena_check_digit"
    success_keys = ("remainder_one", "mostly")
    args_keys = ("column",)
    library_metadata: ClassVar[dict] = {"maturity": "experimental", "tags": ["ikou"],
                                        "contributors": ["ikou"]}


class ExpectColumnValuesToHaveValidKojinBangoCheckDigit(ColumnMapExpectation):
    """Expect 個人番号 values to be 12 digits ending in their check digit (番号法 施行令)."""

    map_metric = "column_values.ikou_valid_kojin_bango"
    success_keys = ("mostly",)
    args_keys = ("column",)
    library_metadata: ClassVar[dict] = {"maturity": "experimental", "tags": ["ikou"],
                                        "contributors": ["ikou"]}
