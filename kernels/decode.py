"""The decoding kernel's facade (as ``compare`` and ``normalize`` are theirs): the compiled
``_decode`` module, or its pure-Python twin ``_decode_py`` only when ``IKOU_PURE_PYTHON=1`` asks
for it (:func:`ikou.kernels._loader.load_kernel`); ``KERNEL_IMPL`` says which.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._decode_common import (
    WAREKI_STATUSES,
    BlockError,
    DecodeErrors,
    DecodePlan,
    DecodeResult,
    ErrorCode,
    FieldSpec,
    PlanError,
    format_error,
    format_errors,
)
from ._encodings import ENCODINGS, EncodingError, canonical_encoding, get_encoding
from ._loader import load_kernel

if TYPE_CHECKING:  # type-checked against the compiled module's stub (_decode.pyi)
    from . import _decode as _decode_impl

    KERNEL_IMPL: str
else:
    _decode_impl, KERNEL_IMPL = load_kernel("_decode")
decode_block = _decode_impl.decode_block

__all__ = [
    "ENCODINGS",
    "KERNEL_IMPL",
    "EncodingError",
    "canonical_encoding",
    "get_encoding",
    "WAREKI_STATUSES",
    "BlockError",
    "DecodeErrors",
    "DecodePlan",
    "DecodeResult",
    "ErrorCode",
    "FieldSpec",
    "PlanError",
    "decode_block",
    "format_error",
    "format_errors",
]
