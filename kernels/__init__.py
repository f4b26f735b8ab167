"""Hot kernels (Cython) with pure-Python twins. No Beam, no Great Expectations here.

``from ikou.kernels import FieldSpec, DecodePlan, decode_block, ErrorCode, KERNEL_IMPL``

The compiled ``_decode`` module is always used unless ``IKOU_PURE_PYTHON=1`` asks for the
pure-Python twin ``_decode_py``.  A compiled module that fails to import raises: a broken
build never falls back to slow code in silence.
"""

from ._common import (
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
from ._impl import load_kernel

_decode_impl, KERNEL_IMPL = load_kernel("_decode")
decode_block = _decode_impl.decode_block

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
