"""Type stub of the compiled normalisation kernel ``_normalize.pyx`` (twin: ``_normalize_py``,
the same signature; ``tests/kernels/test_stubs.py`` keeps them equal)."""

import pyarrow as pa

from ._match_common import NormalizePlan

__all__ = ["normalize_array"]

CYTHON_MODULE: int

def normalize_array(arr: pa.Array, plan: NormalizePlan) -> pa.Array: ...
