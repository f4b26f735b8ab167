"""The ``pyarrow.compute`` functions of the decoding path, called by name.

``import pyarrow.compute`` builds a Python wrapper with its documentation for each of Arrow's
300-odd compute functions: about 25 ms, a twentieth of ``ikou decode`` on a 100 MB file, and
``Array.take``, ``Array.cast`` and ``RecordBatch.filter`` import it on their first call.  These
functions call the same C++ functions through ``pyarrow._compute.call_function`` with the
options that ``pyarrow.compute`` passes by default, so the results are the same (the tests
compare each with ``pyarrow.compute``).  Code off the decoding path uses ``pyarrow.compute``.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from pyarrow._compute import (
    CastOptions,
    DictionaryEncodeOptions,
    FilterOptions,
    NullOptions,
    ScalarAggregateOptions,
    TakeOptions,
    call_function,
)


def take(values: Any, indices: Any) -> Any:
    """``pc.take(values, indices)`` (``values.take(indices)``), bounds checked."""
    return call_function("take", [values, indices], TakeOptions(boundscheck=True))


def cast(values: Any, target_type: pa.DataType) -> Any:
    """``pc.cast(values, target_type)`` (``values.cast(target_type)``): a safe cast."""
    return call_function("cast", [values], CastOptions.safe(target_type))


def filter_(values: Any, mask: Any) -> Any:
    """``pc.filter(values, mask)`` (``values.filter(mask)``): rows where ``mask`` is true, a
    null in the mask dropping its row."""
    return call_function("filter", [values, mask], FilterOptions("drop"))


def if_else(cond: Any, left: Any, right: Any) -> Any:
    return call_function("if_else", [cond, left, right])


def is_null(values: Any) -> Any:
    return call_function("is_null", [values], NullOptions(nan_is_null=False))


def fill_null(values: Any, fill_value: Any) -> Any:
    """``pc.fill_null``: nulls replaced by ``fill_value`` (a Python value is made a scalar of
    the values' type, as there)."""
    if not isinstance(fill_value, (pa.Array, pa.ChunkedArray, pa.Scalar)):
        fill_value = pa.scalar(fill_value, type=values.type)
    elif values.type != fill_value.type:
        fill_value = pa.scalar(fill_value.as_py(), type=values.type)
    return call_function("coalesce", [values, fill_value])


def equal(left: Any, right: Any) -> Any:
    return call_function("equal", [left, right])


def all_(values: Any) -> Any:
    """``pc.all``: nulls skipped, null for no value."""
    return call_function("all", [values], ScalarAggregateOptions(skip_nulls=True, min_count=1))


def binary_length(values: Any) -> Any:
    return call_function("binary_length", [values])


def dictionary_encode(values: Any) -> Any:
    return call_function("dictionary_encode", [values], DictionaryEncodeOptions("mask"))


def value_counts(values: Any) -> Any:
    return call_function("value_counts", [values])
