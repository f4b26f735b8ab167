"""Hot kernels (Cython) with pure-Python twins. No Beam, no Great Expectations here.

``from ikou.kernels import FieldSpec, DecodePlan, decode_block, ErrorCode, KERNEL_IMPL``

The compiled ``_decode`` module is always used unless ``IKOU_PURE_PYTHON=1`` asks for the
pure-Python twin ``_decode_py``.  A compiled module that fails to import raises: a broken
build never falls back to slow code in silence.
"""

import os

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
)

if os.environ.get("IKOU_PURE_PYTHON", "") == "1":
    from ._decode_py import decode_block

    KERNEL_IMPL = "python"
else:
    try:
        from ._decode import decode_block
    except ImportError as exc:  # pragma: no cover - exercised only with a broken build
        raise ImportError(
            "the compiled kernel ikou.kernels._decode could not be imported; build it with "
            "`python setup.py build_ext --inplace` (or `make build`), or set IKOU_PURE_PYTHON=1 "
            f"to use the slow pure-Python twin on purpose ({exc})"
        ) from exc

    KERNEL_IMPL = "compiled"

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
]
