"""Japanese-aware text normalisation for matching (facade).

Imports the compiled kernel ``_normalize``; ``IKOU_PURE_PYTHON=1`` selects the pure-Python twin
``_normalize_py`` instead (never a silent fallback: a missing build raises ImportError).

    from ikou.kernels.normalize import Normalizer, NormalizeOptions, load_variant_table
    norm = Normalizer(NormalizeOptions(voiced="fold", small=True), variants=load_variant_table(p))
    norm(pa.array(["ｲｲﾂﾞｶ　ﾀﾛｳ"]))   # -> ["イイツカ タロウ"]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, overload

import pyarrow as pa

from . import _normalize_py
from ._loader import load_kernel
from ._match_common import (
    MatchConfigError,
    NormalizeOptions,
    NormalizePlan,
    VariantTableError,
    build_plan,
    load_variant_table,
)

if TYPE_CHECKING:  # type-checked against the compiled module's stub (_normalize.pyi)
    from . import _normalize as _impl

    KERNEL_IMPL: str
else:
    _impl, KERNEL_IMPL = load_kernel("_normalize")

__all__ = [
    "KERNEL_IMPL",
    "MatchConfigError",
    "NormalizeOptions",
    "Normalizer",
    "VariantTableError",
    "load_variant_table",
]

# Input larger than this is processed in slices so output offsets stay int32.
_SLICE_BYTES = 256 << 20


class Normalizer:
    """A normalisation with fixed options; call it on Arrow string arrays or on a ``str``."""

    def __init__(
        self, options: NormalizeOptions | None = None, variants: dict[int, int] | None = None
    ) -> None:
        self.options = options or NormalizeOptions()
        self.plan: NormalizePlan = build_plan(self.options, variants)
        self._py_cache: dict[str, list[int]] | None = None

    @overload
    def __call__(self, values: str) -> str: ...
    @overload
    def __call__(
        self, values: pa.Array | pa.ChunkedArray | Sequence[str | None]
    ) -> pa.Array | pa.ChunkedArray: ...

    def __call__(
        self, values: str | pa.Array | pa.ChunkedArray | Sequence[str | None]
    ) -> str | pa.Array | pa.ChunkedArray:
        if isinstance(values, str):
            return self.normalize_str(values)
        if isinstance(values, pa.ChunkedArray):
            return pa.chunked_array([self._array(c) for c in values.chunks], type=pa.string())
        if not isinstance(values, pa.Array):
            values = pa.array(values, type=pa.string())
        return self._array(values)

    def normalize_str(self, text: str) -> str:
        if self._py_cache is None:
            p = self.plan
            self._py_cache = {
                "table": p.table.tolist(),
                "voiced": p.voiced.tolist(),
                "semi": p.semi.tolist(),
                "vowel": p.vowel.tolist(),
            }
        return _normalize_py.normalize_str(text, self.plan, self._py_cache)

    def _array(self, arr: pa.Array) -> pa.Array:
        if pa.types.is_large_string(arr.type) or pa.types.is_string_view(arr.type):
            arr = arr.cast(pa.string())
        elif not pa.types.is_string(arr.type):
            raise MatchConfigError(f"normalisation needs a string array, got {arr.type}")
        limit = max(1, int(_SLICE_BYTES / (3 * self.plan.growth)))
        if arr.nbytes <= limit or len(arr) < 2:
            return _impl.normalize_array(arr, self.plan)
        parts, start, n = [], 0, len(arr)
        step = max(1, int(n * limit / arr.nbytes))
        while start < n:
            parts.append(_impl.normalize_array(arr.slice(start, step), self.plan))
            start += step
        return pa.concat_arrays(parts)
