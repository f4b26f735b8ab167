"""Comparison kernel (facade): similarities and comparison levels over candidate pairs.

Imports the compiled kernel ``_compare``; ``IKOU_PURE_PYTHON=1`` selects the pure-Python twin
``_compare_py`` (never a silent fallback: a missing build raises ImportError).

A candidate pair ``k`` is ``(left[li[k]], right[ri[k]])``; ``li``/``ri`` are int64 arrays.

    from ikou.kernels.compare import string_levels, date_levels, exact_levels
    sim, lvl = string_levels(left, right, li, ri, "jaro_winkler", [1.0, 0.92, 0.8])
    # lvl: 3 exact, 2 ≥ 0.92, 1 ≥ 0.8, 0 below, -1 null on either side

Levels are ``k - i`` for the first of ``k`` descending thresholds reached, 0 below all and
``LEVEL_NULL`` (-1) when either value is null. Date levels (``date_levels``) are ``DATE_SAME`` (3),
``DATE_SWAPPED`` (2: day and month swapped), ``DATE_ONE_DIGIT`` (1: one digit of YYYYMMDD differs)
and ``DATE_ELSE`` (0).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from ._loader import load_kernel
from ._match_common import (
    COMPARE_METHODS,
    DATE_ELSE,
    DATE_ONE_DIGIT,
    DATE_SAME,
    DATE_SWAPPED,
    FINE_ELSE,
    FINE_LEVEL_NAMES,
    FINE_ONE_DIGIT,
    FINE_SAME,
    FINE_SWAPPED,
    FINE_WITHIN_YEAR,
    FINE_YEAR_MONTH,
    LEVEL_NULL,
    MatchConfigError,
    check_thresholds,
)

if TYPE_CHECKING:  # type-checked against the compiled module's stub (_compare.pyi)
    from . import _compare as _impl

    KERNEL_IMPL: str
else:
    _impl, KERNEL_IMPL = load_kernel("_compare")

__all__ = [
    "COMPARE_METHODS",
    "DATE_ELSE",
    "DATE_ONE_DIGIT",
    "DATE_SAME",
    "DATE_SWAPPED",
    "FINE_ELSE",
    "FINE_LEVEL_NAMES",
    "FINE_ONE_DIGIT",
    "FINE_SAME",
    "FINE_SWAPPED",
    "FINE_WITHIN_YEAR",
    "FINE_YEAR_MONTH",
    "KERNEL_IMPL",
    "LEVEL_NULL",
    "CodedStrings",
    "DateColumn",
    "PARTS",
    "StringColumn",
    "coded_levels",
    "date_levels",
    "exact_codes",
    "exact_levels",
    "string_levels",
]

_STRING_METHODS = {"exact": 0, "jaro_winkler": 1, "levenshtein": 2}

# A column as the functions take it: an Arrow array, a chunked array, or Python values.
_Values: TypeAlias = pa.Array | pa.ChunkedArray | Sequence[Any]
_Int64s: TypeAlias = npt.NDArray[np.int64]
_Levels: TypeAlias = npt.NDArray[np.int8]


def _array(values: _Values) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if isinstance(values, pa.Array):
        return values
    return pa.array(values)


def _string_array(values: _Values) -> pa.Array:
    arr = _array(values)
    if pa.types.is_large_string(arr.type) or pa.types.is_string_view(arr.type):
        arr = arr.cast(pa.string())
    if not pa.types.is_string(arr.type):
        raise MatchConfigError(f"string comparison needs string columns, got {arr.type}")
    return arr


class StringColumn:
    """A string column decoded once to code points, for many comparisons."""

    __slots__ = ("decoded", "size")

    decoded: tuple[npt.NDArray[np.int32], _Int64s, npt.NDArray[np.uint8]]
    size: int

    def __init__(self, values: _Values) -> None:
        arr = _string_array(values)
        self.decoded = _impl.utf32_column(arr)
        self.size = len(arr)


def _indexes(li: npt.ArrayLike, ri: npt.ArrayLike) -> tuple[_Int64s, _Int64s]:
    li = np.ascontiguousarray(li, dtype=np.int64)
    ri = np.ascontiguousarray(ri, dtype=np.int64)
    if li.ndim != 1 or li.shape != ri.shape:
        raise ValueError("li and ri must be 1-D arrays of the same length")
    return li, ri


def string_levels(left: _Values | StringColumn, right: _Values | StringColumn,
                  li: npt.ArrayLike, ri: npt.ArrayLike, method: str = "jaro_winkler",
                  thresholds: Iterable[float] = (1.0,),
                  prefix_weight: float = 0.1) -> tuple[npt.NDArray[np.float64], _Levels]:
    """Similarity (float64, NaN for nulls) and level (int8) of each pair of strings.

    ``method`` is ``exact``, ``jaro_winkler`` or ``levenshtein`` (normalised similarity), all on
    code points. ``left``/``right`` are string arrays or :class:`StringColumn` (decode once).
    """
    if method not in _STRING_METHODS:
        raise MatchConfigError(
            f"unknown string comparison {method!r}; known: {sorted(_STRING_METHODS)}"
        )
    if not 0.0 <= prefix_weight <= 0.25:
        raise MatchConfigError("prefix_weight must lie in [0, 0.25]")
    th = check_thresholds(thresholds)
    left = left if isinstance(left, StringColumn) else StringColumn(left)
    right = right if isinstance(right, StringColumn) else StringColumn(right)
    li, ri = _indexes(li, ri)
    return _impl.string_levels(
        left.decoded, right.decoded, li, ri, _STRING_METHODS[method], th, prefix_weight
    )


PARTS = {None: 0, "surname": 1, "given": 2}


class CodedStrings:
    """Two string columns coded by one dictionary of their distinct values, decoded once.

    ``codes_left`` / ``codes_right`` (int32, -1 null) index ``dictionary`` (the distinct
    strings, :func:`utf32_column` form): a pair's comparison reads its two dictionary strings —
    few and close together in memory — and equal codes are equal strings. ``space`` /
    ``listed`` (int32 per dictionary string, -1 none): where a name's space is and where its
    listed surname ends (code points), for comparing name parts (:func:`coded_levels`)."""

    __slots__ = ("dictionary", "codes_left", "codes_right", "space", "listed", "values")

    def __init__(self, left, right):
        a, b = _string_array(left), _string_array(right)
        encoded = pa.chunked_array([a, b], type=pa.string()).dictionary_encode()
        chunks = encoded.chunks
        self.values = chunks[0].dictionary if chunks else pa.array([], pa.string())
        codes = [c.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)
                 for c in chunks]
        both = np.concatenate(codes) if codes else np.zeros(0, np.int32)
        self.codes_left = np.ascontiguousarray(both[: len(a)])
        self.codes_right = np.ascontiguousarray(both[len(a):])
        self.dictionary = _impl.utf32_column(_string_array(self.values))
        self.space = self.listed = None

    def set_parts(self, space, listed) -> None:
        """The split positions of the dictionary's names (see the class)."""
        self.space = np.ascontiguousarray(space, dtype=np.int32)
        self.listed = np.ascontiguousarray(listed, dtype=np.int32)


def coded_levels(strings: CodedStrings, li, ri, method: str = "jaro_winkler",
                 thresholds=(1.0,), prefix_weight: float = 0.1, part: str | None = None):
    """Level (int8) of each pair of :class:`CodedStrings` (as :func:`string_levels`' levels).

    ``part="surname"`` / ``"given"`` compares that part of the names: each name is split at
    its space; a name without one is split where the other name of the pair has its space
    (佐藤太郎 against 佐藤 一郎: 佐藤 | 太郎), else after its listed surname, else as the other
    name's listed surname; a pair where neither applies to a name gets ``LEVEL_NULL``."""
    if method not in _STRING_METHODS:
        raise MatchConfigError(
            f"unknown string comparison {method!r}; known: {sorted(_STRING_METHODS)}"
        )
    if part not in PARTS:
        raise MatchConfigError(f"unknown name part {part!r}; known: surname, given")
    if part is not None and strings.space is None:
        raise MatchConfigError("comparing name parts needs the split positions (set_parts)")
    th = check_thresholds(thresholds)
    li, ri = _indexes(li, ri)
    return _impl.coded_levels(strings.dictionary, strings.codes_left, strings.codes_right,
                              li, ri, _STRING_METHODS[method], th, prefix_weight, PARTS[part],
                              strings.space, strings.listed)


def exact_codes(left: _Values, right: _Values) -> tuple[_Int64s, _Int64s]:
    """Integer codes (int64) of two columns from one shared dictionary; null → -1."""
    a, b = _array(left), _array(right)
    if a.type != b.type:
        try:
            b = b.cast(a.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise MatchConfigError(f"cannot compare {a.type} with {b.type}: {exc}") from None
    if pa.types.is_dictionary(a.type):
        a, b = a.dictionary_decode(), b.dictionary_decode()
    if len(a) + len(b) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    encoded = pa.chunked_array([a, b], type=a.type).dictionary_encode()
    codes = np.concatenate(
        [c.indices.fill_null(-1).to_numpy(zero_copy_only=False) for c in encoded.chunks]
    ).astype(np.int64)
    return np.ascontiguousarray(codes[: len(a)]), np.ascontiguousarray(codes[len(a):])


def exact_levels(left: _Values | _Int64s, right: _Values | _Int64s, li: npt.ArrayLike,
                 ri: npt.ArrayLike) -> _Levels:
    """Level 1 where the values agree, 0 where not, -1 where either is null (any Arrow type).

    ``left``/``right`` may also be the int64 code arrays from :func:`exact_codes`.
    """
    if isinstance(left, np.ndarray) and isinstance(right, np.ndarray):
        lc = np.ascontiguousarray(left, dtype=np.int64)
        rc = np.ascontiguousarray(right, dtype=np.int64)
    else:
        lc, rc = exact_codes(left, right)
    li, ri = _indexes(li, ri)
    if len(li) and (li.min() < 0 or li.max() >= len(lc) or ri.min() < 0 or ri.max() >= len(rc)):
        raise IndexError("pair index out of range")
    return _impl.exact_levels(lc, rc, li, ri)


def _days(values: _Values) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.uint8]]:
    arr = _array(values)
    if pa.types.is_timestamp(arr.type) or pa.types.is_date64(arr.type):
        arr = arr.cast(pa.date32())
    if not pa.types.is_date32(arr.type):
        raise MatchConfigError(f"date comparison needs date32 columns, got {arr.type}")
    valid = np.ascontiguousarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=np.uint8)
    days = arr.cast(pa.int32()).fill_null(0).to_numpy(zero_copy_only=False)
    return np.ascontiguousarray(days, dtype=np.int32), valid


class DateColumn:
    """A date column as days since 1970 (int32) and validity, converted once."""

    __slots__ = ("days", "valid")

    def __init__(self, values):
        self.days, self.valid = _days(values)


def date_levels(left: _Values, right: _Values, li: npt.ArrayLike, ri: npt.ArrayLike,
                fine: bool = False) -> _Levels:
    """Date level of each pair: 3 same, 2 day/month swapped, 1 one digit off, 0 else, -1 null.

    ``fine=True``: 5 same, 4 day/month swapped, 3 one digit off, 2 same year and month,
    1 within a year (365 days), 0 else (``FINE_*``). ``left``/``right``: date arrays or
    :class:`DateColumn`."""
    ld, lv = (left.days, left.valid) if isinstance(left, DateColumn) else _days(left)
    rd, rv = (right.days, right.valid) if isinstance(right, DateColumn) else _days(right)
    li, ri = _indexes(li, ri)
    if len(li) and (li.min() < 0 or li.max() >= len(ld) or ri.min() < 0 or ri.max() >= len(rd)):
        raise IndexError("pair index out of range")
    return _impl.date_levels(ld, lv, rd, rv, li, ri, bool(fine))
