"""Type stub of the compiled comparison kernel ``_compare.pyx`` (twin: ``_compare_py``, the same
signatures; ``tests/kernels/test_stubs.py`` keeps them equal)."""

from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa

__all__ = ["utf32_column", "string_levels", "coded_levels", "exact_levels", "date_levels"]

CYTHON_MODULE: int

_Int64s: TypeAlias = npt.NDArray[np.int64]
_Levels: TypeAlias = npt.NDArray[np.int8]
# a string column decoded once: (code points int32, offsets int64 (rows + 1), valid uint8)
_Utf32Column: TypeAlias = tuple[npt.NDArray[np.int32], _Int64s, npt.NDArray[np.uint8]]

def utf32_column(arr: pa.Array) -> _Utf32Column: ...
def string_levels(
    left: _Utf32Column,
    right: _Utf32Column,
    li: _Int64s,
    ri: _Int64s,
    method: int,
    thresholds: npt.NDArray[np.float64],
    prefix_weight: float = 0.1,
) -> tuple[npt.NDArray[np.float64], _Levels]: ...
def coded_levels(
    dictionary: _Utf32Column,
    left_codes: npt.NDArray[np.int32],
    right_codes: npt.NDArray[np.int32],
    li: _Int64s,
    ri: _Int64s,
    method: int,
    thresholds: npt.NDArray[np.float64],
    prefix_weight: float = 0.1,
    part: int = 0,
    space: npt.NDArray[np.int32] | None = None,
    listed: npt.NDArray[np.int32] | None = None,
) -> _Levels: ...
def exact_levels(left_codes: _Int64s, right_codes: _Int64s, li: _Int64s, ri: _Int64s) -> _Levels: ...
def date_levels(
    left_days: npt.NDArray[np.int32],
    left_valid: npt.NDArray[np.uint8],
    right_days: npt.NDArray[np.int32],
    right_valid: npt.NDArray[np.uint8],
    li: _Int64s,
    ri: _Int64s,
    fine: bool = False,
) -> _Levels: ...
