"""Hot kernels (Cython) with pure-Python twins. No Beam, no Great Expectations here.

``from ikou.kernels import FieldSpec, DecodePlan, decode_block, ErrorCode, KERNEL_IMPL``

The compiled ``_decode`` module is always used unless ``IKOU_PURE_PYTHON=1`` asks for the
pure-Python twin ``_decode_py``.  A compiled module that fails to import raises: a broken
build never falls back to slow code in silence.
"""

from .decode import (
    KERNEL_IMPL,
    WAREKI_STATUSES,
    BlockError,
    DecodeErrors,
    DecodePlan,
    DecodeResult,
    ErrorCode,
    FieldSpec,
    PlanError,
    decode_block,
    format_error,
    format_errors,
)

__all__ = [
    "KERNEL_IMPL",
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
